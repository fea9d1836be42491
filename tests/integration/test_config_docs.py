"""docs/configuration.md: every sh block runs, in order, and every text block after one appears.

Text blocks that show syntax rather than output (the log line, the staged-rollout
command) follow prose, not an sh block, and are not checked.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.integration.shdoc import run_sh_blocks

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_ok_configuration_doc_examples_run(tmp_path: Path) -> None:
    (tmp_path / "3111-46162-001.sip.ld").write_bytes(os.urandom(4096))
    (tmp_path / "sip.ld").write_bytes(os.urandom(2048))
    assert run_sh_blocks(DOC, tmp_path, text_after_prose=True) >= 6
