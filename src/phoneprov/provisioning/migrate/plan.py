"""The import worked out before anything is written: phones, groups and template layers.

Each phone's files come from its master file (its own ``<MAC>.cfg`` when
there is one, else ``000000000000.cfg``), ``[PHONE_MAC_ADDRESS]`` filled in.
A file whose name carries the variable or the phone's MAC is the phone's own;
any other is shared. Phones that read the same shared files, in the same
order, form a group named after those files; what the shared files set
becomes the group's ``site.cfg`` layer, and what every group has alike the
site's. A phone whose own file cannot be read is not imported: its lines
would be missing, and importing it without them would look like success.
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from phoneprov.model import MacAddress
from phoneprov.protocols.configfile import ConfigDocument
from phoneprov.provisioning.migrate import layers
from phoneprov.provisioning.migrate.ledger import Ledger, Source, Use
from phoneprov.provisioning.migrate.phones import (
    Chosen,
    PhoneLines,
    Unit,
    effective,
    lines_of,
    template_params,
)
from phoneprov.provisioning.migrate.report import Item, Status
from phoneprov.provisioning.migrate.scan import MAC_VARIABLE, PART_VARIABLE, OldMaster, SourceDir
from phoneprov.records import InventoryEntry

_VARIABLE = re.compile(re.escape(MAC_VARIABLE), re.I)
_GROUP_CHARS = re.compile(r"[^A-Za-z0-9_.\-]+")
NO_SHARED_GROUP = "bootdir"  # the group of phones that read no shared file
TEMPLATES_DIR = "templates"


@dataclass(frozen=True, slots=True)
class PhonePlan:
    mac: MacAddress
    master: OldMaster
    files: tuple[str, ...]
    shared: tuple[str, ...]
    lines: PhoneLines
    units: tuple[Unit, ...]  # its device layer


@dataclass
class Plan:
    phones: list[PhonePlan] = field(default_factory=list)
    groups: dict[tuple[str, ...], str] = field(default_factory=dict)  # shared files -> name
    site_units: list[Unit] = field(default_factory=list)
    group_units: dict[str, list[Unit]] = field(default_factory=dict)
    read: set[str] = field(default_factory=set)  # files of the old directory read as config
    items: list[Item] = field(default_factory=list)

    def group_of(self, phone: PhonePlan) -> str:
        return self.groups[phone.shared]


def _private_files(
    source: SourceDir, masters: Mapping[str, OldMaster], per_phone: Mapping[str, OldMaster]
) -> frozenset[str]:
    """Files only one phone reads, listed by that phone's own ``<MAC>.cfg`` master file
    (``CONFIG_FILES="phone-aa.cfg, common.cfg"``): its own, whatever their names."""
    readers: dict[str, set[str]] = defaultdict(set)
    for mac, master in masters.items():
        for entry in master.config_files:
            rel = source.find(_VARIABLE.sub(mac, entry.name))
            if rel is not None:
                readers[rel].add(mac)
    return frozenset(
        rel for rel, macs in readers.items() if len(macs) == 1 and next(iter(macs)) in per_phone
    )


def _phone_files(
    source: SourceDir, master: OldMaster, mac: str, private: frozenset[str], plan: Plan
) -> tuple[list[tuple[str, ConfigDocument, bool]], Item | None]:
    """The files ``mac`` read, in order, as (file, document, shared); the first own file
    that cannot be read, if any."""
    files: list[tuple[str, ConfigDocument, bool]] = []
    bad: Item | None = None
    for entry in master.config_files:
        if PART_VARIABLE in entry.name.upper():
            plan.items.append(
                Item(
                    Status.NOT_UNDERSTOOD,
                    master.file,
                    entry.line,
                    f"{entry.name}: {PART_VARIABLE} depends on the phone model, which the old "
                    "directory does not say; put its settings in a group template",
                )
            )
            continue
        name = _VARIABLE.sub(mac, entry.name)
        rel = source.find(name)
        own = (
            MAC_VARIABLE in entry.name.upper()
            or posixpath.basename(name).lower().startswith(mac)
            or rel in private
        )
        if rel is None:
            plan.items.append(
                Item(
                    Status.SKIPPED,
                    master.file,
                    entry.line,
                    f"{name} is listed but not in the directory; {mac} booted without it",
                )
            )
            continue
        plan.read.add(rel)
        document = source.document(rel)
        if isinstance(document, Item):
            if own:
                bad = bad or document
            else:
                plan.items.append(document)
            continue
        files.append((rel, document, not own))
    return files, bad


def _group_name(shared: tuple[str, ...], taken: set[str]) -> str:
    """``sip-basic`` for (sip-basic.cfg,); a plain name inventory checks accept, unique."""
    stems = [posixpath.basename(name).rsplit(".", 1)[0] for name in shared]
    base = _GROUP_CHARS.sub("-", "_".join(stems)).strip("-_.")[:56] or NO_SHARED_GROUP
    name, count = base, 2
    while name in taken:
        name, count = f"{base}-{count}", count + 1
    taken.add(name)
    return name


def plan_phones(
    source: SourceDir,
    generic: OldMaster | None,
    per_phone: Mapping[str, OldMaster],
    macs: list[str],
    existing: Mapping[str, InventoryEntry],
    owned: frozenset[str],
    ledger: Ledger,
    *,
    site_wide: bool,
    reserved: frozenset[str] = frozenset(),
) -> Plan:
    """Every phone's lines, label, group and device layer; the group and site layers.

    ``site_wide`` False keeps shared parameters out of the site layer (the site
    serves phones this import does not know); ``reserved`` are the groups of
    those phones, which the import's groups must not join.
    """
    plan = Plan()
    documents: dict[tuple[str, ...], list[tuple[str, ConfigDocument, bool]]] = {}
    masters = {mac: m for mac in macs if (m := per_phone.get(mac) or generic) is not None}
    private = _private_files(source, masters, per_phone)
    for mac, master in masters.items():
        files, bad = _phone_files(source, master, mac, private, plan)
        if bad is not None:
            plan.items.append(
                Item(bad.status, bad.file, bad.line, f"{bad.message} Phone {mac} is not imported.")
            )
            continue
        params = effective(files, ledger)
        current = existing.get(mac)
        lines = lines_of(mac, params, current.model if current else "", ledger)
        device_params = {
            name: found
            for name, found in params.items()
            if (not found.shared or name in lines.pinned) and name not in lines.consumed
        }
        chosen = template_params(device_params, params, owned, ledger)
        _note(ledger, chosen, layers.device_layer(mac))
        shared = tuple(rel for rel, _, is_shared in files if is_shared)
        documents.setdefault(shared, [item for item in files if item[2]])
        plan.phones.append(
            PhonePlan(
                MacAddress(mac),
                master,
                tuple(rel for rel, _, _ in files),
                shared,
                lines,
                tuple(c.unit for c in chosen),
            )
        )
    taken = set(reserved)
    for shared in sorted(documents):
        plan.groups[shared] = _group_name(shared, taken)
    plan.items.extend(
        Item(Status.IMPORTED, master.file, None, f"master file of {count} phone(s)")
        for master, count in _masters(plan).items()
    )
    _group_layers(plan, documents, owned, ledger, site_wide)
    return plan


def _masters(plan: Plan) -> dict[OldMaster, int]:
    counts: dict[OldMaster, int] = defaultdict(int)
    for phone in plan.phones:
        counts[phone.master] += 1
    return counts


def _note(ledger: Ledger, chosen: list[Chosen], layer: str) -> None:
    for item in chosen:
        for source in item.sources:
            ledger.use(source, Use("template", f"{TEMPLATES_DIR}/{layer}"))


def _group_layers(
    plan: Plan,
    documents: Mapping[tuple[str, ...], list[tuple[str, ConfigDocument, bool]]],
    owned: frozenset[str],
    ledger: Ledger,
    site_wide: bool,
) -> None:
    """The units of each group's shared files, split into the site and group layers."""
    chosen: dict[str, list[Chosen]] = {}
    for shared, files in documents.items():
        params: dict[str, Source] = effective(files, ledger)
        chosen[plan.groups[shared]] = template_params(params, params, owned, ledger)
    plan.site_units, plan.group_units = layers.split_site_and_groups(
        {name: [c.unit for c in found] for name, found in chosen.items()}, site_wide=site_wide
    )
    for name, found in chosen.items():
        for item in found:
            in_site = item.unit in plan.site_units
            _note(ledger, [item], layers.site_layer() if in_site else layers.group_layer(name))


def plan_templates(plan: Plan, site_wide: bool) -> dict[str, str | None]:
    """Template files to write (path under templates/ -> text), or to drop (None) when an
    earlier import wrote them and this one has nothing for them."""
    templates: dict[str, str | None] = {}
    if site_wide:
        sources = sorted({rel for shared in plan.groups for rel in shared})
        templates[layers.site_layer()] = (
            layers.layer_text(plan.site_units, sources) if plan.site_units else None
        )
    for shared, name in plan.groups.items():
        units = plan.group_units.get(name, [])
        templates[layers.group_layer(name)] = layers.layer_text(units, shared) if units else None
    for phone in plan.phones:
        templates[layers.device_layer(phone.mac.value)] = (
            layers.layer_text(phone.units, phone.files) if phone.units else None
        )
    return templates
