"""The inventory: devices the administrator declares, with model, group, label and lines.

Values are checked before anything is stored: a MAC in any usual form, a known
model, plain group and site names, lines within the model's line count, and
line values that fit a SIP registration. ``csvfile`` reads and writes the CSV
form; this module holds the checks and the service over the store.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from phoneprov.errors import InputError
from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.protocols.phonemodels import MAX_LINES, find_model
from phoneprov.records import DeviceRecord, InventoryEntry, Line, SaveCount
from phoneprov.store import Store

LINE_FIELDS = ("ext", "user", "password", "server")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_EXT_RE = re.compile(r"[A-Za-z0-9_.+*#\-]{1,64}")
_USER_RE = re.compile(r"[A-Za-z0-9_.+*#@!~\-]{1,128}")
_SERVER_RE = re.compile(r"[A-Za-z0-9.\-]{1,253}(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")

__all__ = ["InventoryEntry", "Line"]


def check_name(value: str, what: str) -> str:
    """A group or site name: letters, digits, ``_ . -``; InputError otherwise."""
    if value and not _NAME_RE.fullmatch(value):
        raise InputError(
            f"{what} {value!r} is not a plain name",
            f"Use letters, digits, '_', '.' and '-' for the {what} (at most 64, "
            "starting with a letter or digit).",
        )
    return value


def check_label(value: str) -> str:
    if len(value) > 128 or any(ord(ch) < 0x20 for ch in value):
        raise InputError(
            f"label {value[:40]!r} is over 128 characters or has control characters",
            "Shorten the label and keep it on one line.",
        )
    return value


def check_model(value: str) -> str:
    """The canonical model token for ``value`` ("" stays "")."""
    return find_model(value).token if value else ""


def line_limit(model: str) -> int:
    """How many lines a device of this model may have (the most of any model if unknown)."""
    return find_model(model).lines if model else MAX_LINES


def check_line_value(field: str, value: str) -> str:
    """Check one line field; raise InputError naming the field and the rule."""
    if field == "password":
        if len(value) > 256 or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
            raise InputError(
                "the password is over 256 characters or has control characters",
                "Use printable characters only.",
            )
        return value
    rules = {
        "ext": (_EXT_RE, "letters, digits and _ . + * # -"),
        "user": (_USER_RE, "letters, digits and _ . + * # @ ! ~ -"),
        "server": (_SERVER_RE, "a host name or address, optionally :port"),
    }
    pattern, allowed = rules[field]
    if value and not pattern.fullmatch(value):
        raise InputError(f"{field} {value!r} is not valid", f"A line's {field} takes {allowed}.")
    return value


def make_line(index: int, fields: dict[str, str], model: str) -> Line:
    """Build line ``index`` from its fields; InputError when it cannot be used."""
    limit = line_limit(model)
    if not 1 <= index <= limit:
        raise InputError(
            f"line {index} is out of range: {model or 'a phone'} has {limit} line(s)",
            f"Use line numbers 1 to {limit}.",
        )
    values = {
        f: check_line_value(f, fields.get(f, "").strip() if f != "password" else fields.get(f, ""))
        for f in LINE_FIELDS
    }
    if not values["ext"]:
        raise InputError(f"line {index} has no ext", "Give the extension (reg.N.address).")
    return Line(
        index, values["ext"], values["user"] or values["ext"], values["password"], values["server"]
    )


def parse_line_spec(spec: str, model: str) -> Line:
    """Parse ``1:ext=1001,user=1001,password=secret,server=pbx.example.com``.

    Raises InputError naming the part that is wrong.
    """
    head, sep, rest = spec.partition(":")
    if not sep or not head.strip().isdigit():
        raise InputError(
            f"--line {_mask_spec(spec)!r} does not start with a line number",
            "Write it as 1:ext=1001,user=1001,password=...,server=pbx.example.com",
        )
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        if not eq or key not in LINE_FIELDS:
            raise InputError(
                f"--line part {key or part!r} is not one of "
                f"{', '.join(f + '=' for f in LINE_FIELDS)}",
                "Separate fields with commas; a password with a comma needs "
                "`phoneprov device import` (CSV).",
            )
        fields[key] = value
    return make_line(int(head), fields, model)


def _mask_spec(spec: str) -> str:
    return re.sub(r"(password=)[^,]*", r"\1***", spec)


def merge_lines(old: Sequence[Line], new: Sequence[Line]) -> tuple[Line, ...]:
    """``old`` with the lines of ``new`` put in place by index."""
    by_index = {line.index: line for line in old}
    by_index.update({line.index: line for line in new})
    return tuple(by_index[i] for i in sorted(by_index))


class Inventory:
    """Device CRUD over the shared store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.rows = store.inventory

    def add(
        self,
        mac: MacAddress,
        *,
        model: str | None = None,
        site: str | None = None,
        group: str | None = None,
        label: str | None = None,
        lines: Sequence[str] = (),
    ) -> InventoryEntry:
        """Create or update one device; options left None keep their current value."""
        current = self.rows.entry(mac) or InventoryEntry(mac)
        token = check_model(model) if model is not None else current.model
        entry = replace(
            current,
            model=token,
            site=check_name(site, "site") if site is not None else current.site,
            group=check_name(group, "group") if group is not None else current.group,
            label=check_label(label) if label is not None else current.label,
        )
        parsed = [parse_line_spec(spec, token) for spec in lines]
        kept = [ln for ln in current.lines if ln.index <= line_limit(token)]
        entry = replace(entry, lines=merge_lines(kept, parsed))
        self.rows.save([entry])
        return entry

    def save(self, entries: Sequence[InventoryEntry]) -> SaveCount:
        return self.rows.save(entries)

    def get(self, mac: MacAddress) -> tuple[DeviceRecord, InventoryEntry]:
        """The device record and its inventory entry; InputError if unknown."""
        record = self.store.get_device(mac)
        entry = self.rows.entry(mac)
        if record is None or entry is None:
            raise InputError(
                f"no device {mac} in this site",
                "See `phoneprov device list`, or add it with `phoneprov device add`.",
            )
        return record, entry

    def list(
        self, *, site: str | None = None, group: str | None = None, pending: bool = False
    ) -> list[tuple[DeviceRecord, InventoryEntry]]:
        """Records with entries, filtered; ``pending`` lists only quarantined devices."""
        status = DeviceStatus.PENDING if pending else None
        entries = self.rows.entries(site=site, group=group, status=status)
        records = {r.mac.value: r for r in self.store.list_devices(status)}
        return [(records[e.mac.value], e) for e in entries if e.mac.value in records]

    def remove(self, mac: MacAddress) -> None:
        if not self.rows.remove(mac):
            raise InputError(f"no device {mac} in this site", "See `phoneprov device list`.")

    def approve(self, mac: MacAddress) -> DeviceStatus:
        """Move a quarantined (or discovered, or denied) device to known.

        Returns the status it had. Raises InputError for unknown or blocked devices.
        """
        record = self.store.get_device(mac)
        if record is None:
            raise InputError(
                f"no device {mac} has asked for files yet",
                "Add it to the inventory with `phoneprov device add` instead.",
            )
        if record.status is DeviceStatus.BLOCKED:
            raise InputError(
                f"{mac} is blocked",
                "A blocked device stays blocked; remove the "
                "block first (revoke or `phoneprov device remove`).",
            )
        if record.status is not DeviceStatus.KNOWN:
            self.store.set_status(mac, DeviceStatus.KNOWN)
        return record.status
