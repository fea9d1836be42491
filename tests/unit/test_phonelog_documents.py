"""The phone log analyser on the log lines and formats Polycom's own documents print.

Sources (the excerpts are verbatim in tests/data/phone-log-examples/, line breaks
as printed, with what each must tell the administrator in its README.md):

- Technical Bulletin 52609, "Mutual Transport Layer Security Provisioning Using
  Microsoft Internet Information Services 6.0", Troubleshooting: mtls-trace.log.
- Feature Profile 37148, "Device Certificates on Polycom Phones", Troubleshooting:
  keytoolarge.log, nopkcs7.log, saved.log, bootcerts.log, invalid.log.
- The SoundPoint IP / SoundStation IP administrator guides (SIP 1.4 to 3.x,
  "Event Logging"; the same table in the CX5100 guide): the line format and the
  three timestamp styles, with their examples ``011511.006|so |2|00|...``,
  ``0210281716`` (2002 October 28, 17:16) and ``1028171642`` (October 28, 17:16:42).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneprov.protocols.phonelog.findings import Finding
from phoneprov.protocols.phonelog.parser import LogReport, analyze_lines, parse_header
from phoneprov.protocols.phonelog.stamps import parse_stamp

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "phone-log-examples"


def analyze_example(name: str) -> LogReport:
    return analyze_lines((EXAMPLES / name).read_bytes().splitlines())


def summary(report: LogReport) -> list[tuple[str, str, tuple[int, ...]]]:
    return [(str(f.kind), f.severity, f.lines) for f in report.findings]


def only(report: LogReport, kind: str) -> Finding:
    found = [f for f in report.findings if f.kind == kind]
    assert len(found) == 1, summary(report)
    return found[0]


def test_tb52609_mtls_trace_one_way_then_mutual_then_download() -> None:
    """TB 52609: one-way TLS verified the server, then mutual TLS was established
    (second handshake: Hello request, Request CERT, CERT verify), and <MAC>.cfg
    downloaded on attempt 1."""
    report = analyze_example("mtls-trace.log")
    assert summary(report) == [
        ("tls-server-verified", "info", (25,)),
        ("mtls-established", "info", (26, 30, 34)),
        ("download-ok", "info", (40,)),
    ]
    verified = only(report, "tls-server-verified")
    assert verified.detail == {"host": "Server A.qaad.local", "port": 443, "cipher": "RC4-SHA"}
    mutual = only(report, "mtls-established")
    assert mutual.detail["renegotiated"] is True
    assert "second handshake, after its Hello request" in mutual.cause
    assert "CERT verify" in mutual.cause and "mutual TLS is established" in mutual.cause
    download = only(report, "download-ok")
    assert download.detail == {"file": "0004f22434da.cfg", "attempt": 1, "address": "1 of 1"}
    # The subject wrapped onto a line without a header belongs to the entry above.
    subject = next(e for e in report.timeline if "subject:" in e.message)
    assert subject.message.endswith("OU=polycom,\nCN=Server A.qaad.local")
    assert subject.last_line == subject.line + 1
    assert not report.has_errors


def test_fp37148_key_too_large_on_a_line_without_header() -> None:
    """FP 37148: custom device key 1 is 4677 bytes, over the 4096-byte platform limit;
    the line was copied without its header and still gets its finding."""
    report = analyze_example("keytoolarge.log")
    assert summary(report) == [("device-key-too-large", "error", (1,))]
    finding = only(report, "device-key-too-large")
    assert finding.detail == {"item": "private key", "slot": 1, "size": 4677, "limit": 4096}
    assert "key 1 is 4677 bytes, bigger than the 4096 bytes" in finding.cause
    assert "device.sec.TLS.customDeviceCert1.privateKey" in finding.fix
    assert report.timeline[0].stamp is None and report.summary["stray_lines"] == 1


def test_fp37148_cert_chain_not_decoded_is_the_missing_pkcs7_wrapper() -> None:
    """FP 37148: the chain could not be decoded: the PKCS#7 BEGIN/END wrapper is missing."""
    report = analyze_example("nopkcs7.log")
    assert summary(report) == [("pkcs7-wrapper-missing", "error", (1,))]
    finding = only(report, "pkcs7-wrapper-missing")
    assert "Could not decode cert chain" in finding.cause
    assert "-----BEGIN PKCS7-----" in finding.cause
    assert "openssl crl2pkcs7" in finding.fix


