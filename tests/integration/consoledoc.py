"""Run a doc's ``console`` blocks as written, in a staging root, and compare their output.

A block holds ``$ command`` lines, each followed by its exact output (stdout and
stderr together); ``...`` in an expected line stands for any text. Paths under
``/var/``, ``/srv/`` and ``/root/`` are taken to ``ROOT/var/`` and so on, and
``sudo`` / ``sudo -u phoneprov`` are dropped (the test runs as whoever runs
it), so nothing outside the test's folder changes. Commands that cannot run in
a test (``systemctl``, ``service install``, ``git pull``) are named by the
caller, must be in the doc as written, and are skipped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.serverkit import PHONEPROV

CONSOLE = re.compile(r"```console\n(.*?)```", re.S)
_ROOTS = ("/var/", "/srv/", "/root/")


@dataclass(frozen=True)
class Step:
    command: str
    expected: list[str]


def steps(doc: Path) -> list[Step]:
    """Every ``$ command`` of the doc's console blocks, in order, with its expected output."""
    found: list[Step] = []
    for block in CONSOLE.findall(doc.read_text(encoding="utf-8")):
        for line in block.splitlines():
            if line.startswith("$ "):
                found.append(Step(line[2:], []))
            else:
                assert found, f"{doc.name}: output before any command: {line!r}"
                found[-1].expected.append(line)
    return found


def _local(command: str, root: Path) -> str:
    command = re.sub(r"(^|\| )sudo (-u phoneprov )?", r"\1", command)
    command = command.replace(".venv/bin/phoneprov", PHONEPROV)
    for top in _ROOTS:
        command = re.sub(rf"(?<![\w.]){re.escape(top)}", f"{root}{top}", command)
    return command


def _matches(expected: list[str], actual: list[str]) -> bool:
    if len(expected) != len(actual):
        return False
    for want, got in zip(expected, actual, strict=True):
        pattern = ".*".join(re.escape(part) for part in want.split("..."))
        if not re.fullmatch(pattern, got):
            return False
    return True


def run_doc(doc: Path, root: Path, skipped: set[str]) -> list[Step]:
    """Run every step of ``doc`` but ``skipped`` in ``root``; assert each output; return
    the steps run. ``skipped`` commands must all be in the doc."""
    all_steps = steps(doc)
    assert skipped <= {s.command for s in all_steps}, "the doc lost a command the test skips"
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    ran = []
    for step in all_steps:
        if step.command in skipped:
            continue
        result = subprocess.run(
            ["bash", "-c", _local(step.command, root)],
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=120, check=False, env={**os.environ, "PATH": path, "COLUMNS": "200"},
        )  # fmt: skip
        actual = result.stdout.replace(str(root), "").splitlines()
        assert _matches(step.expected, actual), (
            f"{doc.name} is stale for: $ {step.command}\n"
            "expected:\n" + "\n".join(step.expected) + "\ngot:\n" + "\n".join(actual)
        )
        ran.append(step)
    return ran
