"""The README's by-hand boot of the demo phone, run as written (ports and paths adapted)."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from tests.serverkit import Server, start_server

README = Path(__file__).resolve().parents[2] / "README.md"


def _by_hand_commands() -> list[str]:
    text = README.read_text()
    section = text.split("## Boot the demo phone by hand", 1)[1]
    block = re.search(r"```console\n(.*?)```", section, re.DOTALL)
    assert block, "README lost its by-hand console block"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_ok_readme_by_hand_boot(server: Server) -> None:
    commands = _by_hand_commands()
    assert len(commands) == 5
    before = sorted(server.site.parent.iterdir())
    outputs = []
    for command in commands:
        command = command.replace("localhost:8080", f"127.0.0.1:{server.ports['http']}")
        command = command.replace("localhost:8443", f"localhost:{server.ports['https']}")
        command = command.replace("curl ", "curl --fail --silent --show-error ", 1)
        result = subprocess.run(
            command, shell=True, cwd=server.site.parent, capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, f"{shlex.quote(command)}: {result.stderr}"
        outputs.append(result.stdout)
    assert 'CONFIG_FILES="initial.cfg"' in outputs[0]
    assert "device.prov.serverName" in outputs[1]
    assert "-phone-secrets.cfg" in outputs[2]
    assert "reg.1.auth.password" in outputs[3]
    uploaded = server.site / "boot" / "logs" / "0004f2000001-boot.log"
    assert uploaded.read_text() == "boot ok\n"
    # The examples run in the checkout: they must leave no file in it.
    assert sorted(server.site.parent.iterdir()) == before


def test_ok_readme_tftp_block(site: Path, tmp_path: Path) -> None:
    server = start_server(site, protocols=("http", "https", "tftp"))
    try:
        section = README.read_text().split("Phones on DHCP option 66 use TFTP", 1)[1]
        block = re.search(r"```console\n(.*?)```", section, re.DOTALL)
        assert block
        command = block.group(1).strip().replace("6969", str(server.ports["tftp"]))
        result = subprocess.run(
            command, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, result.stderr
        assert 'CONFIG_FILES="initial.cfg"' in result.stdout
        written = [p.name for p in tmp_path.iterdir()]
        assert written == ["site"], "the README's TFTP example wrote a file"
    finally:
        server.stop()
