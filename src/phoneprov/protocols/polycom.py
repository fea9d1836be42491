"""Polycom file names, upload kinds and the HTTP User-Agent grammar (SPEC §2, §5, §6).

Pure: callers pass names and header values; nothing here touches the disk.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from dataclasses import dataclass

from phoneprov.model import MacAddress

MASTER_FILE = "000000000000.cfg"
BOOTSTRAP_FILE = "initial.cfg"
# Requested by every phone on every boot, by the same name (the feature licence and the
# seed contact directory, research §2.2 and §2.4): site-wide files, never per-device secrets.
SITE_WIDE_FILES = frozenset({"000000000000-license.cfg", "000000000000-directory.xml"})


class UploadKind(enum.StrEnum):
    BOOT_LOG = "boot_log"
    APP_LOG = "app_log"
    CALLS = "calls"
    DIRECTORY = "directory"
    PHONE_OVERRIDE = "phone_override"
    WEB_OVERRIDE = "web_override"
    CORE = "core"
    CSR = "csr"
    KEY = "key"

    @property
    def limit_class(self) -> str:
        """Which size limit applies: ``log``, ``config`` or ``core``."""
        if self in (UploadKind.BOOT_LOG, UploadKind.APP_LOG):
            return "log"
        if self is UploadKind.CORE:
            return "core"
        return "config"

    @property
    def is_log(self) -> bool:
        return self in (UploadKind.BOOT_LOG, UploadKind.APP_LOG)

    @property
    def versioned(self) -> bool:
        """Overrides and contacts keep previous versions (SPEC §6)."""
        return self in (UploadKind.PHONE_OVERRIDE, UploadKind.WEB_OVERRIDE, UploadKind.DIRECTORY)


# Upload kind -> default folder, matching the master file's directory attributes.
DEFAULT_FOLDERS: dict[UploadKind, str] = {
    UploadKind.BOOT_LOG: "logs",
    UploadKind.APP_LOG: "logs",
    UploadKind.CALLS: "calls",
    UploadKind.DIRECTORY: "contacts",
    UploadKind.PHONE_OVERRIDE: "overrides",
    UploadKind.WEB_OVERRIDE: "overrides",
    UploadKind.CORE: "core",
    UploadKind.CSR: "certificates",
    UploadKind.KEY: "certificates",
}

UPLOAD_FOLDERS = ("logs", "calls", "overrides", "contacts", "core", "certificates")

_SUFFIX_KINDS: dict[str, UploadKind] = {
    "-boot.log": UploadKind.BOOT_LOG,
    "-app.log": UploadKind.APP_LOG,
    "-calls.xml": UploadKind.CALLS,
    "-directory.xml": UploadKind.DIRECTORY,
    "-phone.cfg": UploadKind.PHONE_OVERRIDE,
    "-web.cfg": UploadKind.WEB_OVERRIDE,
    ".csr": UploadKind.CSR,
    "-private.pem": UploadKind.KEY,
    "-private.key": UploadKind.KEY,
    ".key": UploadKind.KEY,
}

# Core dumps are named by the phone's firmware, e.g. "0004f2abcdef-core.gz" or
# "core.0004f2abcdef.1234"; both forms carry the MAC.
_CORE_RE = re.compile(r"^(?:([0-9a-f]{12})-core[\w.\-]*|core\.([0-9a-f]{12})[\w.\-]*)$")


class ResourceKind(enum.StrEnum):
    MASTER = "master"  # 000000000000.cfg
    BOOTSTRAP = "bootstrap"  # initial.cfg and settings' bootstrap patterns
    SITE_WIDE = "site-wide"  # 000000000000-license.cfg, 000000000000-directory.xml
    FIRMWARE = "firmware"  # sip.ld, <part>.sip.ld, sip.ver, *.ld
    DEVICE_FILE = "device-file"  # <mac>.cfg, <mac>-*.cfg, <mac>-*.xml (not upload names)
    UPLOAD = "upload"  # a name a phone writes (logs, overrides, contacts, ...)
    SHARED = "shared"  # any other site-wide file: may carry secrets
    CA_DOWNLOAD = "ca-download"  # /certsrv/certnew.p7b and .cer
    LYNC_UPDATE = "lync-update"  # the Lync update service's answer to ucdevice.upx (not a file)
    # What the admin API acts on (policy.py's admin rows); never a file name.
    FLEET = "fleet"  # phones, their events, uploads, findings, firmware, DHCP, doctor
    SECRETS = "secrets"  # SIP passwords and account passwords
    CERTIFICATES = "certificates"  # the CA, server and device certificates, the CSR queue
    ACCOUNTS = "accounts"  # digest and FTP accounts
    ADMINISTRATORS = "administrators"  # administrators and API tokens
    AUDIT = "audit"  # the audit trail (append-only)


@dataclass(frozen=True, slots=True)
class Resource:
    """A file in the boot directory, classified by name (and folder, for uploads)."""

    path: str  # relative POSIX path inside the boot directory, no leading slash
    kind: ResourceKind
    owner: MacAddress | None = None
    upload_kind: UploadKind | None = None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def folder(self) -> str:
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""


def upload_kind_of(name: str) -> tuple[UploadKind, MacAddress] | None:
    """Return (kind, owner) when ``name`` is an upload file name, else None."""
    lowered = name.lower()
    core = _CORE_RE.match(lowered)
    if core:
        return UploadKind.CORE, MacAddress(core.group(1) or core.group(2))
    for suffix, kind in _SUFFIX_KINDS.items():
        if lowered.endswith(suffix):
            mac = MacAddress.maybe(lowered[: -len(suffix)])
            if mac is not None and not mac.is_wildcard:
                return kind, mac
    return None


def canonical_name(name: str) -> str:
    """Lower-case the MAC part of a phone file name (SPEC §2.4); other names stay as sent."""
    head = name[:12]
    if MacAddress.maybe(head) is not None and (len(name) == 12 or not name[12].isalnum()):
        return head.lower() + name[12:]
    return name


def classify(path: str, bootstrap_patterns: tuple[str, ...] = ()) -> Resource:
    """Classify a safe relative path (see ``paths.safe_relative``).

    Upload names are recognised in any folder; whether the folder is right is a
    policy question (the resource keeps the path so policy can say why).
    """
    name = path.rsplit("/", 1)[-1]
    lowered = name.lower()
    if path.lower().startswith("certsrv/") and lowered in ("certnew.p7b", "certnew.cer"):
        return Resource(path, ResourceKind.CA_DOWNLOAD)
    if lowered == MASTER_FILE:
        return Resource(path, ResourceKind.MASTER)
    if lowered in SITE_WIDE_FILES:
        return Resource(path, ResourceKind.SITE_WIDE)
    upload = upload_kind_of(name)
    if upload is not None:
        return Resource(path, ResourceKind.UPLOAD, owner=upload[1], upload_kind=upload[0])
    if lowered.endswith(".ld") or lowered == "sip.ver" or lowered.endswith(".sip.ver"):
        return Resource(path, ResourceKind.FIRMWARE)
    if lowered == BOOTSTRAP_FILE or any(fnmatch.fnmatch(lowered, p) for p in bootstrap_patterns):
        return Resource(path, ResourceKind.BOOTSTRAP)
    owner = MacAddress.maybe(lowered[:12])
    if owner is not None and not owner.is_wildcard and (len(lowered) == 12 or lowered[12] in "-."):
        return Resource(path, ResourceKind.DEVICE_FILE, owner=owner)
    return Resource(path, ResourceKind.SHARED)


POLY_FAMILIES = frozenset({"Edge", "CCX"})  # User-Agent "Poly<Family>", not "Polycom<Family>"


class Stage(enum.StrEnum):
    UPDATER = "Updater"
    APPLICATION = "Application"


@dataclass(frozen=True, slots=True)
class UserAgent:
    """A parsed Polycom ``FileTransport`` (or ``Microbrowser/...``) User-Agent (SPEC §2).

    ``browser``: the phone's XML browser (``Microbrowser/1.1 ...``) fetching a page,
    not provisioning; ``mac`` is only what ``(SN:...)`` claims, proved by nothing.
    """

    family: str
    model: str  # as sent, e.g. VVX_410
    version: str
    stage: Stage
    mac: MacAddress | None
    browser: bool = False

    @property
    def model_token(self) -> str:
        """The model as config files name it: ``VVX_410`` -> ``VVX410``."""
        return self.model.replace("_", "")


# "Polycom<Family>" for SoundPoint, SoundStation, VVX and Trio; "Poly<Family>" for the
# newer ones: "FileTransport PolyEdge-Edge_E450-UA/8.0.0.15602 Type/Application" and
# "FileTransport PolyCCX-CCX_600-UA/8.0.2.3267 (SN:...) Type/Application" (both as quoted
# by provisioning servers that parse them, research §4.1).
_UA_RE = re.compile(
    r"^(?:(?P<transport>FileTransport)|Microbrowser/[\d.]+)\s+"
    r"Poly(?:com)?(?P<family>[A-Za-z]+)-(?P<model>[A-Za-z0-9_]+?)-UA/"
    r"(?P<version>\d+(?:\.\d+)*)"
    r"(?:\s*\(SN:(?P<sn>[0-9A-Za-z]+)\))?"
    r"(?:\s+Type/(?P<stage>[A-Za-z]+))?"
)


def parse_user_agent(header: str | None) -> UserAgent | None:
    """Parse a phone's User-Agent; None when it is not a Polycom FileTransport agent.

    SIP 3.x sends no ``Type/`` token: that is the application stage. In the Updater
    stage the version is the Updater's own, not the application's.
    """
    match = _UA_RE.match(header or "")
    if match is None:
        return None
    stage = (
        Stage.UPDATER if (match.group("stage") or "").lower() == "updater" else Stage.APPLICATION
    )
    return UserAgent(
        family=match.group("family"),
        model=match.group("model"),
        version=match.group("version"),
        stage=stage,
        mac=MacAddress.maybe(match.group("sn") or ""),
        browser=match.group("transport") is None,
    )


def user_agent_string(
    family: str, model: str, version: str, stage: Stage | None, mac: MacAddress | None = None
) -> str:
    """Build a User-Agent in the phone's grammar (for the simulator and tests).

    The families that came after Polycom became Poly (Edge, CCX) send ``Poly<Family>``.
    """
    maker = "Poly" if family in POLY_FAMILIES else "Polycom"
    text = f"FileTransport {maker}{family}-{model}-UA/{version}"
    if mac is not None:
        text += f" (SN:{mac})"
    if stage is not None:
        text += f" Type/{stage.value}"
    return text
