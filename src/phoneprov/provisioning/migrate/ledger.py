"""What became of each parameter of the old files, gathered across phones.

One shared file is read by many phones: a parameter in it may feed the lines
of some, a template layer, and be overridden for others. The ledger keeps, per
occurrence (file, line, name), where it was used and why it was left out; the
report then says "imported" for an occurrence used anywhere, and otherwise the
first reason it was left out, on its own line.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from phoneprov.provisioning.migrate.report import Item, Status


@dataclass(frozen=True, slots=True)
class Source:
    """One parameter as a phone read it: its value and where it stands."""

    name: str
    value: str
    file: str
    line: int
    shared: bool  # from a file many phones read, not the phone's own

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.file, self.line, self.name)


@dataclass(frozen=True, slots=True)
class Use:
    """Where an imported parameter went: a phone's line or label, or a template file."""

    kind: str  # "line" | "label" | "template"
    target: str  # MAC for lines and labels, site-relative path for templates
    index: int = 0  # the line number, for lines


@dataclass
class Ledger:
    uses: dict[tuple[str, int, str], set[Use]] = field(default_factory=lambda: defaultdict(set))
    skipped: dict[tuple[str, int, str], str] = field(default_factory=dict)
    problems: list[Item] = field(default_factory=list)

    def use(self, source: Source, use: Use) -> None:
        self.uses[source.key].add(use)

    def skip(self, source: Source, why: str) -> None:
        self.skipped.setdefault(source.key, f"{source.name}: {why}")

    def problem(self, source: Source, message: str) -> None:
        self.problems.append(Item(Status.NOT_UNDERSTOOD, source.file, source.line, message))

    def items(self) -> list[Item]:
        """One summary per file that fed anything, then each line left out, by file and line."""
        per_file: dict[str, list[set[Use]]] = defaultdict(list)
        for (file, _line, _name), uses in self.uses.items():
            per_file[file].append(uses)
        items = [
            Item(Status.IMPORTED, file, None, _summary(found)) for file, found in per_file.items()
        ]
        items.extend(
            Item(Status.SKIPPED, file, line, why)
            for (file, line, _name), why in self.skipped.items()
            if (file, line, _name) not in self.uses
        )
        items.extend(self.problems)
        return items


def _summary(found: list[set[Use]]) -> str:
    """``5 parameter(s): lines 1, 2 of 0004f2000001; templates/site.cfg.j2``."""
    uses = set().union(*found)
    lines: dict[str, set[int]] = defaultdict(set)
    for use in uses:
        if use.kind == "line":
            lines[use.target].add(use.index)
    labels = sorted({use.target for use in uses if use.kind == "label"})
    templates = sorted({use.target for use in uses if use.kind == "template"})
    parts = []
    if len(lines) == 1:
        mac, numbers = next(iter(lines.items()))
        parts.append(f"line {', '.join(map(str, sorted(numbers)))} of {mac}")
    elif lines:
        parts.append(f"SIP lines of {len(lines)} phones")
    if len(labels) == 1:
        parts.append(f"label of {labels[0]}")
    elif labels:
        parts.append(f"labels of {len(labels)} phones")
    parts.extend(templates)
    return f"{len(found)} parameter(s) -> {'; '.join(parts)}"
