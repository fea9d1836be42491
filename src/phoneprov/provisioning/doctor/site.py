"""Doctor checks that read the site: boot files, firmware, DHCP values, trust, disk, keys, clock.

The judging functions take values (bytes of a config file, a free-space
figure, file modes) and return findings, so unit tests feed them directly;
the ``check_*`` functions gather those values from the site.
"""

from __future__ import annotations

import os
import shutil
import stat
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509

from phoneprov.config import Settings
from phoneprov.errors import InputError
from phoneprov.pki.authority import CA_CERT, LEGACY_DIR
from phoneprov.pki.trust import polycom_chain
from phoneprov.protocols import safexml
from phoneprov.protocols.dhcp.options import OptionRequest, Skus, build_options
from phoneprov.protocols.polycom import BOOTSTRAP_FILE, MASTER_FILE
from phoneprov.provisioning.doctor.chain import label
from phoneprov.provisioning.doctor.finding import Finding, passed
from phoneprov.provisioning.site import NONCE_SECRET

GIB = 1024**3
MIB = 1024**2
WARN_FREE = GIB
FAIL_FREE = 100 * MIB
MIN_YEAR = 2024
CLOCK_SKEW = 300  # seconds; TLS tolerates little, phones' NTP is usually within seconds
SERVER_NAME = "device.prov.serverName"


# --- boot files ---------------------------------------------------------------------------


def _attributes(data: bytes) -> dict[str, str] | str:
    """Every attribute of every element (first value wins, as the phone reads them),
    or the parse error as text."""
    try:
        root = safexml.parse(data)
    except ET.ParseError as error:
        return str(error)
    found: dict[str, str] = {}
    for element in root.iter():
        for name, value in element.attrib.items():
            found.setdefault(name, value)
    return found


def master_findings(data: bytes, source: str) -> list[Finding]:
    """Check ``000000000000.cfg``: XML, an APPLICATION root, and initial.cfg in CONFIG_FILES."""
    check = "config-master"
    try:
        root = safexml.parse(data)
    except ET.ParseError as error:
        return [
            Finding(
                check,
                "fail",
                f"{MASTER_FILE} ({source}) is not well-formed XML: {error}",
                "Fix the template it is rendered from (`phoneprov` templates in "
                "<site>/templates) or the file in <site>/boot.",
            )
        ]
    if root.tag != "APPLICATION":
        return [
            Finding(
                check,
                "fail",
                f"{MASTER_FILE} ({source}) has the root element "
                f"<{root.tag}>; phones read only <APPLICATION>",
                "Make <APPLICATION> the root element of the master file.",
            )
        ]
    files = [f.strip() for f in root.get("CONFIG_FILES", "").split(",") if f.strip()]
    if BOOTSTRAP_FILE not in files:
        return [
            Finding(
                check,
                "warn",
                f"{MASTER_FILE} ({source}) lists CONFIG_FILES={','.join(files) or '(none)'}"
                f" without {BOOTSTRAP_FILE}: phones never learn the HTTPS URL and the CA",
                f"Put {BOOTSTRAP_FILE} in CONFIG_FILES of the bootstrap master file.",
            )
        ]
    return [
        passed(
            check,
            f"{MASTER_FILE} ({source}) is well-formed; CONFIG_FILES="
            f"{', '.join(files)}; APP_FILE_PATH={root.get('APP_FILE_PATH', '')}",
        )
    ]


def _same_url(found: str, expected: str) -> bool:
    a, b = urlsplit(found.strip()), urlsplit(expected)
    default = {"https": 443, "http": 80}

    def port(url: object) -> int | None:
        parts = urlsplit(str(url))
        try:
            return parts.port or default.get(parts.scheme.lower())
        except ValueError:
            return None

    return (
        a.scheme.lower() == b.scheme.lower()
        and (a.hostname or "").lower() == (b.hostname or "").lower()
        and port(found.strip()) == port(expected)
        and a.path.rstrip("/") == b.path.rstrip("/")
    )


