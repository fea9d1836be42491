"""docs/migrate.md: every sh block runs, in order, and every text block after one appears.

The page builds its own old boot directory, so the commands run as an
administrator would type them, from an empty folder.
"""

from __future__ import annotations

from pathlib import Path

from tests.integration.shdoc import run_sh_blocks

DOC = Path(__file__).resolve().parents[2] / "docs" / "migrate.md"


def test_ok_migrate_doc_examples_run(tmp_path: Path) -> None:
    assert run_sh_blocks(DOC, tmp_path, text_after_prose=False) >= 5
