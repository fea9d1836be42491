"""docs/ftp.md and the README's FTP lines cannot go stale: run as written.

docs/ftp.md: its settings block is the defaults; each ``console`` block is one
``$ command`` (bash, in the folder that holds the demo ``site``, with the doc's
port 2121 replaced by the test server's) followed by its exact output, stdout
and stderr together. Blocks run in the order of the doc (later ones read what
earlier ones uploaded); those under "## FTPS" run against a server with
``ftps = true``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.serverkit import Server, edit_settings, start_server

from phoneprov.config import FtpSettings, settings_from_mapping

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ftp.md"
README = ROOT / "README.md"
CONSOLE = re.compile(r"```console\n(.*?)```", re.S)


def doc_blocks() -> list[tuple[str, str]]:
    """(section heading, block) for every console block of docs/ftp.md, in order."""
    blocks = []
    for section in re.split(r"^## ", DOC.read_text(encoding="utf-8"), flags=re.M):
        heading = section.split("\n", 1)[0]
        blocks += [(heading, body) for body in CONSOLE.findall(section)]
    return blocks


@pytest.fixture(scope="module")
def servers(
    site_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Server]]:
    running: dict[str, Server] = {}
    try:
        for name, ftps in (("plain", False), ("ftps", True)):
            site = tmp_path_factory.mktemp(f"ftp-doc-{name}") / "site"
            shutil.copytree(site_template, site, symlinks=True)
            edit_settings(site, ftp={"ftps": ftps})
            running[name] = start_server(site, protocols=("http", "https", "ftp"))
        yield running
    finally:
        for server in running.values():
            server.stop()


def run(command: str, server: Server) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        ["bash", "-c", command],
        cwd=server.site.parent, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PATH": path, "COLUMNS": "200"},
    )  # fmt: skip


def test_ok_settings_block_is_the_defaults(tmp_path: Path) -> None:
    block = re.search(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert block is not None
    settings = settings_from_mapping(tmp_path, tomllib.loads(block.group(1)), tmp_path / "x")
    assert settings.ftp == FtpSettings()


@pytest.mark.parametrize(
    ("heading", "body"), doc_blocks(), ids=lambda value: value.split("\n")[0][2:50]
)
def test_doc_command(servers: dict[str, Server], heading: str, body: str) -> None:
    command, _, expected = body.partition("\n")
    assert command.startswith("$ ")
    assert shutil.which("lftp"), "lftp is required (make test installs it)"
    server = servers["ftps" if heading == "FTPS" else "plain"]
    result = run(command[2:].replace("2121", str(server.ports["ftp"])), server)
    assert result.stdout + result.stderr == expected, f"docs/ftp.md is stale for: {command}"


def test_ok_readme_ftp_lines(servers: dict[str, Server]) -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("Phones that boot over FTP", 1)[1]
    block = CONSOLE.search(section)
    assert block is not None, "README lost its FTP console block"
    server = servers["plain"]
    outputs = []
    for line in block.group(1).splitlines():
        result = run(line.replace("localhost:2121", f"localhost:{server.ports['ftp']}"), server)
        assert result.returncode == 0, f"{line}: {result.stderr}"
        outputs.append(result.stdout)
    assert 'CONFIG_FILES="initial.cfg"' in outputs[0]
    uploaded = server.site / "boot" / "logs" / "0004f2000001-boot.log"
    assert uploaded.read_text() == "boot ok\n"
