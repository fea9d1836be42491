"""The CA chain each device family downloads, and the doctor checks for Lync/SfB devices.

``certnew.p7b`` / ``certnew.cer`` are what a CX700 installs as its trust before
its first TLS connection (CX700 guide: "DC streams Base64 certificate chain ...
/certsrv/certnew.p7b"). A CX700 cannot parse SHA-2 signatures or RSA keys over
2048 bits (SPEC §7), so it gets ``<site>/pki/legacy/ca.pem`` when that chain
exists; everything else gets ``<site>/pki/ca.pem``.

The checks return :class:`Finding` values for ``phoneprov doctor``:
:func:`check_cx700_chain`, :func:`check_lync_firmware_conflict` and
:func:`check_firmware_loops` read the site; :func:`cx700_chain_findings` and
:func:`lync_firmware_conflict_findings` are their pure cores.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from cryptography import x509

from phoneprov.config import Settings
from phoneprov.pki.authority import CA_CERT, LEGACY_DIR
from phoneprov.pki.formats import read_certificates
from phoneprov.pki.lint import lint_chain
from phoneprov.protocols import safexml
from phoneprov.protocols.lync import needs_legacy_chain
from phoneprov.protocols.polycom import MASTER_FILE
from phoneprov.provisioning.lync.catalog import ADD_COMMAND, LOOP_FLAG, Catalog
from phoneprov.store.base import LyncRepo, Store

Severity = Literal["fail", "warn", "info"]
LYNC_UPDATE_PARAM = "device.prov.lyncDeviceUpdateEnabled"
MAX_SCANNED = 2 * 1024 * 1024  # config files larger than this are not Polycom configs


@dataclass(frozen=True, slots=True)
class Finding:
    """One doctor result: how bad, what is wrong (naming the values), and the fix."""

    check: str
    severity: Severity
    message: str
    fix: str

    def to_json(self) -> dict[str, str]:
        return {
            "check": self.check,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
        }


# Chain selection.


def legacy_chain_path(pki_dir: Path) -> Path:
    return pki_dir / LEGACY_DIR / CA_CERT


def served_chain(pki_dir: Path, *, legacy_device: bool) -> tuple[list[x509.Certificate], bool]:
    """The chain (root first) a device downloads, and whether it is the legacy one.

    A legacy device gets ``pki/legacy/ca.pem`` when it exists, otherwise the
    modern chain like everyone (the doctor check says why that fails).
    """
    legacy = legacy_chain_path(pki_dir)
    path = legacy if legacy_device and legacy.is_file() else pki_dir / CA_CERT
    return read_certificates(path.read_bytes(), str(path)), path == legacy


# The CX700 chain.

CX700_FIX = (
    "Issue a legacy chain for those devices only: `phoneprov ca init --profile legacy` "
    "(RSA-2048/SHA-1 in <site>/pki/legacy/, served to CX700s at /certsrv/certnew.p7b); "
    "or point the CX700s at an endpoint whose certificate they can read, as the field "
    "workaround with public edge certificates did (a server certificate from a CA whose "
    "SHA-1/RSA-2048 root the phone already trusts)."
)


def cx700_chain_findings(
    chain: Sequence[x509.Certificate], *, legacy: bool, cx700_count: int, now: datetime
) -> list[Finding]:
    """Fail when the chain a CX700 would download is one it cannot parse.

    ``chain`` is root first (as served); ``legacy`` says it came from pki/legacy/;
    ``cx700_count`` is how many CX700s the site knows (0: nothing to check).
    Returns one finding per problem the pki lint reports for the cx700 family.
    """
    if cx700_count == 0:
        return []
    which = "the legacy chain (pki/legacy/ca.pem)" if legacy else "the site chain (pki/ca.pem)"
    problems = lint_chain(list(reversed(chain)), ["cx700"], now=now)
    findings = [
        Finding(
            "cx700-chain",
            "fail",
            f"{cx700_count} CX700 device(s) would download {which} from "
            f"/certsrv/certnew.p7b: {problem.problem}",
            CX700_FIX if problem.device == "cx700" else problem.fix,
        )
        for problem in problems
    ]
    if not findings:
        findings.append(
            Finding(
                "cx700-chain",
                "info",
                f"{cx700_count} CX700 device(s) download {which}; a CX700 can parse it",
                "",
            )
        )
    return findings


def check_cx700_chain(settings: Settings, store: Store, now: datetime) -> list[Finding]:
    """:func:`cx700_chain_findings` for the site: CX700s from device records and catalog."""
    models = store.lync.models()
    count = sum(n for model, n in models.items() if needs_legacy_chain(model))
    keys = Catalog.load(store.lync_catalog, settings.site_dir).device_keys()
    if count == 0 and any(needs_legacy_chain(k.model) for k in keys):
        count = 1  # packages for CX700s mean CX700s are coming, even if none asked yet
    if count == 0:
        return []
    chain, legacy = served_chain(settings.pki_dir, legacy_device=True)
    return cx700_chain_findings(chain, legacy=legacy, cx700_count=count, now=now)


# APP_FILE_PATH against the Lync device update.


def _attributes(data: bytes) -> dict[str, str] | None:
    """Every attribute of every element (first value wins, as the phone reads them)."""
    try:
        root = safexml.parse(data)
    except ET.ParseError:
        return None
    found: dict[str, str] = {}
    for element in root.iter():
        for name, value in element.attrib.items():
            found.setdefault(name, value)
    return found


def lync_firmware_conflict_findings(master: bytes, configs: Mapping[str, bytes]) -> list[Finding]:
    """Warn when the master file pushes firmware while a config enables the Lync device update.

    With ``device.prov.lyncDeviceUpdateEnabled`` on, the phone takes firmware from
    the SfB device update service; an ``APP_FILE_PATH`` in the master file makes the
    provisioning server push its own image: the two fight, and the phone loops.
    ``configs`` maps file names to their bytes. Returns at most one finding per config.
    """
    master_attrs = _attributes(master) or {}
    pushes = {
        name: value
        for name, value in master_attrs.items()
        if name.upper().startswith("APP_FILE_PATH") and value.strip()
    }
    if not pushes:
        return []
    pushed = ", ".join(f'{name}="{value}"' for name, value in sorted(pushes.items()))
    findings: list[Finding] = []
    for name, data in sorted(configs.items()):
        attrs = _attributes(data)
        if attrs is None or attrs.get(LYNC_UPDATE_PARAM, "").strip() not in ("1", "true"):
            continue
        findings.append(
            Finding(
                "lync-app-file-path",
                "warn",
                f"{MASTER_FILE} pushes firmware ({pushed}) while {name} sets "
                f'{LYNC_UPDATE_PARAM}="1": the provisioning server and the device update '
                "service both manage the firmware and fight over it (a firmware loop)",
                "Pick one source of firmware for these phones: empty APP_FILE_PATH for them and "
                f"serve images with `{ADD_COMMAND}`, or set "
                f'{LYNC_UPDATE_PARAM}="0" in {name}.',
            )
        )
    return findings


def check_lync_firmware_conflict(boot_dir: Path) -> list[Finding]:
    """:func:`lync_firmware_conflict_findings` over the files in the boot directory."""
    master = boot_dir / MASTER_FILE
    if not master.is_file():
        return []
    configs: dict[str, bytes] = {}
    for path in sorted(boot_dir.rglob("*.cfg")):
        if path.name == MASTER_FILE or not path.is_file() or path.stat().st_size > MAX_SCANNED:
            continue
        configs[str(path.relative_to(boot_dir))] = path.read_bytes()
    return lync_firmware_conflict_findings(master.read_bytes(), configs)


def check_firmware_loops(log: LyncRepo) -> list[Finding]:
    """One warning per device flagged ``firmware-loop`` (by this service or the Polycom one)."""
    return [
        Finding(
            "firmware-loop",
            "warn",
            f"device {mac} is in a firmware loop: it keeps fetching the same update and "
            "never reports running it",
            "Check that only one server manages its firmware (APP_FILE_PATH versus the "
            "device update service) and that the image fits its model; see "
            f"`phoneprov device show {mac}`.",
        )
        for mac in log.flagged(LOOP_FLAG)
    ]
