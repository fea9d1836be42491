"""Lync/SfB device routes: ``ucdevice.upx``, ``DeviceUpdateFiles_*`` and ``/certsrv``.

These bypass the phone handler's digest and mutual TLS on purpose: a CX700
downloads the CA chain before it trusts anything, and Lync's internal update
handler was anonymous HTTP (CX700 guide: "HTTP POST ... over port 80"). They
still write one access line per request and record the device.

Both listeners answer both handler paths, so a reverse proxy that terminates
TLS for the external URL can forward to the plain HTTP listener; the path
(``RequestHandler`` or ``RequestHandlerExt``) says which side the phone used.
"""

from __future__ import annotations

import asyncio
import re
import time
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from aiohttp import web

from phoneprov.model import DeviceStatus, Principal, PrincipalKind, Protocol
from phoneprov.pki.export import export_chain
from phoneprov.protocols.lync import (
    MAX_REQUEST,
    DeviceRequest,
    PackageKey,
    RequestError,
    Side,
    build_response,
    needs_legacy_chain,
    parse_request,
)
from phoneprov.protocols.polycom import Stage, UserAgent
from phoneprov.provisioning.access import AccessService
from phoneprov.provisioning.lync.answer import Answer, decide, is_looping, reported_text
from phoneprov.provisioning.lync.catalog import CATALOG_DIR, CATALOG_FILE, LOOP_FLAG, Catalog
from phoneprov.provisioning.lync.checks import served_chain
from phoneprov.records import Event, RequestRow

T = TypeVar("T")
RECENT = 3600.0  # a CX700 fetches the chain right after it asks for updates (seconds)
_FAMILY = re.compile(r"^[A-Za-z]+")
FILES_ROUTE = (
    "/DeviceUpdateFiles_{side:Int|Ext}/{type}/{vendor}/{model}/{revision}/{locale}"
    "/{version}/{module}"
)
_services: weakref.WeakKeyDictionary[AccessService, LyncService] = weakref.WeakKeyDictionary()


def _peer(request: web.Request) -> str:
    return request.remote or "-"


