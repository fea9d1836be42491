"""``import_bootdir``: one call that reads an old boot directory and fills a site from it.

Everything is worked out and checked first (files, lines, templates that
would be replaced, files that would be overwritten); only then is anything
written, so an import that stops on bad input leaves the site as it was, and
``dry_run`` writes nothing at all. The writes then go through the same
services as the CLI's: ``Inventory.save`` (one transaction; SIP passwords are
sealed by the store), ``firmware.add_firmware`` / ``assign_firmware``, and
plain file copies into the boot directory.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from contextlib import closing
from pathlib import Path

from phoneprov.config import Settings
from phoneprov.model import MacAddress
from phoneprov.protocols import configfile
from phoneprov.protocols.polycom import BOOTSTRAP_FILE
from phoneprov.provisioning.firmware import add_firmware, assign_firmware
from phoneprov.provisioning.inventory import Inventory
from phoneprov.provisioning.migrate import layers
from phoneprov.provisioning.migrate.files import Copy, plan_files
from phoneprov.provisioning.migrate.images import FirmwarePlan, plan_firmware
from phoneprov.provisioning.migrate.ledger import Ledger
from phoneprov.provisioning.migrate.plan import (
    TEMPLATES_DIR,
    PhonePlan,
    Plan,
    plan_phones,
    plan_templates,
)
from phoneprov.provisioning.migrate.report import (
    FirmwareResult,
    GroupResult,
    ImportReport,
    Item,
    LineSummary,
    PhoneResult,
    Status,
)
from phoneprov.provisioning.migrate.scan import SourceDir, find_masters, phones_of
from phoneprov.provisioning.render import SITE_FILE, TEMPLATES, SiteRenderer
from phoneprov.provisioning.template_layers import LayeredEnvironment, render_layered
from phoneprov.records import InventoryEntry
from phoneprov.store import Store, open_store


def owned_names(settings: Settings, store: Store) -> frozenset[str]:
    """Parameters phoneprov's built-in ``initial.cfg`` and ``site.cfg`` set for this site.

    An old file's value for one of them (its own provisioning server, its CA,
    its polling) would fight phoneprov's: the import leaves them out.
    """
    renderer = SiteRenderer(settings, store)
    context = renderer.context(renderer.facts(None), public=False)
    # No site layers, whatever the site holds: the built-in templates alone.
    builtin = LayeredEnvironment(Path(os.devnull))
    names: set[str] = set()
    for name in (BOOTSTRAP_FILE, SITE_FILE):
        body, _ = render_layered(builtin, TEMPLATES[name], "", "", context)
        names.update(attribute.name for attribute in configfile.read(body).attributes)
    return frozenset(names)


def import_bootdir(settings: Settings, directory: Path, *, dry_run: bool = False) -> ImportReport:
    """Import the Polycom boot directory ``directory`` into the site of ``settings``.

    Returns the report (phones, groups, templates, firmware, copied files, and
    one item per file or line). Raises InputError when ``directory`` is not a
    boot directory (no master file) or a template the import would write exists
    and is not one an import wrote; nothing is written then.
    """
    source = SourceDir.open(directory)
    generic, per_phone, items = find_masters(source)
    set_of_macs = phones_of(source, generic) | set(per_phone)
    macs = sorted(set_of_macs)
    ledger = Ledger()
    with closing(open_store(settings)) as store:
        inventory = Inventory(store)
        existing = inventory.rows.entries_by_mac([MacAddress(mac) for mac in macs])
        others = [e for e in inventory.rows.entries() if e.mac.value not in set_of_macs]
        site_wide = not others
        plan = plan_phones(
            source,
            generic,
            per_phone,
            macs,
            existing,
            owned_names(settings, store),
            ledger,
            site_wide=site_wide,
            reserved=frozenset(e.group for e in others if e.group),
        )
        templates = plan_templates(plan, site_wide)
        templates_dir = settings.site_dir / TEMPLATES_DIR
        layers.check_replaceable(templates_dir, [p for p, text in templates.items() if text])
        app_paths: dict[str, set[str]] = defaultdict(set)  # group -> its phones' APP_FILE_PATH
        for phone in plan.phones:
            app_paths[plan.group_of(phone)].add(phone.master.app_file_path)
        firmware = plan_firmware(source, app_paths)
        remaining = set(source.files) - plan.read - source.unreadable() - firmware.consumed
        remaining -= {phone.master.file for phone in plan.phones}
        copies, file_items = plan_files(
            source, remaining, settings.policy.folders, settings.boot_dir
        )
        entries = [_entry(plan, phone, existing.get(phone.mac.value)) for phone in plan.phones]
        if not dry_run:
            _write_templates(templates_dir, templates)
            inventory.save(entries)
    if not dry_run:
        _write_firmware(settings, source, firmware)
        _copy(source, settings.boot_dir, copies)
    all_items = [*items, *plan.items, *ledger.items(), *_firmware_items(firmware)]
    all_items += [*firmware.items, *file_items, *source.items]
    return ImportReport(
        source=source.root,
        dry_run=dry_run,
        phones=tuple(_phone_result(plan, phone, existing) for phone in plan.phones),
        groups=tuple(
            GroupResult(name, shared, sum(p.shared == shared for p in plan.phones))
            for shared, name in plan.groups.items()
        ),
        templates=tuple(f"{TEMPLATES_DIR}/{p}" for p, text in sorted(templates.items()) if text),
        firmware=tuple(
            FirmwareResult(
                image.version,
                image.file,
                image.part,
                tuple(g for g, v in sorted(firmware.assign.items()) if v == image.version),
            )
            for image in firmware.images
        ),
        copied=tuple(copy.target for copy in copies),
        items=tuple(sorted(dict.fromkeys(all_items), key=lambda i: (i.file, i.line or 0))),
    )


def _entry(plan: Plan, phone: PhonePlan, current: InventoryEntry | None) -> InventoryEntry:
    """The inventory entry: the model and site it had (the old files name neither) are kept."""
    return InventoryEntry(
        phone.mac,
        model=current.model if current else "",
        site=current.site if current else "",
        group=plan.group_of(phone),
        label=phone.lines.label or (current.label if current else ""),
        lines=phone.lines.lines,
    )


def _phone_result(plan: Plan, phone: PhonePlan, existing: dict[str, InventoryEntry]) -> PhoneResult:
    return PhoneResult(
        phone.mac,
        plan.group_of(phone),
        phone.lines.label,
        tuple(
            LineSummary(line.index, line.ext, line.user, line.server, bool(line.password))
            for line in phone.lines.lines
        ),
        phone.files,
        phone.mac.value not in existing,
    )


def _firmware_items(firmware: FirmwarePlan) -> list[Item]:
    items = []
    for image in firmware.images:
        groups = [g for g, v in sorted(firmware.assign.items()) if v == image.version]
        assigned = f", assigned to group {', '.join(groups)}" if groups else ""
        items.append(
            Item(
                Status.IMPORTED, image.file, None, f"firmware {image.version} -> catalog{assigned}"
            )
        )
    return items


def _write_templates(templates_dir: Path, templates: dict[str, str | None]) -> None:
    """Write the layers; drop those an earlier import wrote that have nothing left."""
    for relative, text in templates.items():
        path = templates_dir / relative
        if text is None:
            if path.is_file() and layers.MARKER in path.read_text(encoding="utf-8"):
                path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.importing")
        temporary.write_text(text, encoding="utf-8")
        # Renamed into place: a running server re-reads templates as they change
        # and must never see half of one.
        temporary.replace(path)


def _write_firmware(settings: Settings, source: SourceDir, firmware: FirmwarePlan) -> None:
    for image in firmware.images:
        add_firmware(settings, source.files[image.file], image.version, part=image.part)
    for group, version in sorted(firmware.assign.items()):
        assign_firmware(settings, version, group=group)


def _copy(source: SourceDir, boot_dir: Path, copies: list[Copy]) -> None:
    for copy in copies:
        target = boot_dir / copy.target
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.importing")
        shutil.copyfile(source.files[copy.source], temporary)
        temporary.replace(target)
