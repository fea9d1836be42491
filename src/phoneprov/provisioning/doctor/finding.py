"""What ``phoneprov doctor`` reports: one Finding per check, pass, warn or fail, with the fix.

The exit code of the doctor follows the worst finding (0 all pass, 1 a warning,
2 a failure), so scripts and monitoring can act on it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Severity = Literal["pass", "warn", "fail"]
SEVERITIES: tuple[Severity, ...] = ("pass", "warn", "fail")
EXIT_CODES: dict[Severity, int] = {"pass": 0, "warn": 1, "fail": 2}


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's result: its id, how bad, what was seen (naming the values), and the fix."""

    check: str
    severity: Severity
    message: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "check": self.check,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
        }


def passed(check: str, message: str) -> Finding:
    return Finding(check, "pass", message)


def exit_code(findings: Iterable[Finding]) -> int:
    """Return 0 when every finding passed, 1 when the worst is a warning, 2 for a failure."""
    return max((EXIT_CODES[f.severity] for f in findings), default=0)


def summary(findings: Sequence[Finding]) -> dict[str, int]:
    """Return how many findings of each severity there are (every severity present)."""
    counts = Counter(f.severity for f in findings)
    return {severity: counts.get(severity, 0) for severity in SEVERITIES}


def from_severity(value: str) -> Severity:
    """Map a severity of the other checkers (``info``/``warn``/``fail``) to pass/warn/fail."""
    if value in ("warn", "warning"):
        return "warn"
    if value in ("fail", "error"):
        return "fail"
    return "pass"
