"""docs/lync.md cannot go stale: its ``sh`` blocks run in order in one directory, the last
one against a running server, with the installed ``phoneprov``, curl and openssl."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.serverkit import start_server

DOC = Path(__file__).resolve().parents[2] / "docs" / "lync.md"
BLOCK = re.compile(r"```sh\n(.*?)```", re.S)
BIN = Path(sys.executable).parent


def run_block(block: str, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{block}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_ok_every_shell_block_runs(tmp_path: Path) -> None:
    blocks = BLOCK.findall(DOC.read_text(encoding="utf-8"))
    assert len(blocks) == 5
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "200"}
    env.pop("PHONEPROV_SITE", None)
    # What the administrator has at hand: an extracted CAB and a newer image.
    cab = tmp_path / "ucupdates" / "UCPhone" / "Polycom" / "CX700" / "A" / "ENU" / "1.0.522.101"
    (cab / "CPE").mkdir(parents=True)
    (cab / "CPE" / "CPE.nbt").write_bytes(b"cab image" * 1000)
    (tmp_path / "CPE.nbt").write_bytes(b"newer image" * 1000)

    run_block(blocks[0], tmp_path, env)  # demo site, legacy chain, lint passes
    assert "1.0.522.101" in run_block(blocks[1], tmp_path, env)
    listing = run_block(blocks[2], tmp_path, env)
    assert "1.0.522.102" in listing and "pilot" in listing
    run_block(blocks[3], tmp_path, env)

    server = start_server(tmp_path / "site")
    try:
        out = run_block(blocks[4], tmp_path, {**env, "PROV": server.http})
    finally:
        server.stop()
    assert (
        "<BaseURL>http://127.0.0.1:" in out
        and "/DeviceUpdateFiles_Int/UCPhone/Polycom/CX700/A/ENU/1.0.522.102/CPE" in out
    )
    assert "Legacy Root" in out  # the CX700 that just asked gets the legacy chain
    assert "<Model>CX700</Model>" in out  # the raw body, as sent
