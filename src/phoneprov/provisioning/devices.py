"""One call per inventory action (add, import, list, show, remove, approve), by MAC and Settings.

Each call opens the site's store, does its work through ``Inventory`` and
closes the store, so the CLI and the admin API share the same checks and the
same messages. Values come back as frozen records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import TextIO

from phoneprov.config import Settings
from phoneprov.errors import InputError
from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.protocols.polycom import DEFAULT_FOLDERS, UploadKind
from phoneprov.provisioning import trail
from phoneprov.provisioning.bootdir import BootDir
from phoneprov.provisioning.devicecsv import ImportPlan, Problem, plan_import
from phoneprov.provisioning.inventory import Inventory
from phoneprov.provisioning.uploads import UploadFolder
from phoneprov.records import DeviceRecord, Event, InventoryEntry, SaveCount
from phoneprov.store import open_store

RECENT_EVENTS = 20  # events ``show_device`` returns, newest first
_OVERRIDE_SUFFIXES = {UploadKind.PHONE_OVERRIDE: "-phone.cfg", UploadKind.WEB_OVERRIDE: "-web.cfg"}


class BadRowsError(InputError):
    """A CSV import found bad rows and stored nothing; ``problems`` lists every one."""

    def __init__(self, message: str, hint: str, problems: Sequence[Problem]) -> None:
        super().__init__(message, hint)
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What a CSV import checked and stored (``saved`` is None for a dry run)."""

    plan: ImportPlan
    saved: SaveCount | None


@dataclass(frozen=True, slots=True)
class DeviceDetails:
    """Everything known about one phone (``device show``)."""

    record: DeviceRecord
    entry: InventoryEntry
    fetched: tuple[str, int] | None  # firmware version it downloads and how often
    events: tuple[Event, ...]  # newest first
    overrides: Mapping[str, str]  # <mac>-phone.cfg / <mac>-web.cfg name -> text


def device_fields(settings: Settings, mac: str) -> dict[str, object]:
    """What the audit trail compares before and after a change to one phone."""
    parsed = MacAddress.maybe(mac)
    if parsed is None:
        return {}
    with closing(open_store(settings)) as store:
        record, entry = store.get_device(parsed), store.inventory.entry(parsed)
    fields: dict[str, object] = {"status": record.status.value} if record else {}
    if entry is not None:
        fields.update(model=entry.model, site=entry.site, group=entry.group, label=entry.label)
        for line in entry.lines:
            fields[f"line{line.index}"] = (
                f"ext={line.ext},user={line.user},server={line.server},password={line.password}"
            )
    return fields


@trail.audited("device.add", target="mac", snapshot=device_fields)
def add_device(
    settings: Settings,
    mac: MacAddress,
    *,
    model: str | None = None,
    site: str | None = None,
    group: str | None = None,
    label: str | None = None,
    lines: Sequence[str] = (),
) -> InventoryEntry:
    """Create or update one phone (options left None keep their value); returns its entry.

    Raises InputError naming the value that is wrong.
    """
    with closing(open_store(settings)) as store:
        return Inventory(store).add(
            mac, model=model, site=site, group=group, label=label, lines=lines
        )


@trail.audited("device.import", target="source")
def import_devices(
    settings: Settings,
    stream: TextIO,
    source: str,
    *,
    skip_bad: bool = False,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Check the CSV in ``stream`` (named ``source`` in messages) and store its rows.

    Bad rows make the import store nothing (BadRowsError listing them) unless
    ``skip_bad``; then the good rows are stored and the result's plan still
    lists the problems. ``progress`` is called with the rows checked so far.
    """
    with closing(open_store(settings)) as store:
        inventory = Inventory(store)
        plan = plan_import(stream, inventory.rows.entries_by_mac, progress)
        if plan.problems and not skip_bad:
            raise BadRowsError(
                f"{len(plan.bad_rows)} of {plan.rows} rows in {source} are bad; nothing "
                "was imported",
                "Fix the rows listed above, or pass --skip-bad to import the good ones.",
                plan.problems,
            )
        if dry_run:
            return ImportResult(plan, None)
        return ImportResult(plan, inventory.save(plan.entries))


def list_devices(
    settings: Settings,
    *,
    site: str | None = None,
    group: str | None = None,
    pending: bool = False,
) -> list[tuple[DeviceRecord, InventoryEntry]]:
    """Inventory phones with their records, filtered; ``pending``: quarantined ones only."""
    with closing(open_store(settings)) as store:
        return Inventory(store).list(site=site, group=group, pending=pending)


def show_device(settings: Settings, mac: MacAddress) -> DeviceDetails:
    """The record, entry, firmware fetches, recent events and on-phone changes of ``mac``.

    Raises InputError when the phone is not in the inventory.
    """
    with closing(open_store(settings)) as store:
        record, entry = Inventory(store).get(mac)
        fetched = store.firmware.downloads(record.mac)
        events = store.events_for(record.mac, limit=RECENT_EVENTS)
    return DeviceDetails(record, entry, fetched, tuple(events), _overrides(settings, record.mac))


def _overrides(settings: Settings, mac: MacAddress) -> dict[str, str]:
    """The settings the phone's user changed (its upload folder first, then the root)."""
    boot = settings.boot_dir
    found: dict[str, str] = {}
    for kind, suffix in _OVERRIDE_SUFFIXES.items():
        name = f"{mac}{suffix}"
        for path in (boot / DEFAULT_FOLDERS[kind] / name, boot / name):
            if path.is_file():
                found[name] = path.read_text(encoding="utf-8", errors="replace")
                break
    return found


@trail.audited("device.remove", target="mac", snapshot=device_fields)
def remove_device(settings: Settings, mac: MacAddress) -> None:
    """Take ``mac`` out of the inventory; InputError when it is not in it."""
    with closing(open_store(settings)) as store:
        Inventory(store).remove(mac)


@dataclass(frozen=True, slots=True)
class Approval:
    """What approving a phone did: the status it had, and held uploads put in place."""

    previous: DeviceStatus
    released: tuple[str, ...]  # boot-directory paths of the uploads moved into place


@trail.audited("device.approve", target="mac", snapshot=device_fields)
def approve_device(settings: Settings, mac: MacAddress) -> Approval:
    """Let a quarantined phone get its configuration, and release the uploads held for it.

    Uploads the public account sent for a quarantined phone wait in ``<site>/held/``
    (decisions/0008). Raises InputError for a phone that never asked for files, or
    a blocked one.
    """
    with closing(open_store(settings)) as store:
        previous = Inventory(store).approve(mac)
    folder = UploadFolder(
        BootDir(settings.boot_dir),
        settings.site_dir / "versions",
        settings.uploads,
        settings.policy.folders,
    )
    released = folder.release(mac)
    return Approval(previous, tuple(str(path.relative_to(settings.boot_dir)) for path in released))


@trail.audited("device.quarantine", target="mac", snapshot=device_fields)
def quarantine_device(settings: Settings, mac: MacAddress) -> DeviceStatus:
    """Hold a phone: it gets no configuration until approved again; returns its old status.

    Raises InputError for a phone that never asked for files.
    """
    with closing(open_store(settings)) as store:
        record = store.get_device(mac)
        if record is None:
            raise InputError(
                f"no device {mac} has asked for files yet",
                "See `phoneprov device list` for the phones this site knows.",
            )
        store.set_status(mac, DeviceStatus.PENDING)
    return record.status
