"""The phone log parser on garbage, truncated and binary input, and its memory bounds."""

from __future__ import annotations

import gzip

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneprov.protocols.phonelog.advice import ADVICE, advice_for, render
from phoneprov.protocols.phonelog.findings import MAX_FINDINGS, MAX_LINES
from phoneprov.protocols.phonelog.parser import (
    MAX_MESSAGE_CHARS,
    LogAnalyzer,
    analyze_lines,
    binary_reason,
)
from phoneprov.protocols.phonelog.rules import FindingKind

LINE = b"0727210309|copy |3|00|Download of 'a.cfg' succeeded on attempt 1"


@given(st.lists(st.binary(max_size=200), max_size=60), st.data())
@settings(max_examples=200, deadline=None)
def test_ok_any_bytes_never_crash_and_every_line_is_counted(
    lines: list[bytes], data: st.DataObject
) -> None:
    # A real line somewhere in the noise: the parser must still read it as one.
    at = data.draw(st.integers(0, len(lines)), label="real line at")
    lines = [*lines[:at], LINE, *lines[at:]]
    analyzer = LogAnalyzer(timeline_limit=1000)
    for raw in lines:
        analyzer.feed_line(raw)
    report = analyzer.finish()
    assert report.summary["lines"] == len(lines)
    assert 1 <= report.summary["entries"] <= len(lines)
    assert len(report.timeline) == report.summary["entries"]
    for entry in report.timeline:
        assert 1 <= entry.line <= entry.last_line <= len(lines)
    real = [entry for entry in report.timeline if entry.line == at + 1]
    assert len(real) == 1 and real[0].module == "copy" and "download-ok" in real[0].kinds
    assert real[0].message.startswith("Download of 'a.cfg' succeeded on attempt 1")
    ok = [f for f in report.findings if f.kind == "download-ok" and at + 1 in f.lines]
    assert len(ok) == 1 and ok[0].detail == {"file": "a.cfg", "attempt": 1}


# Lines in the phone's format and the finding each must produce (kind, severity); the
# others (a BootROM line no rule reports, a continuation, malformed lines) produce none.
KNOWN = {
    "0727210309|copy |4|00|Download of 'x.cfg' failed on attempt 2": ("download-failed", "error"),
    "0727210310|copy |4|00|Error: The requested URL returned error: 403": ("http-403", "error"),
    # Feature Profile 37148's wording (the key over the platform limit).
    "0531131822|hw   |4|03|hwDescSecurityDeviceCredentialsStore: Could not store key for "
    "custom device key1, length 4677 is bigger than maximum 4096": (
        "device-key-too-large",
        "error",
    ),
}
NO_FINDING = [
    "000001.000|boot |3|00|BootROM starting",
    "   continuation",
    "|||||",
    "0727210309|",
    "garbage \x1b[31mred\x1b[0m",
]


@given(st.lists(st.sampled_from([*KNOWN, *NO_FINDING]), max_size=40))
@settings(max_examples=200, deadline=None)
def test_ok_shuffled_real_lines_give_consistent_findings(lines: list[str]) -> None:
    report = analyze_lines(lines)
    for finding in report.findings:
        assert finding.severity in ("info", "warning", "error")
        assert finding.lines and all(1 <= n <= len(lines) for n in finding.lines)
        assert finding.cause and finding.fix
    assert report.has_errors == (report.summary["errors"] > 0)
    # Every known line is reported as its finding, at its line number, and nothing else is.
    expected: dict[tuple[str, str], set[int]] = {}
    for number, line in enumerate(lines, start=1):
        if line in KNOWN:
            expected.setdefault(KNOWN[line], set()).add(number)
    found: dict[tuple[str, str], set[int]] = {}
    for finding in report.findings:
        found.setdefault((str(finding.kind), finding.severity), set()).update(finding.lines)
    assert found == expected
    assert report.has_errors == bool(expected)
    headers = [n for n, line in enumerate(lines, start=1) if line in KNOWN]
    assert {e.line for e in report.timeline if e.module} >= set(headers)


@pytest.mark.parametrize(
    ("line", "kind", "severity"),
    [
        pytest.param(line, kind, severity, id=f"finds/{kind}")
        for line, (kind, severity) in KNOWN.items()
    ],
)
def test_ok_known_line_alone_gives_its_finding(line: str, kind: str, severity: str) -> None:
    report = analyze_lines([line])
    assert [(str(f.kind), f.severity, f.lines) for f in report.findings] == [(kind, severity, (1,))]
    assert report.summary["entries"] == 1 and report.summary["errors"] == 1


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(line, id=f"none/{name}")
        for line, name in zip(
            NO_FINDING, ["bootrom", "continuation", "pipes", "cut-header", "ansi"], strict=True
        )
    ],
)
def test_ok_line_without_finding_is_still_an_entry(line: str) -> None:
    report = analyze_lines([line])
    assert not report.findings and report.summary["entries"] == 1


