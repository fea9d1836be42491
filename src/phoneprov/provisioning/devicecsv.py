"""The inventory as CSV: import with a report of every bad row, export for re-import.

Header: ``mac`` and any of ``model, site, group, label`` and
``line<N>_ext, line<N>_user, line<N>_password, line<N>_server``. A column left
out of the header keeps the device's current value (so an export without
passwords can be edited and imported back); a column present but empty clears
it. Rows are numbered as a spreadsheet shows them: the header is row 1.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from phoneprov.errors import InputError
from phoneprov.model import MacAddress
from phoneprov.provisioning.inventory import (
    LINE_FIELDS,
    check_label,
    check_line_value,
    check_model,
    check_name,
    line_limit,
)
from phoneprov.records import InventoryEntry, Line

DEVICE_COLUMNS = ("mac", "model", "site", "group", "label")
_LINE_COLUMN = re.compile(r"^line(\d{1,2})_(ext|user|password|server)$")
MASK = "********"


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a row cannot be imported."""

    row: int
    column: str
    value: str
    reason: str


@dataclass
class ImportPlan:
    """What an import would store, and every problem found on the way."""

    entries: list[InventoryEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    rows: int = 0

    @property
    def bad_rows(self) -> set[int]:
        return {problem.row for problem in self.problems}


@dataclass(frozen=True, slots=True)
class _Row:
    number: int
    values: dict[str, str]


def _shown(column: str, value: str) -> str:
    return MASK if column.endswith("_password") and value else value


def read_rows(stream: TextIO) -> tuple[list[str], list[_Row], list[Problem]]:
    """Parse the CSV into header and rows; header problems and ragged rows are reported."""
    reader = csv.reader(stream)
    problems: list[Problem] = []
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        return [], [], [Problem(1, "", "", "the file is empty; the first row must be a header")]
    except csv.Error as error:
        return [], [], [Problem(1, "", "", f"not CSV: {error}")]
    seen: set[str] = set()
    for name in header:
        if name in seen:
            problems.append(Problem(1, name, name, "column appears twice"))
        seen.add(name)
        if name not in DEVICE_COLUMNS and not _LINE_COLUMN.match(name):
            problems.append(
                Problem(
                    1,
                    name,
                    name,
                    "unknown column; known: "
                    + ", ".join(DEVICE_COLUMNS)
                    + ", line<N>_"
                    + "|".join(LINE_FIELDS),
                )
            )
    if "mac" not in seen:
        problems.append(Problem(1, "mac", "", "the header has no mac column"))
    rows: list[_Row] = []
    if problems:
        return header, rows, problems
    try:
        for number, fields in enumerate(reader, start=2):
            if not any(cell.strip() for cell in fields):
                continue
            if len(fields) != len(header):
                problems.append(
                    Problem(
                        number,
                        "",
                        "",
                        f"row has {len(fields)} fields; the header has {len(header)}",
                    )
                )
                continue
            rows.append(_Row(number, dict(zip(header, fields, strict=True))))
    except csv.Error as error:
        problems.append(Problem(reader.line_num, "", "", f"not CSV: {error}"))
    return header, rows, problems


def _line_numbers(header: Sequence[str]) -> list[int]:
    found = {int(m.group(1)) for name in header if (m := _LINE_COLUMN.match(name))}
    return sorted(found)


def plan_import(
    stream: TextIO,
    existing: Callable[[list[MacAddress]], dict[str, InventoryEntry]],
    progress: Callable[[int], None] | None = None,
) -> ImportPlan:
    """Check every row of the CSV in ``stream`` and build the entries to store.

    ``existing`` returns the current entries of the given MACs (absent columns keep
    their values). ``progress`` is called with the number of rows checked so far.
    """
    header, rows, problems = read_rows(stream)
    plan = ImportPlan(problems=problems, rows=len(rows))
    macs: dict[int, MacAddress] = {}
    first_row: dict[str, int] = {}
    for row in rows:
        text = row.values["mac"]
        try:
            mac = MacAddress.parse(text)
        except InputError as error:
            plan.problems.append(Problem(row.number, "mac", text, str(error)))
            continue
        if mac.is_wildcard:
            plan.problems.append(
                Problem(row.number, "mac", text, "000000000000 names the master file, not a phone")
            )
        elif mac.value in first_row:
            plan.problems.append(
                Problem(row.number, "mac", text, f"same MAC as row {first_row[mac.value]}")
            )
        else:
            first_row[mac.value] = row.number
            macs[row.number] = mac
    current = existing(list(macs.values()))
    line_numbers = _line_numbers(header)
    for done, row in enumerate(rows, start=1):
        mac_or_none = macs.get(row.number)
        if mac_or_none is not None:
            entry = _entry(
                row, mac_or_none, current.get(mac_or_none.value), line_numbers, plan.problems
            )
            if entry is not None:
                plan.entries.append(entry)
        if progress is not None and (done % 250 == 0 or done == len(rows)):
            progress(done)
    plan.problems.sort(key=lambda p: (p.row, p.column))
    return plan


def _entry(
    row: _Row,
    mac: MacAddress,
    old: InventoryEntry | None,
    line_numbers: list[int],
    problems: list[Problem],
) -> InventoryEntry | None:
    old = old or InventoryEntry(mac)
    values = row.values
    before = len(problems)

    def checked(column: str, check: Callable[[str], str], current: str) -> str:
        if column not in values:
            return current
        raw = values[column].strip()
        try:
            return check(raw)
        except InputError as error:
            problems.append(Problem(row.number, column, raw, str(error)))
            return current

    model = checked("model", check_model, old.model)
    site = checked("site", lambda v: check_name(v, "site"), old.site)
    group = checked("group", lambda v: check_name(v, "group"), old.group)
    label = checked("label", check_label, old.label)
    lines = {line.index: line for line in old.lines}
    limit = line_limit(model) if len(problems) == before else 0
    for n in line_numbers:
        given = {
            f"line{n}_{f}": values[f"line{n}_{f}"] for f in LINE_FIELDS if f"line{n}_{f}" in values
        }
        previous = lines.get(n)
        if not any(v.strip() for v in given.values()):
            if given:
                lines.pop(n, None)
            continue
        if limit and n > limit:
            column = f"line{n}_ext"
            problems.append(
                Problem(
                    row.number,
                    column,
                    values.get(column, ""),
                    f"{model or 'a phone'} has {limit} line(s)",
                )
            )
            continue
        fields: dict[str, str] = {}
        for f in LINE_FIELDS:
            column = f"line{n}_{f}"
            if column not in given:
                fields[f] = getattr(previous, f) if previous is not None else ""
                continue
            raw = given[column] if f == "password" else given[column].strip()
            try:
                fields[f] = check_line_value(f, raw)
            except InputError as error:
                problems.append(Problem(row.number, column, _shown(column, raw), str(error)))
        if len(fields) != len(LINE_FIELDS):
            continue
        if not fields["ext"]:
            problems.append(
                Problem(row.number, f"line{n}_ext", "", f"line {n} has values but no ext")
            )
            continue
        lines[n] = Line(
            n, fields["ext"], fields["user"] or fields["ext"], fields["password"], fields["server"]
        )
    if len(problems) != before:
        return None
    return InventoryEntry(mac, model, site, group, label, tuple(lines[i] for i in sorted(lines)))


def write_csv(entries: Iterable[InventoryEntry], out: TextIO, *, passwords: bool) -> int:
    """Write ``entries`` as CSV (passwords only when asked); returns the rows written."""
    listed = list(entries)
    count = max((line.index for e in listed for line in e.lines), default=1)
    fields = [f for f in LINE_FIELDS if passwords or f != "password"]
    header = list(DEVICE_COLUMNS) + [f"line{n}_{f}" for n in range(1, count + 1) for f in fields]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for entry in listed:
        by_index = {line.index: line for line in entry.lines}
        cells = [entry.mac.value, entry.model, entry.site, entry.group, entry.label]
        for n in range(1, count + 1):
            line = by_index.get(n)
            cells.extend(getattr(line, f) if line is not None else "" for f in fields)
        writer.writerow(cells)
    return len(listed)
