# Captured-style log lines are as long as the phone writes them.
# ruff: noqa: E501
"""Phone log parser and findings, on logs written in the phone's documented formats (SPEC §10).

Each scenario is a captured-style log: ``MMDDhhmmss|module|level|marker|message``
for the application, ``000005.930|...`` (seconds since boot) for the
bootROM/Updater, continuation lines folded into the previous entry.
"""

from __future__ import annotations

import textwrap

import pytest

from phoneprov.protocols.phonelog.findings import Finding
from phoneprov.protocols.phonelog.parser import LogReport, analyze_lines, parse_header

MAC = "0004f2abcdef"


def analyze(text: str) -> LogReport:
    return analyze_lines(textwrap.dedent(text).strip("\n").splitlines())


def only(report: LogReport, kind: str) -> Finding:
    matches = [f for f in report.findings if f.kind == kind]
    assert len(matches) == 1, [(f.kind, f.lines) for f in report.findings]
    return matches[0]


def kinds(report: LogReport) -> set[str]:
    return {str(f.kind) for f in report.findings}


GOOD_MTLS_BOOT = f"""
    000001.021|boot |3|00|BootROM 4.4.0 starting
    000003.440|copy |3|00|Retrieving 'http://prov.example.com/{MAC}.cfg'
    000003.512|copy |4|00|Error: The requested URL returned error: 404 Not Found
    000003.513|copy |4|00|Download of '{MAC}.cfg' failed on attempt 1
    000003.820|copy |3|00|Download of '000000000000.cfg' succeeded on attempt 1
    000004.101|copy |3|00|Download of 'initial.cfg' succeeded on attempt 1
    0727210301|sntp |3|00|SNTP time set from 192.0.2.1
    0727210302|cert |3|00|Factory device certificate present at boot: length 1102, MD5 fingerprint 3a:41:7c:0e:55:6b:12:9f:aa:01:de:42:9b:77:c3:10, CN {MAC}
    0727210305|copy |3|00|TLS connection established to prov.example.com, server certificate verified
    0727210305|copy |3|00|Server requested client certificate; mutual TLS renegotiation succeeded, device certificate sent
    0727210309|copy |3|00|Download of '000000000000.cfg' succeeded on attempt 1
    0727210309|copy |3|00|Download of 'phone-common.cfg' succeeded on attempt 1
    0727210310|copy |3|00|Download of '{MAC}-phone.cfg' failed on attempt 1
    0727210310|copy |4|00|Error: HTTP/1.1 404 Not Found
    0727210312|so   |3|00|Application started, uploading log
"""


def test_ok_good_mtls_boot_has_no_errors() -> None:
    report = analyze(GOOD_MTLS_BOOT)
    assert not report.has_errors, [(f.kind, f.cause) for f in report.findings]
    assert {
        "tls-server-verified",
        "mtls-established",
        "download-ok",
        "device-cert-present",
    } <= kinds(report)
    tls = only(report, "tls-server-verified")
    assert tls.lines == (9,) and tls.detail["host"] == "prov.example.com"
    assert only(report, "mtls-established").lines == (10,)
    present = only(report, "device-cert-present")
    assert present.detail == {
        "which": "factory",
        "length": 1102,
        "algorithm": "MD5",
        "fingerprint": "3a:41:7c:0e:55:6b:12:9f:aa:01:de:42:9b:77:c3:10",
        "cn": MAC,
    }
    # The optional files missing are normal: info, never an error.
    for finding in report.findings:
        if finding.kind in ("http-404", "download-failed"):
            assert finding.severity == "info", finding
    assert report.summary["boots"] == 1
    assert report.summary["clock"] == "mixed"


def test_fail_403_mutual_tls_refused() -> None:
    report = analyze(
        f"""
        0727210305|copy |3|00|TLS connection established to prov.example.com, server certificate verified
        0727210306|copy |4|00|Error: The requested URL returned error: 403 Forbidden
        0727210306|copy |4|00|Download of '{MAC}.cfg' failed on attempt 1
        0727210336|copy |4|00|Error: The requested URL returned error: 403 Forbidden
        0727210336|copy |4|00|Download of '{MAC}.cfg' failed on attempt 2
        0727210406|copy |4|00|Error: The requested URL returned error: 403.16 Forbidden
        0727210406|copy |4|00|Download of '{MAC}.cfg' failed on attempt 3
        """
    )
    refused = only(report, "http-403")
    assert refused.severity == "error"
    assert refused.lines == (2, 4, 6)
    assert refused.detail["file"] == f"{MAC}.cfg"
    assert "mutual-TLS refusal" in refused.cause and "Equipment Issuing CA" in refused.fix
    failed = only(report, "download-failed")
    assert failed.severity == "error"
    assert failed.detail["attempt"] == 3 and failed.detail["failures"] == 3
    assert failed.detail["status"] == 403
    assert "mtls-established" not in kinds(report)


