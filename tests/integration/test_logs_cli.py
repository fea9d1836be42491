"""``phoneprov logs analyze`` end to end: files, a site's uploads, bad input, a 50 MB log,
and the examples of docs/troubleshooting.md run as written."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from phoneprov.cli.app import app
from phoneprov.protocols.phonelog.rules import FindingKind
from phoneprov.provisioning.logs import MAX_LINE_BYTES, analyze_file

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "troubleshooting.md"
PHONEPROV = Path(sys.executable).parent / "phoneprov"
MAC = "0004f2abcdef"

# A normal secure boot, written from the message shapes Polycom's documents print
# (TB 52609, FP 37148): bootROM over HTTP with digest, application over mutual TLS.
SECURE_BOOT = ROOT / "tests" / "data" / "phonelogs" / "secure-boot"
GOOD_BOOT = (SECURE_BOOT / f"{MAC}-app.log").read_text()
REFUSED_BOOT = f"""\
0727210305|curl |3|00| SSL certificate verify ok.
0727210306|copy |4|00|Error: The requested URL returned error: 403 Forbidden
0727210306|copy |4|00|Download of '{MAC}.cfg' failed on attempt 1
"""


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def make_site(tmp_path: Path, toml: str = "") -> Path:
    site = tmp_path / "site"
    write(site / "phoneprov.toml", toml)
    return site


def test_ok_good_mtls_boot_json_exit_0(tmp_path: Path) -> None:
    log = write(tmp_path / f"{MAC}-app.log", GOOD_BOOT)
    code, out, _ = invoke("logs", "analyze", str(log), "--format", "json")
    assert code == 0, out
    data = json.loads(out)
    assert set(data) == {"findings", "summary", "timeline"}
    for finding in data["findings"]:
        assert {"kind", "severity", "lines", "cause", "fix", "first_seen"} <= set(finding)
        assert finding["severity"] == "info"
    kinds = {f["kind"] for f in data["findings"]}
    assert {"tls-server-verified", "mtls-established", "download-ok"} <= kinds
    assert data["summary"]["file"] == str(log)
    assert data["summary"]["errors"] == 0 and data["summary"]["lines"] == 34
    assert data["timeline"][0]["time"] == "07-27 21:03:01"
    code, out, _ = invoke("logs", "analyze", str(log), "--format", "json", "--no-timeline")
    assert code == 0 and set(json.loads(out)) == {"findings", "summary"}


def test_ok_normal_secure_boot_gives_the_expected_findings_and_nothing_else(
    tmp_path: Path,
) -> None:
    site = make_site(tmp_path)
    for name in (f"{MAC}-boot.log", f"{MAC}-app.log"):
        write(site / "boot" / "logs" / name, (SECURE_BOOT / name).read_text())
    code, out, _ = invoke("logs", "analyze", MAC, "--site", str(site), "--format", "json")
    assert code == 0, out
    data = json.loads(out)
    found = sorted(
        (f["log"], f["kind"], f["severity"], tuple(f["lines"])) for f in data["findings"]
    )
    boot, app = f"{MAC}-boot.log", f"{MAC}-app.log"
    assert found == sorted(
        [
            (boot, "device-cert-present", "info", (1, 2, 4, 6)),
            (boot, "device-cert-absent", "info", (7,)),
            (boot, "device-cert-absent", "info", (9,)),
            (boot, "http-404", "info", (16,)),
            (boot, "download-failed", "info", (17,)),
            (boot, "download-ok", "info", (20,)),
            (boot, "download-ok", "info", (21,)),
            (boot, "download-ok", "info", (22,)),
            (app, "mtls-established", "info", (10, 14)),
            (app, "tls-server-verified", "info", (26,)),
            (app, "download-ok", "info", (28,)),
            (app, "download-ok", "info", (29,)),
            (app, "http-404", "info", (30,)),
            (app, "download-failed", "info", (31,)),
            (app, "http-404", "info", (32,)),
            (app, "download-failed", "info", (33,)),
        ]
    )
    # The bootROM's stamps are hhmmss.mmm since boot, decoded in the JSON.
    first = next(e for e in data["timeline"] if e["log"] == boot)
    assert first["stamp"] == "000005.930" and first["seconds_since_boot"] == 5.93
    assert first["time"] == "00:00:05.930"
    code, out, _ = invoke("logs", "analyze", str(SECURE_BOOT / boot))
    assert code == 0 and "00:00:05.930" in out and "count from boot" in out


def test_fail_403_text_shows_findings_then_timeline_exit_1(tmp_path: Path) -> None:
    log = write(tmp_path / f"{MAC}-app.log", REFUSED_BOOT)
    code, out, _ = invoke("logs", "analyze", str(log))
    assert code == 1
    assert "http-403" in out and "mutual-TLS refusal" in out
    assert out.index("Findings") < out.index("Timeline")
    code, out, _ = invoke("logs", "analyze", str(log), "--no-timeline")
    assert code == 1 and "Findings" in out and "Timeline" not in out


def test_ok_mac_reads_boot_and_app_logs_from_the_site(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    write(site / "boot" / "logs" / f"{MAC}-boot.log", GOOD_BOOT)
    write(site / "boot" / "logs" / f"{MAC}-app.log", REFUSED_BOOT)
    code, out, _ = invoke(
        "logs", "analyze", "00:04:F2:AB:CD:EF", "--site", str(site), "--format", "json"
    )
    assert code == 1
    data = json.loads(out)
    assert data["summary"]["mac"] == MAC
    assert [Path(f["file"]).name for f in data["summary"]["files"]] == [
        f"{MAC}-boot.log",
        f"{MAC}-app.log",
    ]
    refused = [f for f in data["findings"] if f["kind"] == "http-403"]
    assert [f["log"] for f in refused] == [f"{MAC}-app.log"]
    assert data["summary"]["errors"] == 2


def test_ok_mac_follows_the_sites_upload_folder(tmp_path: Path) -> None:
    site = make_site(tmp_path, '[policy.folders]\nboot_log = "phonelogs"\n')
    write(site / "boot" / "phonelogs" / f"{MAC}-boot.log", GOOD_BOOT)
    code, out, _ = invoke("logs", "analyze", MAC, "--site", str(site), "--format", "json")
    assert code == 0, out
    assert json.loads(out)["summary"]["files"][0]["file"].endswith(f"phonelogs/{MAC}-boot.log")


def test_fail_mac_without_uploads_names_paths_exit_2(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    code, _, err = invoke("logs", "analyze", MAC, "--site", str(site))
    assert code == 2
    flat = " ".join(err.split())
    assert f"{MAC}-boot.log" in flat and f"{MAC}-app.log" in flat
    assert str(site / "boot" / "logs") in flat
    assert "hint:" in flat and "reboot the phone" in flat


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda p: p / "missing.log", "no such log file", id="fail/missing-file"),
        pytest.param(lambda p: p, "is a directory", id="fail/directory"),
        pytest.param(
            lambda p: write(p / f"{MAC}-core.gz", b"\x1f\x8b\x08\x00" + bytes(400)),
            "is not a phone log: it contains a NUL byte",
            id="fail/binary-core-file",
        ),
    ],
)
def test_fail_unreadable_input_exit_2(tmp_path: Path, make: object, message: str) -> None:
    target = make(tmp_path)  # type: ignore[operator]
    code, _, err = invoke("logs", "analyze", str(target))
    assert code == 2
    assert message in " ".join(err.split())


def test_warning_truncated_upload_exit_0(tmp_path: Path) -> None:
    log = write(tmp_path / "cut.log", GOOD_BOOT + "0727210310|copy |3|00|Downl")
    code, out, _ = invoke("logs", "analyze", str(log), "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["summary"]["complete"] is False
    assert [f["lines"] for f in data["findings"] if f["kind"] == "log-truncated"] == [[35]]


def _big_log(path: Path, size: int) -> int:
    """Write ~``size`` bytes of captured-style log: chatter, SIP dumps folded as
    continuation lines, a core-dump blob on one 40 KB line, a 403 at the very
    end, and a final 2 MB line without a newline. Returns the 403's line number."""
    chatter = "".join(
        f"07272{(i // 60) % 10}{i % 60:02d}00|sip  |2|00|Registration refreshed for line 1 "
        f"(expires 3600) call-id {i:06d}@192.0.2.55\n"
        for i in range(40)
    )
    sip_dump = "0727210400|sip  |1|00|Outgoing SIP message:\n" + "".join(
        f"  Via: SIP/2.0/UDP 192.0.2.55:5060;branch=z9hG4bK{i:08d};rport\n" for i in range(20)
    )
    blob = "0727210401|so   |4|00|core dump follows\n" + "A" * 40_000 + "\n"
    block = (chatter + sip_dump + blob).encode()
    lines_per_block = block.count(b"\n")
    blocks = size // len(block)
    with path.open("wb") as out:
        for _ in range(blocks):
            out.write(block)
        out.write(b"0727210500|copy |4|00|Error: The requested URL returned error: 403\n")
        out.write(f"0727210500|copy |4|00|Download of '{MAC}.cfg' failed on attempt 1\n".encode())
        out.write(b"B" * (2 * 1024 * 1024))
    return blocks * lines_per_block + 1


