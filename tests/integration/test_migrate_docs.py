"""docs/migrate.md: every sh block runs, in order, and every text block after one appears.

The page builds its own old boot directory, so the commands run as an
administrator would type them, from an empty folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "migrate.md"
BLOCK = re.compile(r"```(sh|text)\n(.*?)```", re.DOTALL)


def test_ok_migrate_doc_examples_run(tmp_path: Path) -> None:
    blocks = BLOCK.findall(DOC.read_text())
    assert sum(kind == "sh" for kind, _ in blocks) >= 5
    env = {
        **os.environ,
        "COLUMNS": "200",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("PHONEPROV_SITE", None)
    previous = ""
    for kind, text in blocks:
        if kind == "sh":
            result = subprocess.run(
                ["bash", "-e", "-c", f"export PHONEPROV_SITE=./site\n{text}"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode == 0, f"{text}\n{result.stdout}\n{result.stderr}"
            previous = result.stdout
        else:
            assert previous, f"a text block follows no command:\n{text}"
            for line in text.splitlines():
                assert line in previous.splitlines(), f"{line!r} not in:\n{previous}"
            previous = ""