class LyncService:
    """Shared by the HTTP and HTTPS listeners of one process (one per AccessService)."""

    def __init__(self, access: AccessService, ports: dict[str, int]) -> None:
        self.access = access
        self.ports = ports  # filled by the runner once the listeners are bound
        self.log = access.store.lync
        self._catalog: tuple[int, Catalog] | None = None
        self._recent: dict[str, tuple[float, str, str]] = {}  # ip -> (time, model, mac)

    async def _off_loop(self, func: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, func)

    def catalog(self) -> Catalog:
        """The catalog, re-read when catalog.json changes (packages added while serving)."""
        path = self.access.settings.site_dir / CATALOG_DIR / CATALOG_FILE
        stamp = path.stat().st_mtime_ns if path.exists() else 0
        if self._catalog is None or self._catalog[0] != stamp:
            self._catalog = (stamp, Catalog.load(self.access.settings.site_dir))
        return self._catalog[1]

    def _bases(self, request: web.Request, side: Side) -> tuple[str, str]:
        """``http://host[:port]`` and ``https://host[:port]`` for BaseURL / ExternalBaseURL.

        The side the phone used keeps the Host it sent (a reverse proxy's name works);
        the other side uses the site's first name and the bound port.
        """
        settings = self.access.settings
        fqdn = settings.primary_fqdn
        host = f"[{fqdn}]" if ":" in fqdn else fqdn
        http_port = self.ports.get("http") or settings.http.port
        https_port = self.ports.get("https") or settings.https.port
        internal = f"http://{host}" + ("" if http_port == 80 else f":{http_port}")
        external = f"https://{host}" + ("" if https_port == 443 else f":{https_port}")
        sent = request.headers.get("Host", "")
        if sent and re.fullmatch(r"[A-Za-z0-9.\-\[\]:]{1,300}", sent):
            if side is Side.INTERNAL:
                internal = f"http://{sent}"
            else:
                external = f"https://{sent}"
        return internal, external

    def _access_line(
        self,
        request: web.Request,
        protocol: Protocol,
        identity: str,
        status: int,
        size: int,
        started: float,
    ) -> None:
        self.access.audit.access(
            protocol=protocol.value,
            ip=_peer(request),
            identity=identity,
            method=request.method,
            path=request.path,
            status=status,
            size=size,
            duration=time.perf_counter() - started,
        )

    # POST /RequestHandler[Ext]/ucdevice.upx
    async def update_request(
        self, request: web.Request, side: Side, protocol: Protocol
    ) -> web.Response:
        started = time.perf_counter()
        ip = _peer(request)
        if (request.content_length or 0) > MAX_REQUEST:
            response = web.Response(status=413, text=f"request over {MAX_REQUEST} bytes\n")
            self._access_line(request, protocol, "anonymous", 413, 0, started)
            return response
        body = await request.content.read(MAX_REQUEST + 1)
        if len(body) > MAX_REQUEST:
            self._access_line(request, protocol, "anonymous", 413, 0, started)
            return web.Response(status=413, text=f"request over {MAX_REQUEST} bytes\n")
        try:
            parsed = parse_request(body)
        except RequestError as error:
            mac = self._recent.get(ip, (0.0, "", ""))[2]
            self.access.recorder.event(
                Event(time.time(), mac, "ucupdate-malformed", f"{ip} {side.value}: {error}")
            )
            text = f"malformed device update request: {error}\n"
            self._access_line(request, protocol, "anonymous", 400, len(text), started)
            return web.Response(status=400, text=text)
        principal = Principal(PrincipalKind.ANONYMOUS, protocol, "ucdevice", mac=parsed.mac)
        answer = await self._answer(request, parsed, side, principal, body)
        payload = build_response(parsed, answer.offers)
        self._access_line(request, protocol, principal.label(), 200, len(payload), started)
        return web.Response(body=payload, content_type="text/xml", charset="utf-8")

    async def _answer(
        self,
        request: web.Request,
        parsed: DeviceRequest,
        side: Side,
        principal: Principal,
        body: bytes,
    ) -> Answer:
        ip, now = _peer(request), time.time()
        mac = parsed.mac
        self._recent[ip] = (now, parsed.model, mac.value if mac else "")
        if len(self._recent) > 100000:
            self._recent.clear()
        status = self.access.device_status(mac) if mac is not None else DeviceStatus.DISCOVERED
        if status in (DeviceStatus.DENIED, DeviceStatus.BLOCKED, DeviceStatus.PENDING):
            if status is not DeviceStatus.PENDING:
                self.access.audit.refused(
                    protocol=principal.protocol.value,
                    ip=ip,
                    identity=principal.label(),
                    reason=f"device-{status}",
                    path=request.path,
                )
            answer = Answer((), "refused")
        else:
            group = await self._off_loop(lambda: self.log.group_of(mac)) if mac else ""
            internal, external = self._bases(request, side)
            answer = decide(
                self.catalog(), parsed, group, internal_base=internal, external_base=external
            )
        row = RequestRow(
            now,
            mac.value if mac else "",
            ip,
            side.value,
            parsed.key.label(),
            reported_text(parsed),
            answer.offered,
            answer.outcome,
            body.decode("utf-8", "replace"),
        )
        await self._off_loop(lambda: self._record(row, parsed, answer))
        if mac is not None and status is not DeviceStatus.DENIED:
            version = parsed.modules[0].version if parsed.modules else ""
            family = _FAMILY.match(parsed.model)
            agent = UserAgent(
                family.group(0) if family else parsed.device_type,
                parsed.model,
                version,
                Stage.APPLICATION,
                mac,
            )
            self.access.note(
                principal,
                ip=ip,
                agent=agent,
                user_agent=request.headers.get("User-Agent", ""),
                path=request.path,
            )
            self.access.recorder.event(
                Event(
                    now,
                    mac.value,
                    "ucupdate",
                    f"{side.value} {parsed.key.label()} reported {row.reported or '-'}: "
                    f"{answer.outcome}{' ' + answer.offered if answer.offered else ''}",
                )
            )
        return answer

    def _record(self, row: RequestRow, parsed: DeviceRequest, answer: Answer) -> None:
        """Store the request; flag or clear the firmware loop (runs in a worker thread)."""
        self.log.record(row)
        if parsed.mac is None:
            return
        history = [(r.reported, r.offered) for r in self.log.recent(parsed.mac, limit=10)]
        if is_looping(history):
            if self.log.set_flag(parsed.mac, LOOP_FLAG, True):
                self.access.recorder.event(
                    Event(
                        time.time(),
                        parsed.mac.value,
                        "firmware-loop",
                        f"asked {len(history)} times for {row.offered} "
                        f"and still reports {row.reported or '-'}",
                    )
                )
        elif answer.outcome == "up-to-date":
            self.log.set_flag(parsed.mac, LOOP_FLAG, False)

    # GET /DeviceUpdateFiles_{Int|Ext}/...
    async def update_file(self, request: web.Request, protocol: Protocol) -> web.StreamResponse:
        started = time.perf_counter()
        info = request.match_info
        key = PackageKey(
            info["type"], info["vendor"], info["model"], info["revision"], info["locale"]
        )
        package = self.catalog().find(key, info["version"], info["module"])
        name = info.get("file", "")
        item = None
        if package is not None:
            item = package.file(name) if name else package.primary
        recent = self._recent.get(_peer(request))
        mac = recent[2] if recent and time.time() - recent[0] < RECENT else ""
        if package is None or item is None:
            self._access_line(request, protocol, "anonymous", 404, 0, started)
            return web.Response(status=404, text="not found\n")
        path: Path = self.catalog().object_path(item.sha256)
        if not path.is_file():
            self._access_line(request, protocol, "anonymous", 404, 0, started)
            return web.Response(status=404, text="package file missing on the server\n")
        if mac and request.method == "GET":
            self.access.recorder.event(
                Event(
                    time.time(),
                    mac,
                    "ucupdate-download",
                    f"{key.label()} {package.version} {item.name}",
                )
            )
        identity = f"anonymous:{mac}" if mac else "anonymous"
        self._access_line(request, protocol, identity, 200, item.size, started)
        return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})

    # GET /certsrv/certnew.p7b and /certsrv/certnew.cer
    async def ca_download(
        self, request: web.Request, protocol: Protocol, kind: str
    ) -> web.Response:
        started = time.perf_counter()
        ip = _peer(request)
        legacy_device = needs_legacy_chain(user_agent=request.headers.get("User-Agent", ""))
        recent = self._recent.get(ip)
        if not legacy_device and recent and time.time() - recent[0] < RECENT:
            legacy_device = needs_legacy_chain(recent[1])
        if not legacy_device:
            model = await self._off_loop(lambda: self.log.model_at_ip(ip, time.time() - 86400))
            legacy_device = needs_legacy_chain(model)
        chain, legacy = served_chain(self.access.settings.pki_dir, legacy_device=legacy_device)
        b64 = request.query.get("Enc", request.query.get("enc", "")).lower()
        if kind == "p7b":
            body = export_chain(chain, "p7b" if b64 == "bin" else "p7b-pem")
            ctype = "application/x-pkcs7-certificates"
        else:
            body = export_chain(chain, "pem" if b64 == "b64" else "der")
            ctype = "application/x-x509-ca-cert" if b64 == "b64" else "application/pkix-cert"
        identity = "anonymous:legacy-chain" if legacy else "anonymous"
        self._access_line(request, protocol, identity, 200, len(body), started)
        return web.Response(body=body, headers={"Content-Type": ctype})