def test_fail_404_required_file_missing() -> None:
    report = analyze(
        """
        0727210309|copy |3|00|Download of '000000000000.cfg' succeeded on attempt 1
        0727210310|copy |4|00|'https://prov.example.com/sip-basic.cfg' The requested URL returned error: 404
        0727210310|copy |4|00|Download of 'sip-basic.cfg' failed on attempt 1
        """
    )
    missing = only(report, "http-404")
    assert missing.severity == "error"
    assert missing.detail["file"] == "sip-basic.cfg" and missing.lines == (2,)
    assert "CONFIG_FILES" in missing.fix
    assert only(report, "download-failed").severity == "error"


def test_warning_download_recovered_after_retry() -> None:
    report = analyze(
        """
        0727210310|copy |4|00|Download of 'sip-basic.cfg' failed on attempt 1
        0727210340|copy |3|00|Download of 'sip-basic.cfg' succeeded on attempt 2
        """
    )
    failed = only(report, "download-failed")
    assert failed.severity == "warning" and failed.detail["recovered"] is True
    assert only(report, "download-ok").detail["attempt"] == 2


def test_fail_oversized_device_key_in_platform_slot() -> None:
    report = analyze(
        """
        0727210312|cfg  |3|00|Prm|Applying device.sec.TLS.customDeviceCert1 from site.cfg
        0727210312|cert |4|00|Platform slot 1 private key is 4677 bytes, exceeds the 4096 byte limit; custom device certificate not installed
        """
    )
    finding = only(report, "device-key-too-large")
    assert finding.severity == "error"
    assert finding.detail == {"item": "private key", "size": 4677, "limit": 4096, "slot": 1}
    assert "4677 bytes" in finding.cause and "at most 4096" in finding.cause
    assert "device.sec.TLS.customDeviceCert1.privateKey" in finding.fix
    assert "device-cert-invalid" not in kinds(report)


def test_fail_oversized_device_certificate_uses_spec_limit_when_unstated() -> None:
    report = analyze(
        "0727210313|cfg  |4|00|Prm|device.sec.TLS.customDeviceCert2.publicCert too large "
        "(9120 bytes)"
    )
    finding = only(report, "device-cert-too-large")
    assert finding.detail == {"item": "certificate", "size": 9120, "limit": 8192, "slot": 2}


def test_fail_pkcs7_wrapper_missing() -> None:
    report = analyze(
        """
        0727210314|cert |4|00|Certificate in device.sec.TLS.customDeviceCert1.publicCert: PKCS7 wrapper missing
        -----BEGIN CERTIFICATE-----
        MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ
        -----END CERTIFICATE-----
        0727210315|cert |4|00|Custom device certificate is not proper
        """
    )
    wrapper = only(report, "pkcs7-wrapper-missing")
    assert wrapper.lines == (1,) and wrapper.severity == "error"
    assert "BEGIN PKCS7" in wrapper.cause
    # The PEM lines are continuation lines: folded into entry 1, not entries of their own.
    assert [e.line for e in report.timeline] == [1, 5]
    assert report.timeline[0].last_line == 4
    assert "MIIDdzCCAl" in report.timeline[0].message
    invalid = only(report, "device-cert-invalid")
    assert invalid.lines == (5,) and "not proper" in invalid.cause


def test_info_custom_certificate_saved_with_cn_and_fingerprint() -> None:
    report = analyze(
        f"0727210316|cert |3|00|Custom device certificate saved: CN={MAC}, SHA1 fingerprint="
        "0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:00:11:22:33"
    )
    saved = only(report, "custom-cert-saved")
    assert saved.severity == "info"
    assert saved.detail["cn"] == MAC
    assert (
        saved.detail["fingerprint"] == "0a:1b:2c:3d:4e:5f:60:71:82:93:a4:b5:c6:d7:e8:f9:00:11:22:33"
    )
    assert MAC in saved.cause


def test_fail_clock_not_set_certificate_not_yet_valid() -> None:
    report = analyze(
        """
        0101000012|sntp |4|00|SNTP request to 192.0.2.1 timed out
        0101000024|copy |4|00|Error: SSL certificate problem: certificate is not yet valid
        0101000024|copy |4|00|Download of '000000000000.cfg' failed on attempt 1
        """
    )
    clock = only(report, "clock-not-set")
    assert clock.severity == "error" and clock.lines == (1, 2)
    assert "01-01 00:00:24" in clock.cause
    assert "option 42" in clock.fix
    assert "server-cert-untrusted" not in kinds(report)


def test_warning_sntp_failure_alone() -> None:
    report = analyze("0101000012|sntp |4|00|SNTP request to 192.0.2.1 timed out")
    assert only(report, "clock-not-set").severity == "warning"


def test_fail_dns_failure_names_the_host() -> None:
    report = analyze(
        """
        000004.100|copy |4|00|Error: Couldn't resolve host 'prov.example.com'
        000004.101|copy |4|00|Download of '000000000000.cfg' failed on attempt 1
        """
    )
    dns = only(report, "dns-failure")
    assert dns.detail == {"host": "prov.example.com"} and "'prov.example.com'" in dns.cause
    assert "http-404" not in kinds(report)