def initial_findings(
    data: bytes, source: str, *, https_url: str, site_root: x509.Certificate | None
) -> list[Finding]:
    """Check ``initial.cfg``: it must move phones to this site's HTTPS URL and trust its root.

    Polycom phones ignore a ``device.*`` parameter unless ``device.set="1"`` and
    the parameter's own ``.set`` twin are "1" (SPEC §5).
    """
    check = "config-initial"
    attrs = _attributes(data)
    if isinstance(attrs, str):
        return [
            Finding(
                check,
                "fail",
                f"{BOOTSTRAP_FILE} ({source}) is not well-formed XML: {attrs}",
                "Fix the initial.cfg template in <site>/templates.",
            )
        ]
    problems: list[str] = []
    server = attrs.get(SERVER_NAME, "")
    if not server:
        problems.append(f"it sets no {SERVER_NAME}")
    elif not _same_url(server, https_url):
        problems.append(f"{SERVER_NAME}={server!r} is not this site's HTTPS URL {https_url}")
    if attrs.get("device.prov.serverType", "").upper() != "HTTPS":
        problems.append(
            f"device.prov.serverType={attrs.get('device.prov.serverType', '')!r} is not HTTPS"
        )
    if attrs.get("device.set") != "1":
        problems.append('device.set="1" is missing, so the phone ignores every device.* value')
    unset = sorted(
        name
        for name in attrs
        if name.startswith("device.")
        and not name.endswith(".set")
        and name != "device.set"
        and attrs.get(f"{name}.set") != "1"
    )
    if unset:
        problems.append(f'{", ".join(unset)} lack their .set="1" twin')
    ca_text = attrs.get("device.sec.TLS.customCaCert1", "")
    if site_root is not None:
        try:
            carried = x509.load_pem_x509_certificates(ca_text.encode()) if ca_text else []
        except ValueError:
            carried = []
        if site_root not in carried:
            problems.append(
                f"device.sec.TLS.customCaCert1 does not carry the site root "
                f"{label(site_root)}, so phones cannot verify the server"
            )
    if problems:
        return [
            Finding(
                check,
                "fail",
                f"{BOOTSTRAP_FILE} ({source}): " + "; ".join(problems),
                f"Let phoneprov render {BOOTSTRAP_FILE} (remove a copy in <site>/boot and "
                "overrides in <site>/templates), and keep [site] fqdns and [https] port "
                "as the phones reach the server.",
            )
        ]
    return [
        passed(
            check,
            f"{BOOTSTRAP_FILE} ({source}) moves phones to {server} and installs the site root CA",
        )
    ]


# --- DHCP, clock, disk, keys ----------------------------------------------------------------


def dhcp_findings(settings: Settings) -> list[Finding]:
    """Compare the option 160/66 value ``phoneprov dhcp options`` prints with the listeners."""
    check = "dhcp"
    url = settings.http_url()
    try:
        options = build_options(OptionRequest(url, skus=Skus.open_sip))
    except InputError as error:
        return [Finding(check, "fail", f"DHCP option 160 for {url}: {error}", error.hint)]
    option = next(o for o in options if o.code == 160)
    value = option.value
    if not settings.http.enabled:
        return [
            Finding(
                check,
                "fail",
                f"option 160/66 = {value}, but [http] enabled = false: phones without "
                "the site CA cannot bootstrap there",
                "Enable [http] in phoneprov.toml (phase 1 of the secure bootstrap), or "
                "point option 160 at another server phones can reach.",
            )
        ]
    parts = urlsplit(value)
    if (parts.hostname or "") not in settings.fqdns or parts.port != settings.http.port:
        return [
            Finding(
                check,
                "fail",
                f"option 160/66 = {value} does not name an FQDN of this site "
                f"({', '.join(settings.fqdns)}) on the HTTP port {settings.http.port}",
                "Print the values again with `phoneprov dhcp options` and update the DHCP server.",
            )
        ]
    note = ""
    if parts.hostname in ("localhost", "127.0.0.1", "::1"):
        note = (
            f"; {parts.hostname} is this machine only, fine for a demo: put the name phones "
            "resolve first in [site] fqdns for a real network"
        )
    return [
        passed(
            check,
            f"option 160/66 = {value} (hex {option.hex}) points at this "
            f"site's HTTP listener; initial.cfg moves phones on to "
            f"{settings.https_url()}{note}",
        )
    ]


def clock_findings(now: datetime, server_date: str, source: str) -> list[Finding]:
    """Year sane on this machine; the server's HTTP Date within CLOCK_SKEW of it."""
    check = "clock"
    if now.year < MIN_YEAR:
        return [
            Finding(
                check,
                "fail",
                f"this machine's clock says {now.isoformat()}: "
                "certificates issued now would look not yet valid to everyone later",
                "Set the time (NTP: `timedatectl set-ntp true`).",
            )
        ]
    if not server_date:
        return [
            passed(
                check,
                f"this machine's clock says {now.isoformat(timespec='seconds')} "
                f"({source} sent no Date header to compare)",
            )
        ]
    try:
        theirs = parsedate_to_datetime(server_date)
    except (TypeError, ValueError):
        return [
            Finding(
                check,
                "warn",
                f"{source} sent a Date header that is not a date: {server_date!r}",
                "Check the server's HTTP stack.",
            )
        ]
    skew = abs((theirs - now).total_seconds())
    if theirs.year < MIN_YEAR or skew > CLOCK_SKEW:
        return [
            Finding(
                check,
                "warn",
                f"{source} says {server_date}; this machine says "
                f"{now.isoformat(timespec='seconds')} ({int(skew)} s apart)",
                "Run NTP on both machines; phones and servers must agree on the time "
                "to accept certificates.",
            )
        ]
    return [passed(check, f"{source} and this machine agree on the time ({int(skew)} s apart)")]


