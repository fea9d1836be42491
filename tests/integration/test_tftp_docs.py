"""docs/tftp.md cannot go stale: its settings block is the defaults, its commands work.

Each ``console`` block is one ``$ command`` (run by bash in a scratch folder,
with the doc's port 6969 replaced by the test server's) followed by its exact
output, stdout and stderr together.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.tftp_harness import Running, make_site, serve

from phoneprov.config import TftpSettings, settings_from_mapping

DOC = Path(__file__).resolve().parents[2] / "docs" / "tftp.md"
CONSOLE = re.compile(r"```console\n(.*?)```", re.S)


def console_blocks() -> list[str]:
    return CONSOLE.findall(DOC.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with serve(make_site(tmp_path_factory.mktemp("tftp-doc"), os.urandom(100_000))) as run:
        yield run


def test_ok_settings_block_is_the_defaults(tmp_path: Path) -> None:
    block = re.search(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert block is not None
    settings = settings_from_mapping(tmp_path, tomllib.loads(block.group(1)), tmp_path / "x")
    assert settings.tftp == TftpSettings()


@pytest.mark.parametrize("body", console_blocks(), ids=lambda b: b.split("\n")[0][2:40])
def test_doc_command(running: Running, tmp_path: Path, body: str) -> None:
    command, _, expected = body.partition("\n")
    assert command.startswith("$ ")
    tool = command[2:].split()[0]
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (make tools)")
    result = subprocess.run(
        ["bash", "-c", command[2:].replace("6969", str(running.port))],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.stdout + result.stderr == expected, f"docs/tftp.md is stale for: {command}"
    if (tmp_path / "sip.ld").exists():  # the firmware examples fetched the whole file
        assert (tmp_path / "sip.ld").read_bytes() == (running.boot / "sip.ld").read_bytes()
