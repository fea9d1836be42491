"""Deployment routes: the DHCP option values phones need and a snippet for a DHCP
server (``phoneprov dhcp options``), and the doctor's findings (``phoneprov doctor``)."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from phoneprov.config import Settings
from phoneprov.errors import InputError
from phoneprov.protocols.dhcp.options import DhcpOption as Option
from phoneprov.protocols.dhcp.options import OptionRequest, Skus, build_options
from phoneprov.protocols.dhcp.snippet import SnippetFormat, render
from phoneprov.protocols.polycom import ResourceKind
from phoneprov.provisioning.doctor.checks import check_site
from phoneprov.provisioning.doctor.finding import summary
from phoneprov.servers.admin.bodies import DhcpOption, DhcpValues, DoctorFinding, DoctorReport
from phoneprov.servers.admin.call import Call, json
from phoneprov.servers.admin.table import VIEW, Param, Route

FLEET = ResourceKind.FLEET
DHCP_QUERY = (
    Param("sip_server", {"type": "string"}, "Option 120: SIP servers, comma-separated."),
    Param("ntp", {"type": "string"}, "Option 42: NTP server IPv4 addresses, comma-separated."),
    Param("tftp_server", {"type": "string"}, "Option 66 (and 150): a TFTP server."),
    Param("skus", {"enum": [s.value for s in Skus]}, "Phone software: 160, 161 or both."),
)


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def _options(call: Call) -> tuple[Option, ...]:
    """The options for the site's HTTP bootstrap URL; InputError naming a bad value."""
    settings: Settings = call.services.settings
    skus = call.query("skus") or Skus.both.value
    if skus not in {s.value for s in Skus}:
        raise InputError(
            f"skus={skus!r} is not a phone software choice",
            f"Use one of: {', '.join(s.value for s in Skus)}.",
        )
    request = OptionRequest(
        provisioning_url=settings.http_url(),
        sip_servers=_split(call.query("sip_server")),
        ntp_servers=_split(call.query("ntp")),
        tftp_server=call.query("tftp_server") or None,
        skus=Skus(skus),
    )
    return build_options(request)


async def dhcp_values(call: Call) -> web.Response:
    options = _options(call)
    return json(
        DhcpValues(
            provisioning_url=call.services.settings.http_url(),
            options=[DhcpOption.model_validate(o.as_json()) for o in options],
        )
    )


async def dhcp_snippet(call: Call) -> web.Response:
    fmt = call.query("format") or ""
    if fmt not in {f.value for f in SnippetFormat}:
        raise InputError(
            f"format={fmt!r} is not a DHCP server syntax",
            f"Use one of: {', '.join(f.value for f in SnippetFormat)}.",
        )
    return web.Response(text=render(SnippetFormat(fmt), _options(call)), content_type="text/plain")


async def doctor(call: Call) -> web.Response:
    findings = await call.run(check_site, call.services.settings, now=datetime.now(UTC))
    return json(
        DoctorReport(
            findings=[DoctorFinding.model_validate(f.to_json()) for f in findings],
            summary=summary(findings),
        )
    )


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/v1/dhcp",
        "dhcpValues",
        "DHCP option values for the site's boot server (2, 42, 43, 66, 120, 150, 160, 161)",
        dhcp_values,
        VIEW,
        FLEET,
        response=DhcpValues,
        query=DHCP_QUERY,
        tag="deployment",
    ),
    Route(
        "GET",
        "/api/v1/dhcp/snippet",
        "dhcpSnippet",
        "The same options as configuration for one DHCP server",
        dhcp_snippet,
        VIEW,
        FLEET,
        response="text/plain",
        query=(
            Param("format", {"enum": [f.value for f in SnippetFormat]}, "The DHCP server."),
            *DHCP_QUERY,
        ),
        tag="deployment",
    ),
    Route(
        "GET",
        "/api/v1/doctor",
        "doctor",
        "Run the deployment checks of `phoneprov doctor` and return their findings",
        doctor,
        VIEW,
        FLEET,
        response=DoctorReport,
        tag="deployment",
    ),
)