def disk_findings(path: Path, free: int) -> list[Finding]:
    """Fail under 100 MiB free for uploads, warn under 1 GiB."""
    check = "disk"
    shown = f"{free / GIB:.2f} GiB" if free >= GIB else f"{free / MIB:.0f} MiB"
    fix = (
        f"Free space on the file system of {path}, or move the site to a bigger one; "
        "lower [uploads] keep_versions to keep fewer old uploads."
    )
    if free < FAIL_FREE:
        return [
            Finding(
                check,
                "fail",
                f"{shown} free under {path}: phone uploads (logs, core files) will fail",
                fix,
            )
        ]
    if free < WARN_FREE:
        return [Finding(check, "warn", f"{shown} free under {path} (under 1 GiB)", fix)]
    return [passed(check, f"{shown} free under {path} for uploads")]


def check_disk(settings: Settings) -> list[Finding]:
    target = settings.boot_dir if settings.boot_dir.exists() else settings.site_dir
    return disk_findings(target, shutil.disk_usage(target).free)


def key_files(settings: Settings) -> list[Path]:
    """Private keys of the site: pki/*.key (site and legacy CA, server), demo keys, nonce key."""
    pki = settings.pki_dir
    found = {
        *pki.glob("*.key"),
        *(pki / LEGACY_DIR).glob("*.key"),
        *(settings.site_dir / "demo").glob("*.key"),
        pki / NONCE_SECRET,
    }
    return sorted(p for p in found if p.is_file())


def permission_findings(modes: Mapping[Path, int]) -> list[Finding]:
    """Fail for any key readable or writable by group or others (must be 0600 or stricter)."""
    check = "key-permissions"
    loose = {path: mode for path, mode in modes.items() if mode & 0o077}
    if loose:
        shown = ", ".join(f"{p} ({stat.S_IMODE(m):04o})" for p, m in sorted(loose.items()))
        return [
            Finding(
                check,
                "fail",
                f"private keys readable by others: {shown}",
                "chmod 600 " + " ".join(str(p) for p in sorted(loose)),
            )
        ]
    return [passed(check, f"{len(modes)} private key file(s) are 0600 or stricter")]


def check_permissions(settings: Settings) -> list[Finding]:
    return permission_findings({p: stat.S_IMODE(os.stat(p).st_mode) for p in key_files(settings)})


# --- trust store ----------------------------------------------------------------------------


def polycom_package_dir() -> str:
    return str(resources.files("phoneprov") / "data" / "polycom-pki")


def trust_findings(
    anchors: Sequence[x509.Certificate], site_root: x509.Certificate | None, trust_dir: Path
) -> list[Finding]:
    """The HTTPS trust must hold the four Polycom CAs (factory certificates) and our root."""
    check = "trust-polycom"
    missing = [c for c in polycom_chain() if c not in anchors]
    findings: list[Finding] = []
    if missing:
        findings.append(
            Finding(
                check,
                "fail",
                f"{trust_dir} lacks {', '.join(label(c) for c in missing)}: phones with factory "
                "device certificates are refused (what IIS answers with 403.16)",
                f"Add them: `phoneprov trust add {polycom_package_dir()}/<file>.pem` for each of "
                "root.pem, equipment-policy-ca.pem, equipment-issuing-ca-1.pem, "
                "equipment-issuing-ca-2.pem.",
            )
        )
    else:
        findings.append(
            passed(
                check,
                f"{trust_dir} holds the Polycom Root CA, Equipment Policy "
                "CA and Equipment Issuing CA 1 and 2",
            )
        )
    if site_root is not None and site_root not in anchors:
        findings.append(
            Finding(
                "trust-site-root",
                "fail",
                f"{trust_dir} lacks the site root {label(site_root)}: phones with device "
                "certificates from this site's CA are refused",
                f"`phoneprov trust add {site_root_path(trust_dir)}`",
            )
        )
    return findings


def site_root_path(trust_dir: Path) -> Path:
    return trust_dir.parent / "pki" / CA_CERT