def test_fp37148_custom_certificate_saved_with_common_name_and_fingerprint() -> None:
    """FP 37148: a new custom platform device certificate 1 was saved (common name,
    fingerprint); no previous certificate. Event class ``*``; the fingerprint wraps."""
    report = analyze_example("saved.log")
    assert summary(report) == [("custom-cert-saved", "info", (1, 2, 4))]
    saved = only(report, "custom-cert-saved")
    assert saved.detail == {
        "slot": 1,
        "cn": "0004F206075D",
        "fingerprint": "CA:70:79:D5:FA:B8:3E:6A:DF:A0:F6:80:3D:53:0B:FC",
        "previous": "none",
    }
    assert "certificate 1 (common name 0004F206075D" in saved.cause
    assert "no certificate was stored there before" in saved.cause
    assert [e.event_class for e in report.timeline] == ["*", "*", "*"]
    assert report.summary["missed_events"] == 3


def test_fp37148_certificates_at_boot() -> None:
    """FP 37148: at boot the factory certificate (length, MD5 fingerprint, common name)
    and custom platform certificate 1 are present; certificate 2 is not. Stamps are
    hhmmss.mmm since boot."""
    report = analyze_example("bootcerts.log")
    assert summary(report) == [
        ("device-cert-present", "info", (1, 2, 4, 6)),
        ("device-cert-present", "info", (7, 8, 10, 12)),
        ("device-cert-absent", "info", (13,)),
    ]
    factory, custom = report.findings[0], report.findings[1]
    assert factory.detail == {
        "which": "factory",
        "length": 802,
        "algorithm": "MD5",
        "fingerprint": "70:8B:85:9C:49:4E:28:E2:3C:03:4C:D8:AA:0D:8E:17",
        "cn": "0004F206075D",
        "key_length": 636,
    }
    assert custom.detail == {
        "which": "custom",
        "slot": 1,
        "length": 2021,
        "algorithm": "MD5",
        "fingerprint": "CA:70:79:D5:FA:B8:3E:6A:DF:A0:F6:80:3D:53:0B:FC",
        "cn": "Custom-0004F206075D",
        "key_length": 2374,
    }
    assert report.findings[2].detail == {"which": "custom", "slot": 2}
    assert "certificate 2 as not available" in report.findings[2].cause
    assert report.summary["clock"] == "boot"
    first = report.timeline[0]
    assert first.stamp is not None and first.stamp.since_boot == 5.93
    assert first.time_text == "00:00:05.930"


def test_fp37148_device_credential_invalid() -> None:
    """FP 37148: "Failed to save certificate": the device credential is invalid
    (too big, or not proper)."""
    report = analyze_example("invalid.log")
    assert summary(report) == [("device-cert-invalid", "error", (1,))]
    invalid = only(report, "device-cert-invalid")
    assert invalid.detail == {"reason": "Cert is not proper in the certificate"}
    assert "Failed to save certificate" in invalid.cause
    assert "too big, or not proper" in invalid.cause