def test_fail_connect_failure_names_host_and_port() -> None:
    report = analyze(
        "0727210319|copy |4|00|Error: Failed to connect to 192.0.2.10 port 443: Connection refused"
    )
    connect = only(report, "connect-failure")
    assert connect.detail == {"host": "192.0.2.10", "port": 443}
    assert "192.0.2.10 port 443" in connect.cause


def test_fail_firmware_loop_across_boots() -> None:
    boot = """
        000002.000|boot |3|00|BootROM 4.4.0 starting
        000006.400|copy |3|00|Download of 'sip.ld' succeeded on attempt 1
        000090.000|so   |3|00|Upgrading application to version 5.9.7.3480
    """
    report = analyze(boot * 3)
    loop = only(report, "firmware-loop")
    assert loop.severity == "error"
    assert loop.detail["boots"] == 3
    # Blank lines separate the boots: download and upgrade lines of each boot.
    assert loop.lines == (2, 3, 6, 7, 10, 11)
    assert report.summary["boots"] == 3


def test_ok_single_firmware_update_is_no_loop() -> None:
    report = analyze(
        """
        000006.400|copy |3|00|Download of 'sip.ld' succeeded on attempt 1
        000090.000|so   |3|00|Rebooting the phone to run the new application
        000001.000|boot |3|00|BootROM 4.4.0 starting
        000006.400|copy |3|00|Download of 'sip.ver' succeeded on attempt 1
        """
    )
    assert "firmware-loop" not in kinds(report)
    assert report.summary["boots"] == 2


def test_fail_server_certificate_untrusted_and_name_mismatch() -> None:
    report = analyze(
        """
        0727210305|copy |4|00|Error: SSL certificate problem: unable to get local issuer certificate
        0727210306|copy |4|00|Error: SSL: no alternative certificate subject name matches target host name 'prov.example.com'
        """
    )
    assert only(report, "server-cert-untrusted").lines == (1,)
    assert only(report, "server-name-mismatch").detail["host"] == "prov.example.com"


def test_status_line_after_failure_belongs_to_that_file() -> None:
    report = analyze(
        """
        0727210310|copy |4|00|Download of 'a.cfg' failed on attempt 1
        0727210310|copy |4|00|Error: HTTP/1.1 404 Not Found
        0727210311|copy |3|00|Download of 'b.cfg' succeeded on attempt 1
        """
    )
    assert only(report, "http-404").detail["file"] == "a.cfg"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("0727210309|copy |3|00|x", ("wall", "copy", 3, "00", "x"), id="ok/wall"),
        pytest.param("000005.930|so   |4|00|y", ("boot", "so", 4, "00", "y"), id="ok/boot"),
        pytest.param(
            "0727210309|cfg  |4|00|Prm|a|b",
            ("wall", "cfg", 4, "00", "Prm|a|b"),
            id="ok/pipes-in-message",
        ),
        pytest.param("1327210309|copy |3|00|x", None, id="fail/month-13"),
        pytest.param("0727250309|copy |3|00|x", None, id="fail/hour-25"),
        pytest.param("0727210309 copy 3 00 x", None, id="fail/no-pipes"),
        pytest.param("07272103|copy |3|00|x", None, id="fail/short-stamp"),
    ],
)
def test_parse_header(line: str, expected: tuple[object, ...] | None) -> None:
    header = parse_header(line)
    if expected is None:
        assert header is None
    else:
        assert header is not None
        assert (header.clock, header.module, header.level, header.marker, header.message) == (
            expected
        )


def test_ok_status_on_the_download_line_and_folder_paths() -> None:
    # The wording phoneprov's own simulator uploads: status and file on one line.
    report = analyze(
        f"""
        000000.077|copy |4|00|Download of 'sip.ver' failed on attempt 1: HTTP error 404
        000000.084|copy |4|00|Download of '3111-46162-001.sip.ld' failed on attempt 1: HTTP error 404
        1122024646|copy |4|00|Download of 'overrides/{MAC}-phone.cfg' failed on attempt 1: HTTP error 404
        1122024646|copy |4|00|Download of 'overrides/{MAC}-web.cfg' failed on attempt 1: HTTP error 403
        """
    )
    by_file = {(f.kind, f.detail["file"]): f for f in report.findings}
    # Without sip.ver/sip.ld the phone keeps its software: a warning.
    assert by_file[("http-404", "sip.ver")].severity == "warning"
    assert by_file[("download-failed", "sip.ver")].severity == "warning"
    # The part-number image falls back to sip.ld; the override file is optional.
    assert by_file[("http-404", "3111-46162-001.sip.ld")].severity == "info"
    assert by_file[("http-404", f"overrides/{MAC}-phone.cfg")].lines == (3,)
    assert by_file[("download-failed", f"overrides/{MAC}-phone.cfg")].severity == "info"
    # Refused (not missing) is an error even for an optional file.
    assert by_file[("http-403", f"overrides/{MAC}-web.cfg")].lines == (4,)
    assert by_file[("download-failed", f"overrides/{MAC}-web.cfg")].severity == "error"
