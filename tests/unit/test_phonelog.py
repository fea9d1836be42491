# Captured-style log lines are as long as the phone writes them.
# ruff: noqa: E501
"""Phone log parser and findings, on logs written in the phone's documented formats (SPEC §10).

Each scenario is a captured-style log: ``MMDDhhmmss|module|class|missed|message``
for the application, ``000005.930|...`` (hhmmss.mmm since boot) for the
bootROM/Updater, continuation lines folded into the previous entry. The failure
lines are libcurl's own error strings; the messages Polycom's documents quote
are tested word for word in test_phonelog_documents.py.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from phoneprov.protocols.phonelog.findings import Finding
from phoneprov.protocols.phonelog.parser import LogReport, analyze_lines, parse_header

MAC = "0004f2abcdef"
DATA = Path(__file__).resolve().parents[1] / "data" / "phonelogs" / "secure-boot"


def analyze(text: str) -> LogReport:
    return analyze_lines(textwrap.dedent(text).strip("\n").splitlines())


def only(report: LogReport, kind: str) -> Finding:
    matches = [f for f in report.findings if f.kind == kind]
    assert len(matches) == 1, [(f.kind, f.lines) for f in report.findings]
    return matches[0]


def kinds(report: LogReport) -> set[str]:
    return {str(f.kind) for f in report.findings}


def test_ok_good_mtls_boot_has_no_errors() -> None:
    # The phone's secure boot written from the documented message shapes (see
    # test_phonelog_documents.py): bootROM over HTTP, application over mutual TLS.
    report = analyze_lines((DATA / f"{MAC}-boot.log").read_text().splitlines())
    assert not report.has_errors, [(f.kind, f.cause) for f in report.findings]
    assert only(report, "device-cert-present").detail["cn"] == MAC.upper()
    # The optional files missing are normal: info, never an error.
    for finding in report.findings:
        assert finding.severity == "info", finding
    assert report.summary["boots"] == 1 and report.summary["clock"] == "boot"
    app = analyze_lines((DATA / f"{MAC}-app.log").read_text().splitlines())
    assert {"tls-server-verified", "mtls-established", "download-ok"} <= kinds(app)
    assert not app.has_errors and app.summary["clock"] == "wall"


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
        pytest.param("0727210309|copy |3|00|x", ("MMDDhhmmss", "copy", "3", 0, "x"), id="ok/wall"),
        pytest.param("000005.930|so   |4|00|y", ("hhmmss.mmm", "so", "4", 0, "y"), id="ok/boot"),
        pytest.param("0531130928|tls |*|03|z", ("MMDDhhmmss", "tls", "*", 3, "z"), id="ok/star"),
        pytest.param("0210281716|so |2|00|z", ("YYMMDDhhmm", "so", "2", 0, "z"), id="ok/minutes"),
        pytest.param(
            "0727210309|cfg  |4|00|Prm|a|b",
            ("MMDDhhmmss", "cfg", "4", 0, "Prm|a|b"),
            id="ok/pipes-in-message",
        ),
        pytest.param("1327210309|copy |3|00|x", None, id="fail/month-13"),
        pytest.param("0727250309|copy |3|00|x", None, id="fail/hour-25"),
        pytest.param("0727210309 copy 3 00 x", None, id="fail/no-pipes"),
        pytest.param("07272103|copy |3|00|x", None, id="fail/short-stamp"),
        pytest.param("0727210309|toolong|3|00|x", None, id="fail/module-over-5"),
        pytest.param("0727210309|copy |12|00|x", None, id="fail/class-two-digits"),
        pytest.param("0727210309|copy |3|0|x", None, id="fail/missed-one-digit"),
    ],
)
def test_parse_header(line: str, expected: tuple[object, ...] | None) -> None:
    header = parse_header(line)
    if expected is None:
        assert header is None
    else:
        assert header is not None
        got = (header.stamp.style, header.module, header.event_class, header.missed)
        assert (*got, header.message) == expected


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