_MEASURE = """
import json, resource, sys
from pathlib import Path
from phoneprov.provisioning.logs import analyze_file
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
report = analyze_file(Path(sys.argv[1]), timeline_limit=1000).report
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
refused = [list(f.lines) for f in report.findings if f.kind == "http-403"]
print(json.dumps({"growth_kib": after - before, "summary": report.summary, "refused": refused}))
"""


def test_ok_50mb_log_streams_with_bounded_memory(tmp_path: Path) -> None:
    log = tmp_path / "big-app.log"
    refused_line = _big_log(log, 50 * 1024 * 1024)
    assert log.stat().st_size > 50 * 1024 * 1024
    # A fresh interpreter measures its own peak RSS before and after the analysis
    # (the test process's own peak says nothing: other tests ran in it).
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(log)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout)
    # Reading the file whole would grow the process by over 50 MB; streaming keeps
    # the timeline (1000 entries of at most 4 KiB each) and one 64 KiB line buffer.
    assert result["growth_kib"] < 20 * 1024, result["growth_kib"]
    summary = result["summary"]
    assert summary["timeline_truncated"] is True and summary["timeline_kept"] == 1000
    assert summary["long_lines_cut"] >= 1 and summary["entries_clipped"] > 0
    assert result["refused"] == [[refused_line]]
    assert MAX_LINE_BYTES < 2 * 1024 * 1024


