"""The protocol-independent gate: every server turns a request into a call here.

Given a Principal (who, over which protocol) and a raw path, it checks path
safety, classifies the file, asks ``policy.decide``, writes the security line on
refusal, and returns what to send or where to write. Servers only translate
the outcome into their wire codes (HTTP 404/400/403/413, FTP 550/553, TFTP 2).
"""

from __future__ import annotations

import mimetypes
import os
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from phoneprov.config import Settings
from phoneprov.errors import PhoneprovError, UnsafePathError, UploadError
from phoneprov.model import CertKind, DeviceStatus, MacAddress, Principal, PrincipalKind, Protocol
from phoneprov.policy import Action, PolicyRules, Reason, decide
from phoneprov.protocols import masterfile
from phoneprov.protocols.paths import safe_relative
from phoneprov.protocols.polycom import (
    BOOTSTRAP_FILE,
    MASTER_FILE,
    Resource,
    ResourceKind,
    UploadKind,
    UserAgent,
    canonical_name,
    classify,
)
from phoneprov.provisioning.audit import Audit
from phoneprov.provisioning.bootdir import BootDir
from phoneprov.provisioning.enrolment import handle_csr
from phoneprov.provisioning.firmware import LOOP_THRESHOLD
from phoneprov.provisioning.render import (
    DEVICE_SUFFIX,
    SITE_FILE,
    Rendered,
    RenderError,
    SiteRenderer,
)
from phoneprov.provisioning.uploads import UploadService, UploadWriter
from phoneprov.records import Event, Sighting
from phoneprov.store import Recorder, Store

MEMORY_CACHE_LIMIT = 256 * 1024  # small configs are served from memory; firmware is streamed
STATUS_TTL = 5.0  # seconds a device status is cached (approvals take effect within this)
# A boot is 10-15 requests in a few seconds, and a storm is thousands of phones
# asking for the same files: rendered files are kept this long per (file, phone).
# Inventory and template changes reach phones within RENDER_TTL.
RENDER_TTL = 5.0
RENDER_CACHE_SIZE = 50_000
_CONTENT_TYPES = {
    ".cfg": "application/xml",
    ".xml": "application/xml",
    ".ld": "application/octet-stream",
    ".log": "text/plain",
    ".ver": "text/plain",
    ".p7b": "application/x-pkcs7-certificates",
    ".cer": "application/pkix-cert",
}


class Refused(PhoneprovError):
    """Policy or path safety said no. ``hide``: answer as if the file were missing."""

    def __init__(self, reason: Reason, path: str, *, hide: bool) -> None:
        super().__init__(f"refused {path!r}: {reason.value}")
        self.reason = reason
        self.path = path
        self.hide = hide


class NotFound(PhoneprovError):
    """The file does not exist (a normal answer for optional files)."""


@dataclass(frozen=True, slots=True)
class ReadGrant:
    resource: Resource
    size: int
    mtime: float
    content_type: str
    body: bytes | None = None  # small files and rendered files
    path: Path | None = None  # large files, streamed from disk


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    is_dir: bool
    size: int
    mtime: float


def content_type_for(name: str) -> str:
    suffix = os.path.splitext(name)[1].lower()
    return _CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


