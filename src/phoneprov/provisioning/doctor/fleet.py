"""Doctor checks about the phones the site serves: their families, firmware, Lync devices.

The inventory says which models the site has; each model's family decides
which certificates it can parse (``pki.lint`` families) and each model needs
a firmware image when the site manages firmware. The Lync/SfB checks
(CX700 chain, APP_FILE_PATH against the device update, loops) come from
``provisioning.lync.checks`` and are mapped to pass/warn/fail here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from phoneprov.config import Settings
from phoneprov.protocols.phonemodels import MODELS, Family
from phoneprov.provisioning.doctor.finding import Finding, from_severity, passed
from phoneprov.provisioning.firmware import FirmwareCatalog
from phoneprov.provisioning.lync import checks as lync_checks
from phoneprov.records import InventoryEntry
from phoneprov.store import Store

LINT_FAMILY = {
    Family.SOUNDPOINT_IP: "soundpoint",
    Family.SOUNDSTATION_IP: "soundpoint",
    Family.VVX: "vvx",
    Family.TRIO: "trio",
    # Edge E and CCX run the Trio's UC Software line (7.x and later): its TLS rules (inferred).
    Family.EDGE: "trio",
    Family.CCX: "trio",
}
FIRMWARE_ADD = "phoneprov firmware add FILE --version V --models MODEL"


def lint_families(entries: Sequence[InventoryEntry]) -> list[str]:
    """The ``pki.lint`` families of the inventory's models, in lint order, each once."""
    found = {
        LINT_FAMILY[MODELS[e.model.lower()].family] for e in entries if e.model.lower() in MODELS
    }
    return [f for f in ("soundpoint", "vvx", "trio") if f in found]


@dataclass(frozen=True, slots=True)
class ModelFirmware:
    """What the catalog gives one model (for its first inventory group): version, image on disk."""

    phones: int
    version: str | None
    image_present: bool


def firmware_findings(
    models: Mapping[str, ModelFirmware], *, managed: bool, boot_images: Sequence[str]
) -> list[Finding]:
    """Judge firmware per inventory model.

    ``managed``: the catalog assigns at least one version (the site manages firmware);
    ``boot_images``: ``sip.ld``/``<part>.sip.ld`` files put in the boot directory by
    hand. An assigned version whose image is gone fails (the master file names it,
    phones get 404); a model without firmware while others have some warns (its
    phones keep what they run).
    """
    check = "firmware"
    if not models:
        return [passed(check, "no phones in the inventory, so no firmware to check")]
    if not managed:
        if boot_images:
            return [
                passed(
                    check,
                    f"firmware comes from the boot directory "
                    f"({', '.join(boot_images)}) for every model",
                )
            ]
        return [
            passed(
                check,
                "the firmware catalog is empty: phones keep the software they "
                f"run ({', '.join(sorted(models))}); add images with "
                f"`{FIRMWARE_ADD}` to upgrade them",
            )
        ]
    findings: list[Finding] = []
    for model, state in sorted(models.items()):
        if state.version is not None and not state.image_present:
            findings.append(
                Finding(
                    check,
                    "fail",
                    f"{model} ({state.phones} phone(s)) is assigned firmware {state.version}, but "
                    "its image is not in <site>/firmware: phones get 404 for it",
                    f"Add the image again: `phoneprov firmware add FILE --version {state.version} "
                    f"--models {model}`.",
                )
            )
        elif state.version is None and not boot_images:
            findings.append(
                Finding(
                    check,
                    "warn",
                    f"{model} ({state.phones} phone(s)) has no firmware in the catalog, while "
                    "other models do: these phones keep the software they run",
                    f"Add an image for it: `{FIRMWARE_ADD.replace('MODEL', model)}`, "
                    f"then `phoneprov firmware assign --version V --models {model}`.",
                )
            )
    if not findings:
        shown = ", ".join(f"{m} {s.version or 'boot directory'}" for m, s in sorted(models.items()))
        findings.append(passed(check, f"firmware present for every inventory model: {shown}"))
    return findings


def boot_images(boot_dir: Path) -> list[str]:
    if not boot_dir.is_dir():
        return []
    return sorted(
        p.name for p in boot_dir.iterdir() if p.is_file() and p.name.lower().endswith("sip.ld")
    )


def check_firmware(
    settings: Settings, store: Store, entries: Sequence[InventoryEntry]
) -> list[Finding]:
    catalog = FirmwareCatalog(settings.site_dir / "firmware", store.firmware, store.inventory)
    models: dict[str, ModelFirmware] = {}
    for entry in entries:
        if not entry.model:
            continue
        current = models.get(entry.model)
        if current is not None:
            models[entry.model] = ModelFirmware(
                current.phones + 1, current.version, current.image_present
            )
            continue
        version = catalog.version_for(entry.model, entry.group)
        image = catalog.resolve("sip.ld", entry.model, entry.group) if version else None
        models[entry.model] = ModelFirmware(1, version, image is not None)
    managed = bool(catalog.rows.assignments())
    return firmware_findings(models, managed=managed, boot_images=boot_images(settings.boot_dir))


def check_lync(settings: Settings, store: Store, now: datetime) -> list[Finding]:
    """The CX700 chain, APP_FILE_PATH against the device update, and firmware loops."""
    log = store.lync
    found = [
        *lync_checks.check_cx700_chain(settings, store, now),
        *lync_checks.check_lync_firmware_conflict(settings.boot_dir),
        *lync_checks.check_firmware_loops(log),
    ]
    return [Finding(f.check, from_severity(f.severity), f.message, f.fix) for f in found]