def test_ok_text_says_when_the_timeline_is_cut(tmp_path: Path) -> None:
    lines = "".join(f"07272103{i:02d}|so   |3|00|event {i}\n" for i in range(50))
    log = write(tmp_path / "many.log", lines)
    code, out, _ = invoke("logs", "analyze", str(log), "--timeline-limit", "5")
    assert code == 0
    assert "Timeline: the last 5 of 50 entries" in out and "--timeline-limit" in out
    assert "event 49" in out and "event 44" not in out


# --- docs/troubleshooting.md, "Phone log findings": every example runs as written ---


def _section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Phone log findings")
    following = re.search(r"^## ", text[start + 3 :], re.MULTILINE)
    return text[start : start + 3 + following.start()] if following else text[start:]


def _example_files(section: str) -> dict[str, str]:
    pattern = re.compile(r"<!-- file: (?P<name>\S+) -->\n```text\n(?P<body>.*?)```", re.DOTALL)
    return {m.group("name"): m.group("body") for m in pattern.finditer(section)}


def _console_blocks(section: str) -> list[list[tuple[str, list[str]]]]:
    """Each console block as [(command, expected output lines)]."""
    blocks = []
    for body in re.findall(r"```console\n(.*?)```", section, re.DOTALL):
        steps: list[tuple[str, list[str]]] = []
        for line in body.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                steps[-1][1].append(line)
        blocks.append(steps)
    return blocks


def _matches(expected: list[str], actual: list[str]) -> bool:
    """Doctest-style: a line ``...`` stands for any number of lines."""
    pattern = "".join(
        r"(?:.*\n)*?" if line == "..." else re.escape(line.rstrip()) + r"\n" for line in expected
    )
    return re.fullmatch(pattern, "".join(line.rstrip() + "\n" for line in actual)) is not None


def test_doc_console_examples_run_as_written(tmp_path: Path) -> None:
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (make tools installs it)")
    section = _section()
    files = _example_files(section)
    assert f"{MAC}-app.log" in files
    for name, body in files.items():
        write(tmp_path / name, body)
    # The prose says the phone uploaded the same log to the site.
    site = make_site(tmp_path)
    write(site / "boot" / "logs" / f"{MAC}-app.log", files[f"{MAC}-app.log"])
    env = {k: v for k, v in os.environ.items() if k != "PHONEPROV_SITE"}
    env.update(COLUMNS="200", PATH=f"{PHONEPROV.parent}{os.pathsep}{env.get('PATH', '')}")
    ran = 0
    for block in _console_blocks(section):
        for command, expected in block:
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=60,
                check=False,
            )
            actual = done.stdout.splitlines()
            assert _matches(expected, actual), f"$ {command}\n{done.stdout}"
            ran += 1
    assert ran >= 5


def _kind_sections(section: str) -> dict[str, tuple[set[str], str]]:
    pattern = re.compile(
        r"^#### `(?P<kind>[a-z0-9-]+)` \((?P<sev>[^)]*)\)\n\n```text\n(?P<body>.*?)```",
        re.MULTILINE | re.DOTALL,
    )
    result = {}
    for m in pattern.finditer(section):
        severities = set(re.findall(r"error|warning|info", m.group("sev")))
        result[m.group("kind")] = (severities, m.group("body"))
    return result


def test_doc_explains_every_finding_kind_with_an_example_that_produces_it(tmp_path: Path) -> None:
    sections = _kind_sections(_section())
    assert set(sections) == {str(kind) for kind in FindingKind}
    for kind, (severities, body) in sections.items():
        # log-truncated's example is a file that ends without its final newline.
        text = body.rstrip("\n") if kind == "log-truncated" else body
        analyzed = analyze_file(write(tmp_path / f"{kind}.log", text), timeline_limit=100)
        found = [f for f in analyzed.report.findings if f.kind == kind]
        assert found, (kind, [f.kind for f in analyzed.report.findings])
        assert found[0].severity in severities, (kind, found[0].severity)
