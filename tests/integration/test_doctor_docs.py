"""docs/troubleshooting.md, section "doctor": every console example runs as written against a
running server, and prints what the document shows ("..." stands for any lines)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.integration.doctorkit import serve
from tests.serverkit import make_site

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "troubleshooting.md"


def section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## doctor")
    following = re.search(r"^## ", text[start + 3 :], re.MULTILINE)
    return text[start : start + 3 + following.start()] if following else text[start:]


def console_blocks() -> list[list[tuple[str, list[str]]]]:
    """Each ```console block as (command, expected output lines) pairs."""
    blocks = []
    for body in re.findall(r"```console\n(.*?)```", section(), re.DOTALL):
        steps: list[tuple[str, list[str]]] = []
        for line in body.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                steps[-1][1].append(line)
        blocks.append(steps)
    return blocks


def matches(expected: list[str], actual: list[str]) -> bool:
    """True if ``actual`` equals ``expected`` where a "..." line matches any lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and actual[0].rstrip() == expected[0] and matches(expected[1:], actual[1:])


def test_section_has_examples() -> None:
    blocks = console_blocks()
    assert len(blocks) == 3
    assert any("--url" in command for block in blocks for command, _ in block)


def test_doc_examples_run_as_written(tmp_path: Path) -> None:
    assert shutil.which("jq"), "jq is required (make tools installs it)"
    site = make_site(tmp_path / "site")
    server = serve(site)
    env = {
        **os.environ,
        "COLUMNS": "200",
        "HTTPS_PORT": str(server.ports["https"]),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    try:
        for block in console_blocks():
            for command, expected in block:
                result = subprocess.run(
                    ["bash", "-c", command],
                    cwd=tmp_path,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                actual = result.stdout.splitlines()
                if not matches(expected, actual):
                    pytest.fail(
                        f"$ {command}\nexpected:\n"
                        + "\n".join(expected)
                        + "\ngot:\n"
                        + result.stdout
                        + result.stderr
                    )
    finally:
        server.stop()
