"""Firmware compliance: which phones run which version, against what they are assigned.

A phone's assigned version is what the server offers it now: a rollout's word
for it, else its group's assignment (when that version has an image for its
model), else its model's (``FirmwareCatalog.version_for``). What it runs is
the application version it last reported in its User-Agent. Each inventory
phone is one of: ``compliant`` (runs what it is assigned), ``behind`` (runs
another version), ``unknown`` (never reported a version), ``unassigned`` (no
version is assigned to it). The report counts them per model and group.
"""

from __future__ import annotations

import csv
import io
from contextlib import closing
from dataclasses import asdict, dataclass

from phoneprov.config import Settings
from phoneprov.provisioning.firmware import FirmwareCatalog
from phoneprov.provisioning.rollouts import model_token
from phoneprov.store import open_store

STATUSES = ("compliant", "behind", "unknown", "unassigned")


@dataclass(frozen=True, slots=True)
class PhoneCompliance:
    mac: str
    model: str
    group: str
    site: str
    assigned: str  # "" when nothing is assigned
    source: str  # "rollout NAME", "group G", "model M" or ""
    running: str  # "" when it never reported
    status: str  # one of STATUSES
    last_seen: float | None


@dataclass(frozen=True, slots=True)
class ComplianceRow:
    """Phones of one model and group, per status, and the versions they run."""

    model: str
    group: str
    phones: int
    compliant: int
    behind: int
    unknown: int
    unassigned: int
    assigned: tuple[str, ...]
    running: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ComplianceReport:
    phones: tuple[PhoneCompliance, ...]
    rows: tuple[ComplianceRow, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "summary": [asdict(r) for r in self.rows],
            "phones": [asdict(p) for p in self.phones],
        }

    def to_csv(self, *, phones: bool = False) -> str:
        """One line per model and group (or per phone with ``phones``)."""
        out = io.StringIO()
        if phones:
            writer = csv.writer(out)
            writer.writerow(["mac", "model", "group", "site", "assigned", "source", "running",
                             "status"])  # fmt: skip
            for p in self.phones:
                writer.writerow(
                    [p.mac, p.model, p.group, p.site, p.assigned, p.source, p.running, p.status]
                )
            return out.getvalue()
        writer = csv.writer(out)
        writer.writerow(["model", "group", "phones", *STATUSES, "assigned", "running"])
        for r in self.rows:
            writer.writerow(
                [r.model, r.group, r.phones, r.compliant, r.behind, r.unknown, r.unassigned,
                 " ".join(r.assigned), " ".join(r.running)]
            )  # fmt: skip
        return out.getvalue()


def firmware_compliance(settings: Settings) -> ComplianceReport:
    """The site's inventory phones against what they are assigned, per model and group."""
    with closing(open_store(settings)) as store:
        catalog = FirmwareCatalog(settings.site_dir / "firmware", store.firmware, store.inventory)
        entries = store.inventory.entries()
        devices = {d.mac.value: d for d in store.list_devices()}
        pins = store.fleet_actions.rollout_pins(
            [(e.mac.value, model_token(e.model), e.group) for e in entries]
        )
        scopes = {(a.scope, a.target): a.version for a in catalog.rows.assignments()}
        by_scope: dict[tuple[str, str], tuple[str, str]] = {}
        phones: list[PhoneCompliance] = []
        for entry in entries:
            model = model_token(entry.model)
            pin = pins.get(entry.mac.value)
            if pin is not None:
                assigned, source = pin.version, f"rollout {pin.rollout}"
            else:
                key = (model, entry.group)
                if key not in by_scope:
                    version = catalog.version_for(model, entry.group) or ""
                    by_scope[key] = (version, _source(scopes, model, entry.group, version))
                assigned, source = by_scope[key]
            device = devices.get(entry.mac.value)
            running = device.firmware if device else ""
            if not assigned:
                status = "unassigned"
            elif not running:
                status = "unknown"
            else:
                status = "compliant" if running == assigned else "behind"
            phones.append(
                PhoneCompliance(
                    entry.mac.value,
                    model,
                    entry.group,
                    entry.site,
                    assigned,
                    source,
                    running,
                    status,
                    device.last_seen if device else None,
                )
            )
    return ComplianceReport(tuple(phones), _rows(phones))


def _source(scopes: dict[tuple[str, str], str], model: str, group: str, assigned: str) -> str:
    if not assigned:
        return ""
    if group and scopes.get(("group", group)) == assigned:
        return f"group {group}"
    return f"model {model}"


def _rows(phones: list[PhoneCompliance]) -> tuple[ComplianceRow, ...]:
    grouped: dict[tuple[str, str], list[PhoneCompliance]] = {}
    for phone in phones:
        grouped.setdefault((phone.model, phone.group), []).append(phone)
    rows = []
    for (model, group), members in sorted(grouped.items()):
        count = {status: sum(p.status == status for p in members) for status in STATUSES}
        rows.append(
            ComplianceRow(
                model,
                group,
                len(members),
                count["compliant"],
                count["behind"],
                count["unknown"],
                count["unassigned"],
                tuple(sorted({p.assigned for p in members if p.assigned})),
                tuple(sorted({p.running for p in members if p.running})),
            )
        )
    return tuple(rows)
