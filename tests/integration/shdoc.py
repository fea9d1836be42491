"""Run a doc's ``sh`` blocks in order, and check that each ``text`` block after one appears.

The blocks run with ``bash -e`` in the caller's folder, with this virtualenv's
``phoneprov`` first on the PATH and ``PHONEPROV_SITE=./site``, as an
administrator would type them. Each line of a ``text`` block that follows an
``sh`` block must be a line of that block's output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BLOCK = re.compile(r"```(sh|text)\n(.*?)```", re.DOTALL)


def run_sh_blocks(doc: Path, cwd: Path, *, text_after_prose: bool) -> int:
    """Run every block of ``doc`` in ``cwd``; return how many ``sh`` blocks ran.

    ``text_after_prose``: a text block that follows prose shows syntax, not
    output, and is not checked; otherwise such a block fails the test.
    """
    env = {
        **os.environ,
        "COLUMNS": "200",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("PHONEPROV_SITE", None)
    previous, commands = "", 0
    for kind, text in BLOCK.findall(doc.read_text()):
        if kind == "sh":
            result = subprocess.run(
                ["bash", "-e", "-c", f"export PHONEPROV_SITE=./site\n{text}"],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode == 0, f"{text}\n{result.stdout}\n{result.stderr}"
            previous, commands = result.stdout, commands + 1
            continue
        if not previous:
            assert text_after_prose, f"a text block follows no command:\n{text}"
            continue
        for line in text.splitlines():
            assert line in previous.splitlines(), f"{line!r} not in:\n{previous}"
        previous = ""
    return commands
