"""Was a phone made with a factory certificate? Look up its label's part number and revision.

Polycom's table lists, per part number on the console label and on the box
label, the first revision made with a factory device certificate (late 2009
on). A phone whose label revision is at or after that one has a certificate.
Revisions are letters (A, B, ... Z, then AA) or, for some SpectraLink handsets,
numbers; each part uses one kind, and the table compares within that kind.
"""

from __future__ import annotations

import csv
import difflib
import functools
import io
import re
from dataclasses import dataclass
from importlib import resources

from phoneprov.errors import InputError

TABLE = "factory-cert-revisions.csv"


@dataclass(frozen=True)
class PartRevision:
    """One row of the table: a part number and its first revision with a factory certificate."""

    label: str  # "console" or "box"
    platform: str
    part: str
    first_revision: str
    date: str
    note: str


@dataclass(frozen=True)
class FactoryAnswer:
    """The answer for one part number and revision."""

    part: str
    platform: str
    label: str
    revision: str
    first_revision: str
    date: str
    has_factory_cert: bool
    note: str

    def to_json(self) -> dict[str, object]:
        return {
            "part": self.part,
            "platform": self.platform,
            "label": self.label,
            "revision": self.revision,
            "first_revision": self.first_revision,
            "date": self.date,
            "has_factory_cert": self.has_factory_cert,
            "note": self.note,
        }


@functools.cache
def load_table() -> tuple[PartRevision, ...]:
    """Return the rows of the shipped table (package data), in file order."""
    text = (resources.files("phoneprov") / "data" / TABLE).read_text(encoding="utf-8")
    return tuple(
        PartRevision(
            row["label"],
            row["platform"],
            row["part_number"],
            row["first_revision"],
            row["date"],
            row.get("note") or "",
        )
        for row in csv.DictReader(io.StringIO(text))
    )


def normalize_part(text: str) -> str:
    """Return a part number as printed on labels: ``2201-12450-001`` (spaces removed,
    12 bare digits split 4-5-3)."""
    part = re.sub(r"\s+", "", text).upper()
    if re.fullmatch(r"\d{12}", part):
        return f"{part[:4]}-{part[4:9]}-{part[9:]}"
    return part


def revision_key(revision: str) -> tuple[str, int, str]:
    """Return a sort key: numbers by value; letters by length then alphabet (Z < AA).

    Raises InputError for anything but letters or digits.
    """
    text = revision.strip().upper()
    if re.fullmatch(r"\d+", text):
        return ("number", int(text), "")
    if re.fullmatch(r"[A-Z]+", text):
        return ("letter", len(text), text)
    raise InputError(
        f"revision {revision!r} is neither letters nor a number",
        "Copy the revision from the label (e.g. Rev B, or 3 on some SpectraLink handsets).",
    )


def factory_revision(part: str, revision: str) -> FactoryAnswer:
    """Answer whether ``part`` at ``revision`` was made with a factory certificate.

    When the table lists a part twice, the later revision is used, so the
    answer never claims a certificate the phone may lack. Raises InputError for
    an unknown part (naming the closest known ones) or a revision of the wrong kind.
    """
    wanted = normalize_part(part)
    rows = [r for r in load_table() if r.part == wanted]
    if not rows:
        parts = sorted({r.part for r in load_table()})
        close = difflib.get_close_matches(wanted, parts, n=3, cutoff=0.6)
        raise InputError(
            f"part number {part!r} is not in the factory-certificate table",
            f"Closest known part numbers: {', '.join(close)}."
            if close
            else "Check the part number on the console or box label (e.g. 2201-12450-001).",
        )
    row = max(rows, key=lambda r: revision_key(r.first_revision))
    have, first = revision_key(revision), revision_key(row.first_revision)
    if have[0] != first[0]:
        raise InputError(
            f"revision {revision!r} is a {have[0]} but part {wanted} uses {first[0]} revisions "
            f"(first with a certificate: {row.first_revision})",
            "Copy the revision from the same label as the part number.",
        )
    note = "; ".join(dict.fromkeys(r.note for r in rows if r.note))
    return FactoryAnswer(
        part=wanted,
        platform=row.platform,
        label=row.label,
        revision=revision.strip().upper(),
        first_revision=row.first_revision,
        date=row.date,
        has_factory_cert=have >= first,
        note=note,
    )
