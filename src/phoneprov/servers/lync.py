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

import re
import time

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
from phoneprov.servers.phonehttp.message import PhoneRequest, PhoneResponse

# /DeviceUpdateFiles_{Int|Ext}/type/vendor/model/revision/locale/version/module[/file]
FILES_ROUTE = re.compile(
    r"/DeviceUpdateFiles_(?:Int|Ext)/(?P<type>[^/]+)/(?P<vendor>[^/]+)/(?P<model>[^/]+)"
    r"/(?P<revision>[^/]+)/(?P<locale>[^/]+)/(?P<version>[^/]+)/(?P<module>[^/]+)"
    r"(?:/(?P<file>[^/]+))?"
)


class LyncHandler:
    """The HTTP side of the device update service; the HTTP and HTTPS listeners share one."""

    def __init__(self, services: PhoneServices, ports: dict[str, int]) -> None:
        self.services = services
        self.lync = services.lync
        self.ports = ports  # filled by the runner once the listeners are bound

    def _bases(self, request: PhoneRequest, side: Side) -> tuple[str, str]:
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
        sent = request.header("host")
        if sent and re.fullmatch(r"[A-Za-z0-9.\-\[\]:]{1,300}", sent):
            if side is Side.INTERNAL:
                internal = f"http://{sent}"
            else:
                external = f"https://{sent}"
        return internal, external

    def _access_line(
        self,
        request: PhoneRequest,
        protocol: Protocol,
        identity: str,
        status: int,
        size: int,
        started: float,
    ) -> None:
        self.services.audit.access(
            protocol=protocol.value,
            ip=request.ip,
            identity=identity,
            method=request.method,
            path=request.path,
            status=status,
            size=size,
            duration=time.perf_counter() - started,
        )

    # POST /RequestHandler[Ext]/ucdevice.upx
    def update_request(
        self, request: PhoneRequest, side: Side, protocol: Protocol
    ) -> PhoneResponse:
        started = time.perf_counter()
        ip = request.ip
        if (request.content_length or 0) > MAX_REQUEST:
            self._access_line(request, protocol, "anonymous", 413, 0, started)
            return PhoneResponse.text(413, f"request over {MAX_REQUEST} bytes\n")
        body = _read_at_most(request, MAX_REQUEST + 1)
        if len(body) > MAX_REQUEST:
            self._access_line(request, protocol, "anonymous", 413, 0, started)
            return PhoneResponse.text(413, f"request over {MAX_REQUEST} bytes\n")
        try:
            parsed = parse_request(body)
        except RequestError as error:
            self.lync.malformed(ip, side, str(error))
            text = f"malformed device update request: {error}\n"
            self._access_line(request, protocol, "anonymous", 400, len(text), started)
            return PhoneResponse.text(400, text)
        principal = Principal(PrincipalKind.ANONYMOUS, protocol, "ucdevice", mac=parsed.mac)
        internal, external = self._bases(request, side)
        answer = self.lync.answer(
            parsed,
            side,
            principal,
            ip=ip,
            path=request.path,
            body=body,
            user_agent=request.header("user-agent"),
            internal_base=internal,
            external_base=external,
        )
        payload = build_response(parsed, answer.offers)
        self._access_line(request, protocol, principal.label(), 200, len(payload), started)
        return PhoneResponse.data(payload, "text/xml; charset=utf-8")

    # GET /DeviceUpdateFiles_{Int|Ext}/...
    def update_file(
        self, request: PhoneRequest, protocol: Protocol, info: dict[str, str]
    ) -> PhoneResponse:
        started = time.perf_counter()
        key = PackageKey(
            info["type"], info["vendor"], info["model"], info["revision"], info["locale"]
        )
        download = self.lync.package_file(
            key, info["version"], info["module"], info.get("file") or "", ip=request.ip
        )
        if download is None:
            self._access_line(request, protocol, "anonymous", 404, 0, started)
            return PhoneResponse.text(404, "not found\n")
        if not download.path.is_file():
            self._access_line(request, protocol, "anonymous", 404, 0, started)
            return PhoneResponse.text(404, "package file missing on the server\n")
        if request.method == "GET":
            self.lync.downloaded(download, key)
        identity = f"anonymous:{download.mac}" if download.mac else "anonymous"
        self._access_line(request, protocol, identity, 200, download.item.size, started)
        size = download.path.stat().st_size
        return PhoneResponse(
            200, {"Content-Type": "application/octet-stream"}, file=download.path, size=size
        )

    # GET /certsrv/certnew.p7b and /certsrv/certnew.cer
    def ca_download(self, request: PhoneRequest, protocol: Protocol, kind: str) -> PhoneResponse:
        started = time.perf_counter()
        query = request.query
        encoding = query.get("Enc", query.get("enc", "")).lower()
        chain = self.lync.ca_chain(
            ip=request.ip, user_agent=request.header("user-agent"), kind=kind, encoding=encoding
        )
        identity = "anonymous:legacy-chain" if chain.legacy else "anonymous"
        self._access_line(request, protocol, identity, 200, len(chain.body), started)
        return PhoneResponse.data(chain.body, chain.content_type)


def _read_at_most(request: PhoneRequest, limit: int) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < limit and (chunk := request.body.read(limit - got)):
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def lync_route(
    service: LyncHandler, request: PhoneRequest, protocol: Protocol
) -> PhoneResponse | None:
    """The Lync answer to ``request``, or None when its path is not a Lync route (the
    phone handler's then). They come before the phone handler, as a router's first routes."""
    path, method = request.path, request.method
    if method == "POST" and path == "/RequestHandler/ucdevice.upx":
        return service.update_request(request, Side.INTERNAL, protocol)
    if method == "POST" and path == "/RequestHandlerExt/ucdevice.upx":
        return service.update_request(request, Side.EXTERNAL, protocol)
    if method not in ("GET", "HEAD"):
        return None
    if path == "/certsrv/certnew.p7b":
        return service.ca_download(request, protocol, "p7b")
    if path == "/certsrv/certnew.cer":
        return service.ca_download(request, protocol, "cer")
    match = FILES_ROUTE.fullmatch(path)
    if match is not None:
        return service.update_file(request, protocol, match.groupdict())
    return None
