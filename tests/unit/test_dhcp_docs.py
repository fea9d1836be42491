"""docs/dhcp.md cannot go stale: every ``console`` block is run and its output compared.

A block starts with ``$ phoneprov ...`` (lines ending in ``\\`` continue the
command); the rest of the block is the exact output. To refresh the document
after a deliberate change: ``.venv/bin/python tests/unit/test_dhcp_docs.py --write``.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from phoneprov.cli.app import app

DOC = Path(__file__).resolve().parents[2] / "docs" / "dhcp.md"
BLOCK = re.compile(r"```console\n(.*?)```", re.S)


def split_block(body: str) -> tuple[str, list[str], str]:
    """Return (command text as written, argv after 'phoneprov', expected output)."""
    lines = body.splitlines(keepends=True)
    command = [lines.pop(0)]
    while command[-1].rstrip("\n").endswith("\\"):
        command.append(lines.pop(0))
    text = "".join(command)
    argv = shlex.split(text.removeprefix("$ ").replace("\\\n", " "))
    assert argv[0] == "phoneprov", f"doc block does not run phoneprov: {text}"
    return text, argv[1:], "".join(lines)


def run(argv: list[str]) -> str:
    result = CliRunner().invoke(app, argv)
    return result.output + ("" if result.exit_code == 0 else f"[exit {result.exit_code}]\n")


def blocks() -> list[str]:
    return BLOCK.findall(DOC.read_text(encoding="utf-8"))


def test_ok_doc_shows_every_format() -> None:
    formats = set()
    for body in blocks():
        _, argv, _ = split_block(body)
        if argv[:2] == ["dhcp", "options"]:
            formats.add(argv[argv.index("--format") + 1] if "--format" in argv else "table")
    assert formats == {
        "table", "json", "windows-netsh", "powershell", "cisco-ios",
        "isc-dhcpd", "kea", "dnsmasq", "mikrotik",
    }  # fmt: skip


@pytest.mark.parametrize("body", blocks(), ids=lambda b: " ".join(split_block(b)[1][:4]))
def test_doc_block_output_is_current(body: str) -> None:
    text, argv, want = split_block(body)
    assert run(argv) == want, f"docs/dhcp.md is stale for: {text.strip()}; rerun with --write"


def rewrite() -> None:
    """Replace every block's output with what the command prints now."""

    def fresh(match: re.Match[str]) -> str:
        text, argv, _ = split_block(match.group(1))
        return f"```console\n{text}{run(argv)}```"

    DOC.write_text(BLOCK.sub(fresh, DOC.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    rewrite()
