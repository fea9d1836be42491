"""What a phone may read, and the bytes it gets: files on disk or rendered per phone.

A file in the boot directory is served as is (small ones from memory, large
ones streamed); without one, the renderer answers for the files it knows
(master, site and per-phone configs, firmware by model). A boot is 10-15
requests in a few seconds and a storm is thousands of phones asking for the
same files, so rendered answers are kept ``RENDER_TTL`` seconds per (file,
phone) in a bounded LRU map: inventory and template changes reach phones
within that time, and a storm of 50,000 phones evicts the oldest entries only.
"""

from __future__ import annotations

import mimetypes
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cachetools import LRUCache, TTLCache

from phoneprov.model import MacAddress, Principal, PrincipalKind
from phoneprov.policy import Action
from phoneprov.protocols import masterfile
from phoneprov.protocols.polycom import Resource, ResourceKind, UserAgent
from phoneprov.provisioning.audit import Audit
from phoneprov.provisioning.firmware import LOOP_THRESHOLD
from phoneprov.provisioning.gate import Gate, NotFound, is_public
from phoneprov.provisioning.identity import Identity
from phoneprov.provisioning.render import Rendered, RenderError, SiteRenderer
from phoneprov.provisioning.uploads import UploadFolder
from phoneprov.records import Event
from phoneprov.store import Recorder

MEMORY_CACHE_LIMIT = 256 * 1024  # small files are served from memory; firmware is streamed
FILE_CACHE_SIZE = 4096  # small files kept in memory, checked against mtime and size
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


@dataclass(frozen=True, slots=True)
class ReadGrant:
    """What to send: ``body`` for small and rendered files, ``path`` to stream large ones."""

    resource: Resource
    size: int
    mtime: float
    content_type: str
    body: bytes | None = None
    path: Path | None = None


def content_type_for(name: str) -> str:
    """The Content-Type phones expect for a file name."""
    suffix = os.path.splitext(name)[1].lower()
    return _CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


_RenderKey = tuple[str, str, bool, str, bool]


class Reads:
    """Authorizes reads and produces their bytes, for every listener of one process."""

    def __init__(
        self,
        gate: Gate,
        identity: Identity,
        renderer: SiteRenderer,
        folder: UploadFolder,
        recorder: Recorder,
        audit: Audit,
    ) -> None:
        self.gate = gate
        self.identity = identity
        self.renderer = renderer
        self.folder = folder
        self.recorder = recorder
        self.audit = audit
        self._files: LRUCache[str, tuple[int, int, bytes]] = LRUCache(FILE_CACHE_SIZE)
        self._rendered: TTLCache[_RenderKey, tuple[ReadGrant | None, Rendered]] = TTLCache(
            RENDER_CACHE_SIZE, RENDER_TTL
        )
        self._lock = threading.Lock()  # FTP runs in its own thread

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

        ``agent`` (the parsed User-Agent) names the phone's model for firmware.
        """
        resource = self.gate.resolve(principal, raw, ip=ip, decoded=decoded)
        owner = resource.owner
        if (
            is_public(principal)
            and resource.kind is ResourceKind.DEVICE_FILE
            and owner is not None
            and not owner.is_wildcard
        ):
            self.identity.claim(principal, owner, ip)
        self.gate.check(principal, Action.READ, resource, ip=ip)
        try:
            path = self.folder.existing(resource)
        except NotFound:
            return self._rendered_grant(principal, resource, ip=ip, agent=agent)
        st = path.stat()
        if resource.kind is ResourceKind.MASTER and is_public(principal):
            body = self._restrict_master(principal, self._cached(path, st))
            return ReadGrant(resource, len(body), st.st_mtime, "application/xml", body=body)
        ctype = content_type_for(resource.name)
        if st.st_size <= MEMORY_CACHE_LIMIT:
            return ReadGrant(resource, st.st_size, st.st_mtime, ctype, body=self._cached(path, st))
        return ReadGrant(resource, st.st_size, st.st_mtime, ctype, path=path)

    def _cached(self, path: Path, st: os.stat_result) -> bytes:
        key = str(path)
        with self._lock:
            hit = self._files.get(key)
        if hit is not None and hit[0] == st.st_mtime_ns and hit[1] == st.st_size:
            return hit[2]
        body = path.read_bytes()
        with self._lock:
            self._files[key] = (st.st_mtime_ns, st.st_size, body)
        return body

    def _restrict_master(self, principal: Principal, source: bytes) -> bytes:
        """The master file without the entries a public identity may not read."""

        def public(entry: str) -> bool:
            name = entry.replace("[PHONE_MAC_ADDRESS]", "000000000001")
            return self.gate.allows(principal, Action.READ, self.gate.classify(name))

        return masterfile.restrict_config_files(source, public)

    def _rendered_grant(
        self, principal: Principal, resource: Resource, *, ip: str, agent: UserAgent | None
    ) -> ReadGrant:
        """A file with no copy on disk, from the renderer; NotFound when it has none either."""
        mac = self.identity.phone_mac(principal, agent)
        public = is_public(principal)
        model = agent.model_token if agent else ""
        mutual_tls = principal.kind is PrincipalKind.DEVICE_CERT
        key = (resource.path.lower(), mac.value if mac else "", public, model, mutual_tls)
        with self._lock:
            hit = self._rendered.get(key)
        if hit is not None:
            return hit[0] if hit[0] is not None else self._grant(principal, resource, hit[1], mac)
        try:
            served = self.renderer.serve(
                resource, mac=mac, public=public, model=model, mutual_tls=mutual_tls
            )
        except RenderError as error:
            self.audit.template_error(
                ip=ip,
                protocol=principal.protocol.value,
                identity=principal.label(),
                path=resource.path,
                template=error.template,
                line=error.line,
                detail=str(error),
            )
            raise
        if served is None:
            raise NotFound(f"{resource.path} does not exist") from None
        grant = self._grant(principal, resource, served, mac)
        # Firmware grants are not kept whole: each fetch is counted (loop detection).
        kept = grant if served.path is None else None
        with self._lock:
            self._rendered[key] = (kept, served)
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
        if resource.kind is ResourceKind.MASTER and is_public(principal):
            body = self._restrict_master(principal, body)
        return ReadGrant(resource, len(body), time.time(), ctype, body=body)

    def _count_firmware(self, mac: MacAddress, served: Rendered, name: str) -> None:
        """Count a firmware fetch and flag a loop (on the recorder's thread: it writes)."""
        if self.renderer.count_download(mac, served) == LOOP_THRESHOLD:
            assert served.firmware is not None
            version = served.firmware.version
            detail = f"{name} {version} fetched {LOOP_THRESHOLD} times"
            self.recorder.event(Event(time.time(), mac.value, "firmware-loop", detail))
