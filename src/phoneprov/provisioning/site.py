"""Create a site: settings, CA, server certificates, trust store, boot directory, accounts.

``init_site`` refuses to overwrite an existing site unless ``force`` is given,
and says what exists. Keys are written 0600.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import jinja2

from phoneprov.config import SETTINGS_FILE, Settings, load_settings
from phoneprov.errors import InputError, SiteExistsError
from phoneprov.model import MacAddress
from phoneprov.pki.authority import LEGACY_DIR, CertificateAuthority
from phoneprov.pki.files import write_private
from phoneprov.pki.trust import install_trust_anchors
from phoneprov.protocols import digest
from phoneprov.protocols.polycom import BOOTSTRAP_FILE, MASTER_FILE, UPLOAD_FOLDERS, UploadKind
from phoneprov.provisioning import admins
from phoneprov.provisioning.accounts import hash_password
from phoneprov.provisioning.inventory import Inventory
from phoneprov.provisioning.lync.packages import add_demo_package
from phoneprov.records import InventoryEntry, Line
from phoneprov.store import open_store

DEMO_MAC = MacAddress("0004f2000001")
# The demo inventory: one phone per family; configs are rendered when they ask.
DEMO_PHONES = (
    InventoryEntry(
        DEMO_MAC,
        "VVX410",
        group="pilot",
        label="Front desk",
        lines=(
            Line(1, "1001", "1001", "demo-sip-password", "pbx.example.com"),
            Line(2, "1002", "1002", "demo-sip-password-2", "pbx.example.com"),
        ),
    ),
    InventoryEntry(
        MacAddress("0004f2000002"),
        "SPIP550",
        label="Meeting room",
        lines=(Line(1, "1003", "1003", "demo-sip-password-3", "pbx.example.com"),),
    ),
    InventoryEntry(
        MacAddress("0004f2000003"),
        "Trio8800",
        label="Board room",
        lines=(Line(1, "1004", "1004", "demo-sip-password-4", "pbx.example.com"),),
    ),
)
NONCE_SECRET = "digest-nonce.key"
DEMO_ADMIN = "demo"  # the demo site's web console administrator (role admin)
DEMO_ADMIN_PASSWORD = "admin-password"  # in <site>/demo/, mode 0600: `make run` prints it
DEFAULT_PORTS = {"http_port": 8080, "https_port": 8443, "ftp_port": 2121, "tftp_port": 6969}


@dataclass
class InitReport:
    site_dir: Path
    settings: Settings
    created: list[Path] = field(default_factory=list)
    demo_cert: Path | None = None
    demo_key: Path | None = None
    demo_password: Path | None = None


def _templates() -> jinja2.Environment:
    folder = resources.files("phoneprov") / "templates"
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: (folder / name).read_text()),
        autoescape=jinja2.select_autoescape(default=True),
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def check_fqdn(name: str) -> str:
    """A DNS name or an IP literal; InputError with the reason otherwise."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    label = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
    if len(name) > 253 or not re.fullmatch(rf"{label}(\.{label})*\.?", name):
        raise InputError(
            f"{name!r} is neither a DNS name nor an IP address",
            "Give the name phones use to reach this server, e.g. --fqdn prov.example.com "
            "(no wildcards, no scheme, no port).",
        )
    return name.rstrip(".").lower()


