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
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from phoneprov.model import Principal, PrincipalKind, Protocol
from phoneprov.protocols.lync import (
    MAX_REQUEST,
    PackageKey,
    RequestError,
    Side,
    build_response,
    parse_request,
)
from phoneprov.provisioning.services import PhoneServices

T = TypeVar("T")
FILES_ROUTE = (
    "/DeviceUpdateFiles_{side:Int|Ext}/{type}/{vendor}/{model}/{revision}/{locale}"
    "/{version}/{module}"
)


def _peer(request: web.Request) -> str:
    return request.remote or "-"


async def _off_loop(func: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, func)


class LyncHandler:
    """The HTTP side of the device update service; the HTTP and HTTPS listeners share one."""

    def __init__(self, services: PhoneServices, ports: dict[str, int]) -> None:
        self.services = services
        self.lync = services.lync
        self.ports = ports  # filled by the runner once the listeners are bound

    def _bases(self, request: web.Request, side: Side) -> tuple[str, str]:
        """``http://host[:port]`` and ``https://host[:port]`` for BaseURL / ExternalBaseURL.

        The side the phone used keeps the Host it sent (a reverse proxy's name works);
        the other side uses the site's first name and the bound port.
        """
        settings = self.services.settings
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
        self.services.audit.access(
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
            self._access_line(request, protocol, "anonymous", 413, 0, started)
            return web.Response(status=413, text=f"request over {MAX_REQUEST} bytes\n")
        body = await request.content.read(MAX_REQUEST + 1)
        if len(body) > MAX_REQUEST:
            self._access_line(request, protocol, "anonymous", 413, 0, started)
            return web.Response(status=413, text=f"request over {MAX_REQUEST} bytes\n")
        try:
            parsed = parse_request(body)
        except RequestError as error:
            self.lync.malformed(ip, side, str(error))
            text = f"malformed device update request: {error}\n"
            self._access_line(request, protocol, "anonymous", 400, len(text), started)
            return web.Response(status=400, text=text)
        principal = Principal(PrincipalKind.ANONYMOUS, protocol, "ucdevice", mac=parsed.mac)
        internal, external = self._bases(request, side)
        answer = await _off_loop(
            lambda: self.lync.answer(
                parsed,
                side,
                principal,
                ip=ip,
                path=request.path,
                body=body,
                user_agent=request.headers.get("User-Agent", ""),
                internal_base=internal,
                external_base=external,
            )
        )
        payload = build_response(parsed, answer.offers)
        self._access_line(request, protocol, principal.label(), 200, len(payload), started)
        return web.Response(body=payload, content_type="text/xml", charset="utf-8")

    # GET /DeviceUpdateFiles_{Int|Ext}/...
    async def update_file(self, request: web.Request, protocol: Protocol) -> web.StreamResponse:
        started = time.perf_counter()
        info = request.match_info
        key = PackageKey(
            info["type"], info["vendor"], info["model"], info["revision"], info["locale"]
        )
        download = self.lync.package_file(
            key, info["version"], info["module"], info.get("file", ""), ip=_peer(request)
        )
        if download is None:
            self._access_line(request, protocol, "anonymous", 404, 0, started)
            return web.Response(status=404, text="not found\n")
        if not download.path.is_file():
            self._access_line(request, protocol, "anonymous", 404, 0, started)
            return web.Response(status=404, text="package file missing on the server\n")
        if request.method == "GET":
            self.lync.downloaded(download, key)
        identity = f"anonymous:{download.mac}" if download.mac else "anonymous"
        self._access_line(request, protocol, identity, 200, download.item.size, started)
        return web.FileResponse(download.path, headers={"Content-Type": "application/octet-stream"})

    # GET /certsrv/certnew.p7b and /certsrv/certnew.cer
    async def ca_download(
        self, request: web.Request, protocol: Protocol, kind: str
    ) -> web.Response:
        started = time.perf_counter()
        encoding = request.query.get("Enc", request.query.get("enc", "")).lower()
        chain = await _off_loop(
            lambda: self.lync.ca_chain(
                ip=_peer(request),
                user_agent=request.headers.get("User-Agent", ""),
                kind=kind,
                encoding=encoding,
            )
        )
        identity = "anonymous:legacy-chain" if chain.legacy else "anonymous"
        self._access_line(request, protocol, identity, 200, len(chain.body), started)
        return web.Response(body=chain.body, headers={"Content-Type": chain.content_type})


def lync_routes(service: LyncHandler, *, secure: bool) -> list[web.RouteDef]:
    """Routes for ``build_app(handler, extra_routes)``; they come before the phone catch-all."""
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
