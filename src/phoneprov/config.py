"""Settings: parsed once from ``<site>/phoneprov.toml`` into frozen values.

Errors name the key, the file and the fix. Nothing else in phoneprov reads the
file or the environment; settings are passed down explicitly.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from phoneprov.errors import ConfigError
from phoneprov.pki.profiles import SLOTS
from phoneprov.policy import BOOTSTRAP_READS, BOOTSTRAP_WRITES
from phoneprov.protocols.polycom import DEFAULT_FOLDERS, UploadKind

SETTINGS_FILE = "phoneprov.toml"
Enrolment = Literal["allow", "quarantine", "deny"]
CsrPolicy = Literal["manual", "auto"]

_SIZE_RE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$", re.IGNORECASE)
_UNITS = {
    "b": 1,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
}


@dataclass(frozen=True)
class HttpSettings:
    enabled: bool = True
    bind: str = "0.0.0.0"
    port: int = 8080
    realm: str = "phoneprov"
    nonce_lifetime: int = 300
    allow_device_accounts: bool = True
    # RFC 2069 style digest responses (no qop, no nonce count): off, as no phone is
    # known to need them (docs/security.md, "Digest authentication").
    allow_digest_without_qop: bool = False


@dataclass(frozen=True)
class HttpsSettings:
    enabled: bool = True
    bind: str = "0.0.0.0"
    port: int = 8443
    legacy_tls: bool = False
    tolerate_expired_device_certs: bool = True


@dataclass(frozen=True)
class FtpSettings:
    enabled: bool = True
    bind: str = "0.0.0.0"
    port: int = 2121
    passive_ports: tuple[int, int] = (30000, 30099)
    masquerade_address: str = ""
    ftps: bool = False
    default_account: bool = True


@dataclass(frozen=True)
class TftpSettings:
    enabled: bool = True
    bind: str = "0.0.0.0"
    port: int = 6969
    max_transfers: int = 500
    timeout: float = 2.0
    retries: int = 5
    allow_log_uploads: bool = False


@dataclass(frozen=True)
class UploadSettings:
    log_max: int = 10 * 1024**2
    config_max: int = 1024**2
    core_max: int = 64 * 1024**2
    keep_versions: int = 5
    keep_days: int = 30  # kept versions younger than this are never removed
    mac_quota: int = 256 * 1024**2  # bytes one phone's files may receive per quota_window
    ip_quota: int = 4 * 1024**3  # bytes one address may send per quota_window (NAT: many phones)
    versions_max: int = 64 * 1024**2  # kept versions of one file, in bytes
    quota_window: int = 3600
    # Free bytes uploads leave on their disk for the database and the logs (diskspace.py).
    free_space_reserve: int = 64 * 1024**2

    def limit_for(self, kind: UploadKind) -> int:
        return {"log": self.log_max, "config": self.config_max, "core": self.core_max}[
            kind.limit_class
        ]


@dataclass(frozen=True)
class LimitsSettings:
    """Bounds on connections to the HTTP and HTTPS listeners, per process: ``[limits]``."""

    header_timeout: float = 30.0  # seconds from accept to the end of the request headers
    max_connections: int = 10000
    # A site behind one NAT address: 1,000 phones booting at once, each with a
    # connection open and one more (HTTPS after HTTP) being set up.
    max_connections_per_address: int = 2000


@dataclass(frozen=True)
class LockoutSettings:
    """The brake on password guessing, per (client address, account): ``[lockout]``."""

    enabled: bool = True
    failures: int = 10  # wrong passwords within ``window`` seconds before a lock
    window: int = 300
    backoff: int = 60  # seconds of the first lock; each following one doubles
    max_backoff: int = 900


@dataclass(frozen=True)
class PolicySettings:
    enrolment: Enrolment = "allow"
    bootstrap_files: tuple[str, ...] = ()
    bootstrap_writes: frozenset[UploadKind] = BOOTSTRAP_WRITES
    bootstrap_reads: frozenset[UploadKind] = BOOTSTRAP_READS
    folders: dict[UploadKind, str] = field(default_factory=lambda: dict(DEFAULT_FOLDERS))
    csr_policy: CsrPolicy = "manual"
    csr_slot: str = "platform1"
    # The anonymous Lync/SfB update endpoint records devices it has never seen as
    # unverified; these bound how fast and how many (provisioning/lync/service.py).
    lync_new_devices_per_minute: int = 120
    lync_unverified_devices: int = 5000


@dataclass(frozen=True)
class Settings:
    """Everything a site's phoneprov.toml says, with defaults for what it leaves out."""

    site_dir: Path
    name: str = "default"
    fqdns: tuple[str, ...] = ("localhost",)
    database: str = ""
    http: HttpSettings = field(default_factory=HttpSettings)
    https: HttpsSettings = field(default_factory=HttpsSettings)
    ftp: FtpSettings = field(default_factory=FtpSettings)
    tftp: TftpSettings = field(default_factory=TftpSettings)
    uploads: UploadSettings = field(default_factory=UploadSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    lockout: LockoutSettings = field(default_factory=LockoutSettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)

    @property
    def boot_dir(self) -> Path:
        return self.site_dir / "boot"

    @property
    def pki_dir(self) -> Path:
        return self.site_dir / "pki"

    @property
    def trust_dir(self) -> Path:
        return self.site_dir / "trust"

    @property
    def log_dir(self) -> Path:
        return self.site_dir / "log"

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite:///{(self.site_dir / 'phoneprov.db').resolve()}"

    @property
    def primary_fqdn(self) -> str:
        return self.fqdns[0]

    def https_url(self) -> str:
        return f"https://{self.primary_fqdn}:{self.https.port}/"

    def http_url(self) -> str:
        return f"http://{self.primary_fqdn}:{self.http.port}/"


def parse_size(value: object, key: str, path: Path) -> int:
    """Parse ``10MiB``, ``512KiB`` or a plain integer number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE_RE.match(str(value))
    if not match:
        raise ConfigError(
            f"{path}: {key} = {value!r} is not a size",
            "Write a size like 10MiB, 512KiB or a number of bytes.",
        )
    return int(match.group(1)) * _UNITS[(match.group(2) or "b").lower()]


class _Section:
    """Typed access to one TOML table; every error names the key and the file."""

    def __init__(self, data: dict[str, Any], name: str, path: Path) -> None:
        self.data = data
        self.name = name
        self.path = path
        self.used: set[str] = set()

    def _get(self, key: str, default: Any, kind: type | tuple[type, ...], what: str) -> Any:
        self.used.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(
                f"{self.path}: [{self.name}] {key} = {value!r} is not {what}",
                f"Set {key} to {what} (default: {default!r}).",
            )
        return value

    def boolean(self, key: str, default: bool) -> bool:
        return bool(self._get(key, default, bool, "true or false"))

    def integer(self, key: str, default: int, low: int = 0, high: int = 2**31) -> int:
        value = int(self._get(key, default, int, "a whole number"))
        if not low <= value <= high:
            raise ConfigError(
                f"{self.path}: [{self.name}] {key} = {value} is out of range",
                f"Use a value from {low} to {high}.",
            )
        return value

    def port(self, key: str, default: int) -> int:
        return self.integer(key, default, 0, 65535)

    def number(self, key: str, default: float) -> float:
        return float(self._get(key, default, (int, float), "a number"))

    def text(self, key: str, default: str) -> str:
        return str(self._get(key, default, str, "a string"))

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self._get(key, list(default), list, "a list of strings")
        if not all(isinstance(item, str) for item in value):
            raise ConfigError(
                f"{self.path}: [{self.name}] {key} must list strings",
                'Write it as ["a", "b"].',
            )
        return tuple(value)

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(key, default)
        if value not in choices:
            raise ConfigError(
                f"{self.path}: [{self.name}] {key} = {value!r} is not one of {', '.join(choices)}",
                f"Set {key} to one of: {', '.join(choices)}.",
            )
        return value

    def size(self, key: str, default: int) -> int:
        self.used.add(key)
        return (
            parse_size(self.data[key], f"[{self.name}] {key}", self.path)
            if (key in self.data)
            else default
        )

    def upload_kinds(self, key: str, default: frozenset[UploadKind]) -> frozenset[UploadKind]:
        names = self.strings(key, tuple(sorted(k.value for k in default)))
        valid = {k.value for k in UploadKind}
        bad = [n for n in names if n not in valid]
        if bad:
            raise ConfigError(
                f"{self.path}: [{self.name}] {key} names unknown upload kinds: {', '.join(bad)}",
                f"Known kinds: {', '.join(sorted(valid))}.",
            )
        return frozenset(UploadKind(n) for n in names)

    def check_unknown(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(
                f"{self.path}: [{self.name}] has unknown keys: {', '.join(unknown)}",
                "Check the spelling against the commented file `phoneprov init` writes.",
            )


def load_settings(site_dir: Path) -> Settings:
    """Read ``<site_dir>/phoneprov.toml``; raise ConfigError naming key, file and fix."""
    path = site_dir / SETTINGS_FILE
    if not path.is_file():
        raise ConfigError(
            f"no {SETTINGS_FILE} in {site_dir}",
            f"Create a site with `phoneprov init --site {site_dir} --fqdn <name>`, "
            "or pass --site / set PHONEPROV_SITE.",
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is not valid TOML: {error}", "Fix the line it names.") from None
    return settings_from_mapping(site_dir, raw, path)


def _lockout_settings(section: _Section) -> LockoutSettings:
    """``[lockout]``; ConfigError when max_backoff is shorter than backoff."""
    backoff = section.integer("backoff", LockoutSettings.backoff, 1, 86400)
    max_backoff = section.integer("max_backoff", LockoutSettings.max_backoff, 1, 7 * 86400)
    if max_backoff < backoff:
        raise ConfigError(
            f"{section.path}: [lockout] max_backoff = {max_backoff} is shorter than "
            f"backoff = {backoff}",
            "Set max_backoff to at least backoff (both in seconds).",
        )
    return LockoutSettings(
        enabled=section.boolean("enabled", LockoutSettings.enabled),
        failures=section.integer("failures", LockoutSettings.failures, 1, 1000),
        window=section.integer("window", LockoutSettings.window, 1, 86400),
        backoff=backoff,
        max_backoff=max_backoff,
    )


def _limits_settings(section: _Section) -> LimitsSettings:
    """``[limits]``; ConfigError when header_timeout is out of range."""
    timeout = section.number("header_timeout", LimitsSettings.header_timeout)
    if not 1 <= timeout <= 300:
        raise ConfigError(
            f"{section.path}: [limits] header_timeout = {timeout} is out of range",
            "Use 1 to 300 seconds; phones send their request headers within a second.",
        )
    return LimitsSettings(
        header_timeout=timeout,
        max_connections=section.integer(
            "max_connections", LimitsSettings.max_connections, 1, 1_000_000
        ),
        max_connections_per_address=section.integer(
            "max_connections_per_address", LimitsSettings.max_connections_per_address, 1, 1_000_000
        ),
    )


def settings_from_mapping(site_dir: Path, raw: dict[str, Any], path: Path) -> Settings:
    """Build Settings from a parsed TOML mapping (used by load_settings and tests)."""
    known = {"site", "http", "https", "ftp", "tftp", "uploads", "policy", "lockout", "limits"}
    extra = sorted(set(raw) - known)
    if extra:
        raise ConfigError(
            f"{path}: unknown sections: {', '.join(extra)}",
            f"Known sections: {', '.join(sorted(known))}.",
        )
    sections = {name: _Section(raw.get(name, {}), name, path) for name in known}
    for name, section in sections.items():
        if not isinstance(section.data, dict):
            raise ConfigError(f"{path}: {name} must be a table", f"Write it as [{name}].")
    site, http, https = sections["site"], sections["http"], sections["https"]
    ftp, tftp, up, pol = sections["ftp"], sections["tftp"], sections["uploads"], sections["policy"]

    fqdns = site.strings("fqdns", ("localhost",))
    if not fqdns:
        raise ConfigError(f"{path}: [site] fqdns is empty", "List at least one name or address.")
    passive = ftp.text("passive_ports", "30000-30099")
    match = re.fullmatch(r"(\d+)-(\d+)", passive)
    if not match or not 0 < int(match.group(1)) <= int(match.group(2)) <= 65535:
        raise ConfigError(
            f"{path}: [ftp] passive_ports = {passive!r} is not a port range",
            'Write it as "30000-30099".',
        )
    folders = dict(DEFAULT_FOLDERS)
    folder_section = pol.data.get("folders", {})
    pol.used.add("folders")
    for kind_name, folder in folder_section.items():
        try:
            kind = UploadKind(kind_name)
        except ValueError:
            raise ConfigError(
                f"{path}: [policy.folders] {kind_name} is not an upload kind",
                f"Known kinds: {', '.join(k.value for k in UploadKind)}.",
            ) from None
        if not isinstance(folder, str) or not re.fullmatch(r"[A-Za-z0-9_\-]+", folder):
            raise ConfigError(
                f"{path}: [policy.folders] {kind_name} = {folder!r} is not a folder name",
                "Use one plain folder name (letters, digits, - and _).",
            )
        folders[kind] = folder

    settings = Settings(
        site_dir=site_dir,
        name=site.text("name", "default"),
        fqdns=fqdns,
        database=site.text("database", ""),
        lockout=_lockout_settings(sections["lockout"]),
        limits=_limits_settings(sections["limits"]),
        http=HttpSettings(
            enabled=http.boolean("enabled", True),
            bind=http.text("bind", "0.0.0.0"),
            port=http.port("port", 8080),
            realm=http.text("realm", "phoneprov"),
            nonce_lifetime=http.integer("nonce_lifetime", 300, 10, 86400),
            allow_device_accounts=http.boolean("allow_device_accounts", True),
            allow_digest_without_qop=http.boolean("allow_digest_without_qop", False),
        ),
        https=HttpsSettings(
            enabled=https.boolean("enabled", True),
            bind=https.text("bind", "0.0.0.0"),
            port=https.port("port", 8443),
            legacy_tls=https.boolean("legacy_tls", False),
            tolerate_expired_device_certs=https.boolean("tolerate_expired_device_certs", True),
        ),
        ftp=FtpSettings(
            enabled=ftp.boolean("enabled", True),
            bind=ftp.text("bind", "0.0.0.0"),
            port=ftp.port("port", 2121),
            passive_ports=(int(match.group(1)), int(match.group(2))),
            masquerade_address=ftp.text("masquerade_address", ""),
            ftps=ftp.boolean("ftps", False),
            default_account=ftp.boolean("default_account", True),
        ),
        tftp=TftpSettings(
            enabled=tftp.boolean("enabled", True),
            bind=tftp.text("bind", "0.0.0.0"),
            port=tftp.port("port", 6969),
            max_transfers=tftp.integer("max_transfers", 500, 1, 100000),
            timeout=tftp.number("timeout", 2.0),
            retries=tftp.integer("retries", 5, 1, 100),
            allow_log_uploads=tftp.boolean("allow_log_uploads", False),
        ),
        uploads=UploadSettings(
            log_max=up.size("log_max", 10 * 1024**2),
            config_max=up.size("config_max", 1024**2),
            core_max=up.size("core_max", 64 * 1024**2),
            keep_versions=up.integer("keep_versions", 5, 0, 100),
            keep_days=up.integer("keep_days", 30, 0, 3650),
            mac_quota=up.size("mac_quota", 256 * 1024**2),
            ip_quota=up.size("ip_quota", 4 * 1024**3),
            versions_max=up.size("versions_max", 64 * 1024**2),
            quota_window=up.integer("quota_window", 3600, 60, 7 * 86400),
            free_space_reserve=up.size("free_space_reserve", 64 * 1024**2),
        ),
        policy=PolicySettings(
            enrolment=pol.choice("enrolment", "allow", ("allow", "quarantine", "deny")),  # type: ignore[arg-type]
            bootstrap_files=tuple(p.lower() for p in pol.strings("bootstrap_files", ())),
            bootstrap_writes=pol.upload_kinds("bootstrap_writes", PolicySettings.bootstrap_writes),
            bootstrap_reads=pol.upload_kinds("bootstrap_reads", PolicySettings.bootstrap_reads),
            folders=folders,
            csr_policy=pol.choice("csr_policy", "manual", ("manual", "auto")),  # type: ignore[arg-type]
            csr_slot=pol.choice("csr_slot", "platform1", SLOTS),
            lync_new_devices_per_minute=pol.integer("lync_new_devices_per_minute", 120, 0, 100_000),
            lync_unverified_devices=pol.integer("lync_unverified_devices", 5000, 0, 10_000_000),
        ),
    )
    for section in sections.values():
        section.check_unknown()
    return settings