def init_site(
    site_dir: Path,
    fqdns: list[str],
    *,
    http_user: str = "PlcmSpIp",
    http_password: str = "PlcmSpIp",
    demo: bool = False,
    force: bool = False,
    ports: dict[str, int] | None = None,
    database: str = "",
) -> InitReport:
    """Create everything a site needs; raise SiteExistsError listing what exists."""
    names = [check_fqdn(name) for name in fqdns] or ["localhost"]
    if not http_user or ":" in http_user:
        raise InputError(
            f"HTTP user {http_user!r} is empty or has a colon",
            "Pick a plain user name such as PlcmSpIp.",
        )
    existing = [
        p
        for p in (
            site_dir / SETTINGS_FILE,
            site_dir / "pki" / "ca.pem",
            site_dir / "boot" / MASTER_FILE,
        )
        if p.exists()
    ]
    if existing and not force:
        raise SiteExistsError(
            f"a site already exists in {site_dir}: {', '.join(str(p) for p in existing)}",
            "Use it as it is (`phoneprov serve`), pick another --site, or pass --force to "
            "replace its settings, CA and boot files (uploads and the database are kept).",
        )
    env = _templates()
    site_dir.mkdir(parents=True, exist_ok=True)
    created: list[Path] = []
    values = dict(DEFAULT_PORTS, **(ports or {}))
    settings_text = env.get_template("phoneprov.toml.j2").render(
        name=site_dir.resolve().name,
        fqdns=names,
        realm="phoneprov",
        database=database,
        **values,
    )
    (site_dir / SETTINGS_FILE).write_text(settings_text)
    created.append(site_dir / SETTINGS_FILE)
    settings = load_settings(site_dir)

    # An RSA-2048/SHA-256 root: initial.cfg pushes it to every phone, and SoundPoint IP
    # firmware reads RSA roots only. The server still holds an ECDSA leaf for newer phones.
    ca = CertificateAuthority.create(
        settings.pki_dir,
        common_name=f"phoneprov Root CA ({names[0]})",
        key="rsa-2048",
        force=force,
    )
    created.append(ca.cert_path)
    for stem, key in (("server-ec", "ec-p256"), ("server-rsa", "rsa-2048")):
        issued = ca.issue_server(names, key=key)  # type: ignore[arg-type]
        created.extend(ca.write_server_pair(settings.pki_dir, issued, stem))
    write_private(settings.pki_dir / NONCE_SECRET, os.urandom(32).hex().encode())
    created.extend(install_trust_anchors(settings.trust_dir, ca.cert))

    boot = settings.boot_dir
    boot.mkdir(parents=True, exist_ok=True)
    for folder in sorted(set(UPLOAD_FOLDERS) | set(settings.policy.folders.values())):
        (boot / folder).mkdir(exist_ok=True)
    for name in (MASTER_FILE, BOOTSTRAP_FILE, "site.cfg"):
        # Rendered per request from templates and the inventory (provisioning/render.py);
        # a copy left on disk by an older init would be served instead.
        (boot / name).unlink(missing_ok=True)

    store = open_store(settings)
    try:
        store.put_account(
            http_user,
            "bootstrap",
            settings.http.realm,
            digest.ha1(http_user, settings.http.realm, http_password),
            hash_password(http_password),
        )
    finally:
        store.close()
    report = InitReport(site_dir, settings, created)
    if demo:
        _demo(report, ca)
    return report


def _demo(report: InitReport, ca: CertificateAuthority) -> None:
    """Three inventory phones of three families; a device certificate for the first."""
    settings = report.settings
    demo_dir = settings.site_dir / "demo"
    demo_dir.mkdir(exist_ok=True)
    issued = ca.issue_device(DEMO_MAC)
    cert_path = demo_dir / f"{DEMO_MAC}.pem"
    key_path = demo_dir / f"{DEMO_MAC}.key"
    cert_path.write_bytes(issued.cert_pem)
    write_private(key_path, issued.key_pem)
    (settings.boot_dir / f"{DEMO_MAC}-phone-secrets.cfg").unlink(missing_ok=True)
    store = open_store(settings)
    try:
        Inventory(store).save(DEMO_PHONES)
    finally:
        store.close()
    # The demo has a CX700 update package; a CX700 cannot parse SHA-2 chains, so the
    # demo also has the separate SHA-1 legacy chain it downloads (docs/lync.md).
    legacy = CertificateAuthority.create(
        settings.pki_dir / LEGACY_DIR,
        common_name=f"phoneprov Legacy Root CA ({settings.primary_fqdn})",
        profile="legacy",
        force=True,
    )
    report.created.extend([cert_path, key_path, legacy.cert_path, add_demo_package(settings)])
    report.demo_cert, report.demo_key = cert_path, key_path
    report.demo_password = _demo_admin(settings, demo_dir)
    report.created.append(report.demo_password)
    (settings.boot_dir / settings.policy.folders[UploadKind.BOOT_LOG]).mkdir(exist_ok=True)


def _demo_admin(settings: Settings, demo_dir: Path) -> Path:
    """The demo administrator with a new random password, kept readable by the owner only."""
    password = secrets.token_urlsafe(18)
    if any(a.name == DEMO_ADMIN for a in admins.list_admins(settings)):
        admins.set_password(settings, DEMO_ADMIN, password)
    else:
        admins.add_admin(settings, DEMO_ADMIN, "admin", password)
    return write_private(demo_dir / DEMO_ADMIN_PASSWORD, password.encode())


def demo_commands(settings: Settings, cert: Path, key: Path) -> list[str]:
    """The curl commands that boot the demo phone by hand (shown by init and the README)."""
    host = settings.primary_fqdn
    ca = settings.pki_dir / "ca.pem"
    http = f"http://{host}:{settings.http.port}"
    https = f"https://{host}:{settings.https.port}"
    mac = DEMO_MAC.value
    return [
        f"curl --digest -u PlcmSpIp:PlcmSpIp {http}/{MASTER_FILE}",
        f"curl --digest -u PlcmSpIp:PlcmSpIp {http}/{BOOTSTRAP_FILE}",
        f"curl --cacert {ca} --cert {cert} --key {key} {https}/{MASTER_FILE}",
        f"curl --cacert {ca} --cert {cert} --key {key} {https}/{mac}-phone-secrets.cfg",
        f'echo "boot ok" | curl --cacert {ca} --cert {cert} --key {key} -T - '
        f"{https}/logs/{mac}-boot.log",
    ]
