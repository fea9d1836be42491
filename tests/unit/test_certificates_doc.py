"""docs/certificates.md cannot go stale: every command in its ``sh`` blocks runs, in order,
in one empty directory, and must succeed. ``phoneprov`` commands run in-process through
the real typer app (one interpreter start instead of twenty); the others (``openssl``,
``ls``) run in bash."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from phoneprov.cli.app import app

DOC = Path(__file__).resolve().parents[2] / "docs" / "certificates.md"
BLOCK = re.compile(r"```sh\n(.*?)```", re.S)
runner = CliRunner()


def commands() -> list[str]:
    """Return every command of every sh block, continuation lines joined."""
    found: list[str] = []
    for block in BLOCK.findall(DOC.read_text(encoding="utf-8")):
        found += [c.strip() for c in block.replace("\\\n", " ").splitlines() if c.strip()]
    return found


def run(command: str, cwd: Path) -> str:
    argv = shlex.split(command)
    if argv[0] == "phoneprov":
        result = runner.invoke(app, argv[1:])
        assert result.exit_code == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        return result.stdout
    done = subprocess.run(
        ["bash", "-e", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_ok_every_command_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PHONEPROV_SITE", raising=False)
    steps = commands()
    assert len(steps) >= 15
    outputs = {command: run(command, tmp_path) for command in steps}
    assert outputs["ls site/trust"].split() == ["phoneprov-root.pem", "polycom.pem"]
    assert "verdict" in next(
        v for k, v in outputs.items() if k.startswith("phoneprov cert inspect")
    )
    config = (tmp_path / "0004f2abcdef-cert.cfg").read_text()
    assert 'device.sec.TLS.customDeviceCert1.publicCert="-----BEGIN PKCS7-----' in config
    listing = json.loads(run("phoneprov ca list --site site --format json", tmp_path))
    assert [r["reason"] for r in listing["certificates"] if r["mac"]] == ["key-compromise"]