def test_ok_garbage_lines_are_kept_in_the_timeline() -> None:
    report = analyze_lines(
        [
            "U-Boot 2011.12 (Polycom)",
            "\x1b[1mDRAM:  256 MiB\x1b[0m",
            "0727210309|copy |3|00|Download of 'a.cfg' succeeded on attempt 1",
            "random text in the middle",
            "0727210310|xyz |9|07|a message no rule knows",
        ]
    )
    assert [e.line for e in report.timeline] == [1, 2, 3, 5]
    assert report.timeline[0].module is None and report.timeline[0].stamp is None
    assert report.timeline[1].message == "DRAM:  256 MiB"
    assert report.timeline[2].message.endswith("random text in the middle")
    assert report.timeline[3].module == "xyz" and report.timeline[3].kinds == ()
    assert report.timeline[3].missed == 7 and report.summary["missed_events"] == 7
    assert report.summary["stray_lines"] == 2


def test_fail_truncated_log_reports_cut_off_upload() -> None:
    analyzer = LogAnalyzer()
    analyzer.feed_line(LINE + b"\n")
    analyzer.feed_line(b"0727210310|cop")
    report = analyzer.finish(complete=False)
    truncated = [f for f in report.findings if f.kind == "log-truncated"]
    assert len(truncated) == 1 and truncated[0].severity == "warning"
    assert truncated[0].lines == (2,)
    assert report.summary["complete"] is False
    # The half line is not a header: it continues the previous entry.
    assert report.timeline[-1].last_line == 2


def test_ok_undecodable_and_nul_bytes_are_counted_not_fatal() -> None:
    report = analyze_lines([LINE + b"\xff\xfe", b"\x00\x00" + LINE])
    assert report.summary["undecodable_lines"] == 1
    assert report.summary["nul_lines"] == 1
    assert report.summary["entries"] == 2


def test_ok_timeline_keeps_the_last_entries_only() -> None:
    lines = [f"07272103{i % 60:02d}|so   |3|00|event {i}" for i in range(50)]
    report = analyze_lines(lines, timeline_limit=5)
    assert [e.message for e in report.timeline] == [f"event {i}" for i in range(45, 50)]
    assert report.summary["timeline_truncated"] is True
    assert report.summary["timeline_kept"] == 5 and report.summary["entries"] == 50


def test_ok_finding_lines_capped_with_occurrence_count() -> None:
    line = "0727210310|copy |4|00|Download of 'a.cfg' failed on attempt 1"
    report = analyze_lines([line] * (MAX_LINES + 30))
    failed = report.findings[0]
    assert len(failed.lines) == MAX_LINES and failed.occurrences == MAX_LINES + 30
    assert failed.to_json()["occurrences"] == MAX_LINES + 30


def test_ok_distinct_findings_capped() -> None:
    lines = [
        f"0727210310|copy |3|00|Download of 'f{i}.cfg' succeeded on attempt 1"
        for i in range(MAX_FINDINGS + 20)
    ]
    report = analyze_lines(lines)
    assert len(report.findings) == MAX_FINDINGS
    assert report.summary["findings_dropped"] == 20


def test_ok_runaway_continuation_is_clipped() -> None:
    lines = ["0727210310|copy |3|00|start"] + ["x" * 100] * 200
    report = analyze_lines(lines)
    assert len(report.timeline[0].message) <= MAX_MESSAGE_CHARS
    assert report.timeline[0].last_line == 201
    assert report.summary["entries_clipped"] == 1


@pytest.mark.parametrize(
    ("data", "binary"),
    [
        pytest.param(LINE + b"\n", False, id="ok/text-log"),
        pytest.param("0727210309|so   |3|00|Grüße, café\n".encode(), False, id="ok/utf8-text"),
        pytest.param(b"", False, id="ok/empty"),
        pytest.param(LINE + b"\n\x00\x00\x00", True, id="fail/nul-bytes"),
        pytest.param(gzip.compress(LINE * 100), True, id="fail/gzip-core-file"),
        pytest.param(bytes(range(1, 32)) * 20, True, id="fail/control-bytes"),
        pytest.param(b"\xff\xfe\xfd\xc0" * 100, True, id="fail/undecodable"),
    ],
)
def test_binary_reason(data: bytes, binary: bool) -> None:
    reason = binary_reason(data)
    assert (reason is not None) == binary, reason
    if binary:
        assert reason is not None and ("NUL" in reason or "%" in reason)


def test_ok_every_finding_kind_has_advice_that_renders() -> None:
    for kind in FindingKind:
        advice = advice_for(kind)
        assert advice.severity in ("info", "warning", "error")
        assert render(advice.cause, {}) and render(advice.fix, {})
    for key in ADVICE:
        assert key.split(":")[0] in {str(k) for k in FindingKind}