class AccessService:
    """Shared by the HTTP, HTTPS, FTP and TFTP listeners of one process."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        recorder: Recorder,
        audit: Audit,
        renderer: SiteRenderer | None = None,
    ) -> None:
        self.settings = settings
        # Configs and firmware rendered per request from the inventory (no secrets on disk).
        self.renderer = renderer if renderer is not None else SiteRenderer(settings, store)
        self.store = store
        self.recorder = recorder
        self.audit = audit
        self.boot = BootDir(settings.boot_dir)
        self.uploads = UploadService(
            self.boot, settings.site_dir / "versions", settings.uploads, settings.policy.folders
        )
        self.rules = PolicyRules(
            folders=settings.policy.folders,
            bootstrap_writes=settings.policy.bootstrap_writes,
            bootstrap_reads=settings.policy.bootstrap_reads,
            tftp_writes=settings.tftp.allow_log_uploads,
        )
        self._status: dict[str, tuple[float, DeviceStatus]] = {}
        self._cache: dict[str, tuple[int, int, bytes]] = {}
        self._ip_macs: dict[str, tuple[float, MacAddress]] = {}
        self._render_cache: dict[
            tuple[str, str, bool, str], tuple[float, ReadGrant | None, Rendered]
        ] = {}
        self._lock = threading.Lock()  # FTP runs in its own thread

    # identity
    def device_status(self, mac: MacAddress, now: float | None = None) -> DeviceStatus:
        """The device's standing, applying the enrolment policy to unknown MACs."""
        now = time.monotonic() if now is None else now
        with self._lock:
            cached = self._status.get(mac.value)
        if cached is not None and now - cached[0] < STATUS_TTL:
            return cached[1]
        record = self.store.get_device(mac)
        if record is not None:
            status = record.status
        else:
            status = {
                "allow": DeviceStatus.DISCOVERED,
                "quarantine": DeviceStatus.PENDING,
                "deny": DeviceStatus.DENIED,
            }[self.settings.policy.enrolment]
        with self._lock:
            self._status[mac.value] = (now, status)
        return status

    def device_principal(
        self,
        kind: PrincipalKind,
        protocol: Protocol,
        mac: MacAddress,
        *,
        name: str = "",
        cert_kind: CertKind | None = None,
    ) -> Principal:
        status = (
            DeviceStatus.KNOWN
            if kind is PrincipalKind.DEVICE_ACCOUNT
            else (self.device_status(mac))
        )
        return Principal(
            kind, protocol, name or mac.value, mac=mac, cert_kind=cert_kind, status=status
        )

    def note(
        self,
        principal: Principal,
        *,
        ip: str,
        agent: UserAgent | None,
        user_agent: str = "",
        path: str = "",
    ) -> None:
        """Record a sighting of the device behind this request (queued, never blocks)."""
        mac = principal.mac or (agent.mac if agent else None) or self._mac_for_ip(ip)
        if mac is None or mac.is_wildcard:
            return
        now = time.time()
        with self._lock:
            self._ip_macs[ip] = (now, mac)
        status = principal.status or self.device_status(mac)
        if status is DeviceStatus.DENIED:
            return
        stage = agent.stage.value if agent else ""
        self.recorder.sighting(
            Sighting(
                mac=mac,
                time=now,
                ip=ip,
                protocol=principal.protocol.value,
                status_if_new=status,
                model=agent.model_token if agent else "",
                family=agent.family if agent else "",
                firmware=agent.version if agent and stage == "Application" else "",
                updater_version=agent.version if agent and stage == "Updater" else "",
                stage=stage,
                cert_kind=principal.cert_kind.value if principal.cert_kind else "",
                user_agent=user_agent[:256],
            )
        )

    def _mac_for_ip(self, ip: str) -> MacAddress | None:
        """Firmware requests carry no MAC: use the MAC last seen from this IP (10 min)."""
        with self._lock:
            seen = self._ip_macs.get(ip)
        if seen is not None and time.time() - seen[0] < 600:
            return seen[1]
        return None

    # decisions
    def resolve(self, principal: Principal, raw: str, *, ip: str, decoded: bool) -> Resource:
        """Safe relative path -> classified Resource; UnsafePathError -> Refused (400)."""
        try:
            relative = safe_relative(raw, already_decoded=decoded)
            if any(part.startswith(".") for part in relative.split("/") if part):
                self._refuse(principal, ip, Reason.HIDDEN_FILE, raw, hide=True)
            self.boot.locate(relative)
        except UnsafePathError as error:
            self.audit.refused(
                protocol=principal.protocol.value,
                ip=ip,
                identity=principal.label(),
                reason=Reason.UNSAFE_PATH.value,
                path=raw,
                detail=str(error),
            )
            raise Refused(Reason.UNSAFE_PATH, raw, hide=False) from None
        folder, _, name = relative.rpartition("/")
        relative = f"{folder}/{canonical_name(name)}" if folder else canonical_name(name)
        return classify(relative, self.settings.policy.bootstrap_files)

    def _refuse(
        self, principal: Principal, ip: str, reason: Reason, path: str, *, hide: bool
    ) -> None:
        self.audit.refused(
            protocol=principal.protocol.value,
            ip=ip,
            identity=principal.label(),
            reason=reason.value,
            path=path,
        )
        if principal.mac is not None:
            self.recorder.event(
                Event(time.time(), principal.mac.value, "refused", f"{reason.value} {path}")
            )
        raise Refused(reason, path, hide=hide)

    def check(self, principal: Principal, action: Action, resource: Resource, *, ip: str) -> None:
        decision = decide(principal, action, resource, self.rules)
        if not decision.allowed:
            self._refuse(principal, ip, decision.reason, resource.path, hide=action is Action.READ)

    def is_public(self, principal: Principal) -> bool:
        return principal.kind is PrincipalKind.BOOTSTRAP or principal.protocol is Protocol.TFTP

    # reads
    def read(
        self,
        principal: Principal,
        raw: str,
        *,
        ip: str,
        decoded: bool = False,
        agent: UserAgent | None = None,
    ) -> ReadGrant:
        """Authorize and open a file for reading. Raises Refused, NotFound or RenderError.

        A file in the boot directory is served as is; without one, the renderer
        answers for the files it knows (``agent`` names the phone's model for firmware).
        """
        resource = self.resolve(principal, raw, ip=ip, decoded=decoded)
        self.check(principal, Action.READ, resource, ip=ip)
        try:
            path = self._existing(resource)
        except NotFound:
            return self._rendered(principal, resource, ip=ip, agent=agent)
        if resource.kind is ResourceKind.MASTER and self.is_public(principal):
            return self._bootstrap_master(principal, resource, path)
        st = path.stat()
        ctype = content_type_for(resource.name)
        if st.st_size <= MEMORY_CACHE_LIMIT:
            return ReadGrant(resource, st.st_size, st.st_mtime, ctype, body=self._cached(path, st))
        return ReadGrant(resource, st.st_size, st.st_mtime, ctype, path=path)

    def _existing(self, resource: Resource) -> Path:
        path = self.boot.locate(resource.path)
        if not path.is_file() and resource.kind is ResourceKind.UPLOAD and not resource.folder:
            path = self.boot.locate(str(self.uploads.target(resource).relative_to(self.boot.root)))
        if not path.is_file():
            raise NotFound(f"{resource.path} does not exist")
        return path

    def _cached(self, path: Path, st: os.stat_result) -> bytes:
        key = str(path)
        hit = self._cache.get(key)
        if hit is not None and hit[0] == st.st_mtime_ns and hit[1] == st.st_size:
            return hit[2]
        body = path.read_bytes()
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[key] = (st.st_mtime_ns, st.st_size, body)
        return body

    def _bootstrap_master(self, principal: Principal, resource: Resource, path: Path) -> ReadGrant:
        st = path.stat()
        body = self._restrict_master(principal, self._cached(path, st))
        return ReadGrant(resource, len(body), st.st_mtime, "application/xml", body=body)

    def _restrict_master(self, principal: Principal, source: bytes) -> bytes:
        def public(entry: str) -> bool:
            name = entry.replace("[PHONE_MAC_ADDRESS]", "000000000001")
            probe = classify(name, self.settings.policy.bootstrap_files)
            return decide(principal, Action.READ, probe, self.rules).allowed

        return masterfile.restrict_config_files(source, public)

    def _rendered(
        self, principal: Principal, resource: Resource, *, ip: str, agent: UserAgent | None
    ) -> ReadGrant:
        """A file with no copy on disk, from the renderer; NotFound when it has none either."""
        mac = principal.mac or (agent.mac if agent else None) or self._mac_for_ip(ip)
        public = self.is_public(principal)
        model = agent.model_token if agent else ""
        key = (resource.path.lower(), mac.value if mac else "", public, model)
        now = time.monotonic()
        with self._lock:
            hit = self._render_cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1] if hit[1] is not None else self._grant(principal, resource, hit[2], mac)
        try:
            served = self.renderer.serve(resource, mac=mac, public=public, model=model)
        except RenderError as error:
            # Not a refusal (fail2ban must not ban the phone): an error line naming the template.
            self.audit.security_log.error(
                "%s phoneprov-security template-error ip=%s proto=%s identity=%s path=%s "
                "template=%s line=%s detail=%s",
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                ip,
                principal.protocol.value,
                principal.label(),
                resource.path,
                error.template,
                error.line or "-",
                str(error).replace("\n", " "),
            )
            raise
        if served is None:
            raise NotFound(f"{resource.path} does not exist") from None
        grant = self._grant(principal, resource, served, mac)
        with self._lock:
            if len(self._render_cache) > RENDER_CACHE_SIZE:
                self._render_cache.clear()
            # Firmware grants are not kept whole: each fetch is counted (loop detection).
            kept = grant if served.path is None else None
            self._render_cache[key] = (now + RENDER_TTL, kept, served)
        return grant

    def _grant(
        self, principal: Principal, resource: Resource, served: Rendered, mac: MacAddress | None
    ) -> ReadGrant:
        ctype = content_type_for(resource.name)
        if served.path is not None:
            st = served.path.stat()
            if mac is not None and served.firmware is not None:
                found = mac
                self.recorder.defer(lambda: self._count_firmware(found, served, resource.name))
            return ReadGrant(resource, st.st_size, st.st_mtime, ctype, path=served.path)
        body = served.body or b""
        if resource.kind is ResourceKind.MASTER and self.is_public(principal):
            body = self._restrict_master(principal, body)
        return ReadGrant(resource, len(body), time.time(), ctype, body=body)

    # writes
    def open_upload(
        self,
        principal: Principal,
        raw: str,
        *,
        ip: str,
        append: bool = False,
        decoded: bool = False,
        declared_size: int | None = None,
    ) -> tuple[Resource, UploadWriter]:
        """Authorize an upload and return its writer (atomic on commit).

        ``declared_size`` (HTTP Content-Length) over the kind's limit raises
        UploadError (413) before anything is written.
        """
        resource = self.resolve(principal, raw, ip=ip, decoded=decoded)
        self.check(principal, Action.WRITE, resource, ip=ip)
        kind = resource.upload_kind
        assert kind is not None  # policy allows writes to upload names only
        limit = self.settings.uploads.limit_for(kind)
        if declared_size is not None and declared_size > limit:
            raise UploadError(
                f"upload {resource.name} declares {declared_size} bytes; the "
                f"{kind.limit_class} limit is {limit} bytes",
                f"Raise [uploads] {kind.limit_class}_max in phoneprov.toml.",
                http_status=413,
            )
        return resource, self.uploads.open(resource, append=append)

    def _count_firmware(self, mac: MacAddress, served: Rendered, name: str) -> None:
        """Count a firmware fetch and flag a loop (on the recorder's thread: it writes)."""
        if self.renderer.count_download(mac, served) == LOOP_THRESHOLD:
            assert served.firmware is not None
            version = served.firmware.version
            detail = f"{name} {version} fetched {LOOP_THRESHOLD} times"
            self.recorder.event(Event(time.time(), mac.value, "firmware-loop", detail))

    def uploaded(self, principal: Principal, resource: Resource, path: Path, size: int) -> None:
        """After a committed upload: an event on the device, and CSR enrolment.

        A CSR is enrolled only when it came over the phone's own mutual-TLS
        session: a public or per-device account could upload one for any MAC.
        """
        owner = resource.owner
        if owner is None:
            return
        detail = f"{resource.name} {size} bytes"
        self.recorder.event(Event(time.time(), owner.value, "upload", detail))
        if (
            resource.upload_kind is UploadKind.CSR
            and principal.kind is PrincipalKind.DEVICE_CERT
            and principal.mac == owner
        ):
            self.recorder.event(handle_csr(self.settings, owner, path).event)

    def delete(self, principal: Principal, raw: str, *, ip: str, decoded: bool = False) -> None:
        resource = self.resolve(principal, raw, ip=ip, decoded=decoded)
        self.check(principal, Action.DELETE, resource, ip=ip)
        self._existing(resource).unlink()

    def listing(
        self, principal: Principal, raw: str, *, ip: str, decoded: bool = True
    ) -> list[Entry]:
        """Directory entries this principal may read (FTP LIST/MLSD)."""
        relative = safe_relative(raw, already_decoded=decoded)
        directory = self.boot.locate(relative)
        if not directory.is_dir():
            raise NotFound(f"{relative or '/'} is not a folder")
        entries: list[Entry] = []
        for child in sorted(directory.iterdir()):
            if child.name.startswith("."):
                continue
            try:
                st = child.lstat()
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(st.st_mode):
                continue
            if stat.S_ISDIR(st.st_mode):
                entries.append(Entry(child.name, True, 0, st.st_mtime))
                continue
            resource = classify(
                f"{relative}/{child.name}".lstrip("/"), self.settings.policy.bootstrap_files
            )
            if resource.kind is ResourceKind.UPLOAD and self.is_public(principal):
                continue  # a shared public account must not see which phones exist
            if decide(principal, Action.READ, resource, self.rules).allowed:
                entries.append(Entry(child.name, False, st.st_size, st.st_mtime))
        if not relative:
            entries.extend(self._rendered_entries(principal, {e.name for e in entries}, ip=ip))
        return sorted(entries, key=lambda entry: entry.name)

    def _rendered_entries(self, principal: Principal, on_disk: set[str], *, ip: str) -> list[Entry]:
        """The files phoneprov renders that this principal may read, for a root listing."""
        names = [MASTER_FILE, BOOTSTRAP_FILE, SITE_FILE]
        if principal.mac is not None:
            names.append(f"{principal.mac}{DEVICE_SUFFIX}")
        found: list[Entry] = []
        for name in names:
            resource = classify(name, self.settings.policy.bootstrap_files)
            if name in on_disk or not decide(principal, Action.READ, resource, self.rules).allowed:
                continue
            try:
                grant = self.read(principal, name, ip=ip, decoded=True)
            except (NotFound, Refused, RenderError):
                continue
            found.append(Entry(name, False, grant.size, grant.mtime))
        return found