@pytest.mark.parametrize(
    ("raw", "style", "text", "since_boot"),
    [
        pytest.param("011511.006", "hhmmss.mmm", "01:15:11.006", 4511.006, id="style-0"),
        pytest.param("0210281716", "YYMMDDhhmm", "2002-10-28 17:16", None, id="style-1"),
        pytest.param("1028171642", "MMDDhhmmss", "10-28 17:16:42", None, id="style-2"),
    ],
)
def test_admin_guide_timestamp_examples(
    raw: str, style: str, text: str, since_boot: float | None
) -> None:
    # "011511.006 -- 1 hour, 15 minutes, 11.006 seconds since booting";
    # "0210281716 -- 2002 October 28, 17:16"; "1028171642 -- October 28, 17:16:42".
    stamp = parse_stamp(raw)
    assert stamp is not None
    assert (stamp.style, stamp.text, stamp.since_boot) == (style, text, since_boot)


def test_admin_guide_example_line_and_json_decode_since_boot() -> None:
    header = parse_header("011511.006|so |2|00|soCoreAudioTermChg: chassis -> idle")
    assert header is not None
    assert (header.module, header.event_class, header.missed) == ("so", "2", 0)
    assert header.message == "soCoreAudioTermChg: chassis -> idle"
    report = analyze_lines(["011511.006|so |2|00|soCoreAudioTermChg: chassis -> idle"])
    entry = report.timeline[0].to_json()
    assert entry["seconds_since_boot"] == 4511.006 and entry["time"] == "01:15:11.006"
    assert report.to_json()["summary"]["first_stamp"]["seconds_since_boot"] == 4511.006


def test_minute_stamps_settle_the_style_of_ambiguous_ones() -> None:
    # 2401011200 is only a YYMMDDhhmm stamp (month 24 does not exist): the log's
    # style is settled, and 1201011010 (valid in both) is read the same way.
    report = analyze_lines(["2401011200|so |3|00|a", "2401021010|so |3|00|b"])
    assert [e.time_text for e in report.timeline] == ["2024-01-01 12:00", "2024-01-02 10:10"]
    assert report.summary["stamp_styles"] == ["YYMMDDhhmm"]


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("0727210305|lldp |4|00|Corrupt LLDP packet received, ignored", id="lldp"),
        pytest.param("0727210301|curl |3|00|SSLv3, TLS handshake, Client hello (1):", id="hello"),
        pytest.param("0727210301|curl |3|00|timeout on name lookup is not supported", id="dns"),
        pytest.param("0727210301|curl |3|00| CAfile: /ffs0/ca-bundle.crt CApath: none", id="ca"),
        pytest.param("0727210301|curl |3|00|Connection #0 to host h left intact", id="intact"),
    ],
)
def test_messages_that_are_not_problems_give_no_finding(line: str) -> None:
    report = analyze_lines([line])
    assert report.findings == () and report.summary["entries"] == 1


@pytest.mark.parametrize(
    ("line", "kind", "detail"),
    [
        pytest.param(
            "0727210310|copy |4|00|Log upload FIFO error, result code -2",
            "upload-failed",
            {"code": -2},
            id="fifo-error",
        ),
        pytest.param(
            "0727210310|copy |4|00|HEAD of '0004f2abcdef-app.log' returned no Content-Length, "
            "cannot set Content-Range",
            "log-append-unsupported",
            {"file": "0004f2abcdef-app.log"},
            id="head-without-length",
        ),
        pytest.param(
            "0727210310|copy |4|00|Upload of '0004f2abcdef-app.log' failed on attempt 1: "
            "HTTP error 403",
            "upload-failed",
            {"file": "0004f2abcdef-app.log", "status": 403, "attempt": 1},
            id="simulator-wording",
        ),
    ],
)
def test_log_upload_failures_are_warnings(line: str, kind: str, detail: dict[str, object]) -> None:
    # Only paraphrases of these messages are known (SPEC §6: an upload FIFO error
    # with its result code; a HEAD that returned no Content-Length, so the phone
    # cannot set Content-Range): the wording here is ours, the words keyed on theirs.
    report = analyze_lines([line])
    finding = only(report, kind)
    assert finding.severity == "warning"
    assert detail.items() <= finding.detail.items()
    assert not report.has_errors
