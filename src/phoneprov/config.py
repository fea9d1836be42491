"""Settings: parsed once from ``<site>/phoneprov.toml`` into frozen values.

Errors name the key, the file and the fix. Nothing else in phoneprov reads the
file or the environment; settings are passed down explicitly.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from phoneprov.config_cluster import (
    ClusterSettings,
    EdgeSettings,
    cluster_settings,
    edge_settings,
)
from phoneprov.errors import ConfigError
from phoneprov.pki.profiles import SLOTS
from phoneprov.policy import BOOTSTRAP_READS, BOOTSTRAP_WRITES
from phoneprov.protocols.polycom import DEFAULT_FOLDERS, UploadKind
from phoneprov.tomlsection import Section, seconds

SETTINGS_FILE = "phoneprov.toml"
Enrolment = Literal["allow", "quarantine", "deny"]
CsrPolicy = Literal["manual", "auto"]
# What an appended log past [uploads] log_max does: drop its oldest lines, or be refused
# (413), as the phone's log.render.file.upload.append.limitMode "delete" / "stop" do.
LogLimitMode = Literal["truncate", "refuse"]


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
    log_limit_mode: LogLimitMode = "truncate"

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
class FleetSettings:
    """Resync, restart and firmware rollouts through the phones' REST API: ``[fleet]``."""

    rest_api: bool = False  # render apps.restapi.enabled, httpd.enabled and an admin password
    rest_port: int = 443  # the phones' web server (httpd.cfg.secureTunnelPort)
    max_in_flight: int = 20  # phones asked at once
    per_second: float = 20.0  # new requests started per second
    timeout: float = 10.0  # seconds to connect, handshake and get an answer
    busy_retries: int = 3  # a phone answering 4001 (busy) is asked again this many times
    busy_retry_delay: float = 30.0  # seconds before asking a busy phone again
    report_deadline: float = 1800.0  # seconds a rollout wave's phones have to report
    poll_interval: float = 10.0  # seconds between a running rollout's health checks


@dataclass(frozen=True)
class AdminSettings:
    """The admin API's HTTPS listener and its metrics: ``[admin]`` (docs/admin-api.md)."""

    enabled: bool = True
    bind: str = "127.0.0.1"  # administrators only: never on the phones' network by default
    port: int = 8444
    # Addresses (or networks) that may read /metrics without a token: the Prometheus server.
    metrics_allow: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    not_seen_days: float = 7.0  # phoneprov_phones_not_seen counts phones silent this long


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
    admin: AdminSettings = field(default_factory=AdminSettings)
    fleet: FleetSettings = field(default_factory=FleetSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    edge: EdgeSettings = field(default_factory=EdgeSettings)

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


def _lockout_settings(section: Section) -> LockoutSettings:
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


def _admin_settings(section: Section) -> AdminSettings:
    """``[admin]``; ConfigError for an address in metrics_allow that is not one."""
    allow = section.strings("metrics_allow", AdminSettings.metrics_allow)
    for entry in allow:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(
                f"{section.path}: [admin] metrics_allow has {entry!r}, not an address or network",
                'Write addresses or networks, e.g. ["127.0.0.1", "10.0.0.0/24"].',
            ) from None
    return AdminSettings(
        enabled=section.boolean("enabled", True),
        bind=section.text("bind", AdminSettings.bind),
        port=section.port("port", AdminSettings.port),
        metrics_allow=tuple(str(ipaddress.ip_network(e, strict=False)) for e in allow),
        not_seen_days=section.number("not_seen_days", AdminSettings.not_seen_days),
    )


def _fleet_settings(section: Section) -> FleetSettings:
    """``[fleet]``; ConfigError names a value out of range."""
    numbers = {}
    for key, low, high in (
        ("per_second", 0.1, 10_000.0),
        ("timeout", 0.1, 300.0),
        ("busy_retry_delay", 0.0, 3600.0),
        ("report_deadline", 0.1, 7 * 86400.0),
        ("poll_interval", 0.01, 3600.0),
    ):
        value = section.number(key, getattr(FleetSettings, key))
        if not low <= value <= high:
            raise ConfigError(
                f"{section.path}: [fleet] {key} = {value} is out of range",
                f"Use a value from {low:g} to {high:g} (seconds, or requests per second).",
            )
        numbers[key] = value
    return FleetSettings(
        rest_api=section.boolean("rest_api", FleetSettings.rest_api),
        rest_port=section.integer("rest_port", FleetSettings.rest_port, 1, 65535),
        max_in_flight=section.integer("max_in_flight", FleetSettings.max_in_flight, 1, 10_000),
        busy_retries=section.integer("busy_retries", FleetSettings.busy_retries, 0, 100),
        **numbers,
    )


def _limits_settings(section: Section) -> LimitsSettings:
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
    known = {
        "site",
        "http",
        "https",
        "ftp",
        "tftp",
        "uploads",
        "policy",
        "lockout",
        "limits",
        "fleet",
        "cluster",
        "edge",
        "admin",
    }
    extra = sorted(set(raw) - known)
    if extra:
        raise ConfigError(
            f"{path}: unknown sections: {', '.join(extra)}",
            f"Known sections: {', '.join(sorted(known))}.",
        )
    sections = {name: Section(raw.get(name, {}), name, path) for name in known}
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
        admin=_admin_settings(sections["admin"]),
        fleet=_fleet_settings(sections["fleet"]),
        cluster=cluster_settings(
            sections["cluster"],
            heartbeat=seconds(sections["cluster"], "heartbeat", 10.0, 1.0, 300.0),
            revocation_refresh=seconds(sections["cluster"], "revocation_refresh", 5.0, 0.1, 300.0),
            catalog_refresh=seconds(sections["cluster"], "catalog_refresh", 5.0, 0.1, 300.0),
        ),
        edge=edge_settings(sections["edge"]),
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
            log_limit_mode=up.choice("log_limit_mode", "truncate", ("truncate", "refuse")),  # type: ignore[arg-type]
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
