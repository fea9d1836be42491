"""What an import of an old boot directory did, or would do: the report's values.

Every file of the old directory ends up in one of four states, and the report
says which, with the line when it is about one parameter:

- ``imported``: turned into inventory entries, SIP lines, template layers or
  firmware catalog entries;
- ``kept``: copied into the boot directory and served as it is;
- ``skipped``: understood, and left out on purpose (a value the phone never
  used, a secret phoneprov keeps nowhere, a setting phoneprov makes itself);
- ``not-understood``: phoneprov could not read it; the phone it was meant
  for may lack something until it is fixed.

No value here holds a password.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from phoneprov.model import MacAddress


class Status(enum.StrEnum):
    IMPORTED = "imported"
    KEPT = "kept"
    SKIPPED = "skipped"
    NOT_UNDERSTOOD = "not-understood"


@dataclass(frozen=True, slots=True)
class Item:
    """One line of the report: a file (and line) of the old directory and what became of it."""

    status: Status
    file: str  # relative to the old boot directory, as on disk
    line: int | None
    message: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True, slots=True)
class LineSummary:
    """A SIP line as imported (the password only as set or not)."""

    index: int
    ext: str
    user: str
    server: str
    password_set: bool


@dataclass(frozen=True, slots=True)
class PhoneResult:
    """One phone added to (or updated in) the inventory."""

    mac: MacAddress
    group: str
    label: str
    lines: tuple[LineSummary, ...]
    files: tuple[str, ...]  # the config files it read, in order
    new: bool  # False: it was in the inventory already and is updated


@dataclass(frozen=True, slots=True)
class GroupResult:
    """A group made of the phones that read the same shared files."""

    name: str
    shared_files: tuple[str, ...]
    phones: int


@dataclass(frozen=True, slots=True)
class FirmwareResult:
    """An image added to the firmware catalog, and the groups it is assigned to."""

    version: str
    file: str
    part: str
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ImportReport:
    """Everything ``import_bootdir`` did (``dry_run``: would do; nothing was written)."""

    source: Path
    dry_run: bool
    phones: tuple[PhoneResult, ...]
    groups: tuple[GroupResult, ...]
    templates: tuple[str, ...]  # site-relative template files written
    firmware: tuple[FirmwareResult, ...]
    copied: tuple[str, ...]  # boot-directory paths of the files kept
    items: tuple[Item, ...]

    def by_status(self, status: Status) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.status is status)

    @property
    def understood(self) -> bool:
        """True when no file or line was left not understood."""
        return not self.by_status(Status.NOT_UNDERSTOOD)