def shared_service(access: AccessService, ports: dict[str, int]) -> LyncService:
    """The one LyncService for ``access`` (HTTP and HTTPS share its memory of recent devices)."""
    service = _services.get(access)
    if service is None:
        service = _services[access] = LyncService(access, ports)
    return service


def lync_routes(
    access: AccessService, ports: dict[str, int], *, secure: bool
) -> list[web.RouteDef]:
    """Routes for ``build_app(handler, extra_routes)``; they come before the phone catch-all."""
    service = shared_service(access, ports)
    protocol = Protocol.HTTPS if secure else Protocol.HTTP

    def post(side: Side) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            return await service.update_request(request, side, protocol)

        return handle

    async def files(request: web.Request) -> web.StreamResponse:
        return await service.update_file(request, protocol)

    async def p7b(request: web.Request) -> web.Response:
        return await service.ca_download(request, protocol, "p7b")

    async def cer(request: web.Request) -> web.Response:
        return await service.ca_download(request, protocol, "cer")

    return [
        web.post("/RequestHandler/ucdevice.upx", post(Side.INTERNAL)),
        web.post("/RequestHandlerExt/ucdevice.upx", post(Side.EXTERNAL)),
        web.get(FILES_ROUTE, files),
        web.get(FILES_ROUTE + "/{file}", files),
        web.get("/certsrv/certnew.p7b", p7b),
        web.get("/certsrv/certnew.cer", cer),
    ]
