"""``phoneprov dhcp``: option values and ready-to-paste DHCP server snippets, and a decoder."""

from __future__ import annotations

import enum
import ipaddress
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from phoneprov.cli.common import SiteOption, handle_errors, print_json, site_path
from phoneprov.config import SETTINGS_FILE, load_settings
from phoneprov.errors import InputError
from phoneprov.protocols.dhcp import decode as dhcp_decode
from phoneprov.protocols.dhcp.encode import DEFAULT_CERT_PROV_PATH
from phoneprov.protocols.dhcp.options import (
    DhcpOption,
    OptionRequest,
    Skus,
    build_options,
    offset_for_zone,
)
from phoneprov.protocols.dhcp.snippet import SnippetFormat, render

app = typer.Typer(
    help="DHCP option values (2, 42, 43, 66, 120, 150, 160, 161) and snippets for DHCP servers.",
    no_args_is_help=True,
)


class OptionsFormat(enum.StrEnum):
    """``table`` and ``json`` for people and scripts, the rest are DHCP server syntaxes."""

    table = "table"
    json = "json"
    windows_netsh = SnippetFormat.windows_netsh.value
    powershell = SnippetFormat.powershell.value
    cisco_ios = SnippetFormat.cisco_ios.value
    isc_dhcpd = SnippetFormat.isc_dhcpd.value
    kea = SnippetFormat.kea.value
    dnsmasq = SnippetFormat.dnsmasq.value
    mikrotik = SnippetFormat.mikrotik.value


class DecodeFormat(enum.StrEnum):
    table = "table"
    json = "json"


def _site_url(site: Path | None) -> tuple[str, tuple[str, ...]]:
    """The HTTP bootstrap URL of the site, and the notes that explain where it came from."""
    path = site_path(site)
    if not (path / SETTINGS_FILE).is_file():
        raise InputError(
            f"no --provisioning-url given and no {SETTINGS_FILE} in {path}",
            "Pass --provisioning-url http://prov.example.com:8080/, or point --site "
            "(or PHONEPROV_SITE) at a site created by `phoneprov init`.",
        )
    settings = load_settings(path)
    notes = [
        f"From {path / SETTINGS_FILE}: the HTTP bootstrap URL (phase 1). The bootROM signs in "
        "with the phone's provisioning user, factory default PlcmSpIp / PlcmSpIp; initial.cfg "
        f"then moves the phone to {settings.https_url()} (mutual TLS)."
    ]
    if not settings.http.enabled:
        notes.append(
            "[http] enabled = false in phoneprov.toml: phones without phoneprov's CA cannot "
            "bootstrap. Enable HTTP, or pass --provisioning-url for a server they can reach."
        )
    host = settings.primary_fqdn
    loopback = host == "localhost"
    if not loopback:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
    if loopback:
        notes.append(
            f"The site's first FQDN is {host}: phones cannot reach it. "
            "Put the server's name first in [site] fqdns."
        )
    return settings.http_url(), tuple(notes)


def _table(options: tuple[DhcpOption, ...]) -> str:
    lines: list[str] = []
    for option in options:
        label = f"option {option.code}"
        if option.vendor_class:
            label += f" (vendor class {option.vendor_class})"
        lines.append(f"{label}  {option.name}")
        lines.append(f"  value  {option.value}")
        lines.append(f"  hex    {option.hex}")
        lines += [f"  note   {note}" for note in option.notes]
        lines.append("")
    return "\n".join(lines)


@app.command("options")
@handle_errors
def options_command(
    provisioning_url: str | None = typer.Option(
        None,
        "--provisioning-url",
        help="Boot server URL for 66/160/161 (default: the site's HTTP URL from phoneprov.toml).",
    ),
    sip_server: list[str] = typer.Option(
        [], "--sip-server", help="Option 120: SIP server names or IPv4 addresses (repeatable)."
    ),
    web_server: str | None = typer.Option(
        None, "--web-server", help="Option 43 MS-UC-Client: Lync/SfB web server FQDN."
    ),
    web_port: int = typer.Option(443, "--web-port", help="Web server port for option 43."),
    cert_prov_path: str = typer.Option(
        DEFAULT_CERT_PROV_PATH, "--cert-prov-path", help="Certificate provisioning path."
    ),
    ntp: list[str] = typer.Option([], "--ntp", help="Option 42: NTP server IPv4 (repeatable)."),
    tz_offset: int | None = typer.Option(
        None, "--tz-offset", help="Option 2: seconds east of UTC, e.g. -18000."
    ),
    timezone: str | None = typer.Option(
        None, "--timezone", help="Option 2 from a zone name at today's date, e.g. America/New_York."
    ),
    tftp_server: str | None = typer.Option(
        None, "--tftp-server", help="Option 66 (and 150 for an IPv4): TFTP server."
    ),
    vlan: int | None = typer.Option(
        None, "--vlan", help="Option 43 CPE-OCPHONE: voice VLAN ID for Lync Phone Edition."
    ),
    skus: Skus = typer.Option(Skus.both, "--skus", help="Phone software: 160, 161 or both."),
    fmt: OptionsFormat = typer.Option(OptionsFormat.table, "--format", help="Output format."),
    site: Path | None = SiteOption,
) -> None:
    """Print the DHCP option values phones need, or a snippet for one DHCP server."""
    url_notes: tuple[str, ...] = ()
    if provisioning_url is None:
        provisioning_url, url_notes = _site_url(site)
    tz_note = ""
    if tz_offset is not None and timezone is not None:
        raise InputError(
            "--tz-offset and --timezone both set option 2",
            "Give only one of them.",
        )
    if timezone is not None:
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(
                f"--timezone {timezone!r} is not a time zone name",
                "Use an IANA name such as America/New_York or Europe/Paris, "
                "or give --tz-offset in seconds.",
            ) from None
        tz_offset, tz_note = offset_for_zone(zone, timezone, datetime.now(UTC))
    request = OptionRequest(
        provisioning_url=provisioning_url,
        sip_servers=tuple(sip_server),
        web_server=web_server,
        web_port=web_port,
        cert_prov_path=cert_prov_path,
        ntp_servers=tuple(ntp),
        tz_offset=tz_offset,
        tftp_server=tftp_server,
        vlan=vlan,
        skus=skus,
        url_notes=url_notes,
    )
    options = build_options(request, tz_note)
    if fmt is OptionsFormat.json:
        print_json({"options": [o.as_json() for o in options]})
    elif fmt is OptionsFormat.table:
        typer.echo(_table(options), nl=False)
    else:
        typer.echo(render(SnippetFormat(fmt.value), options), nl=False)


@app.command("decode")
@handle_errors
def decode_command(
    code: int = typer.Argument(..., help="Option code: 2, 42, 43, 60, 66, 120, 150, 160, 161."),
    value: str = typer.Argument(..., metavar="HEX", help="The option value in hex."),
    vendor_class: str | None = typer.Option(
        None, "--vendor-class", help="For option 43: MS-UC-Client or CPE-OCPHONE."
    ),
    fmt: DecodeFormat = typer.Option(DecodeFormat.table, "--format", help="Output format."),
) -> None:
    """Explain a DHCP option value byte by byte (e.g. what a capture or a server shows)."""
    data = dhcp_decode.parse_hex(value)
    fields = dhcp_decode.decode(code, data, vendor_class)
    if fmt is DecodeFormat.json:
        print_json(
            {
                "code": code,
                "vendor_class": vendor_class,
                "length": len(data),
                "fields": [f.as_json() for f in fields],
            }
        )
        return
    title = f"option {code}" + (f" (vendor class {vendor_class})" if vendor_class else "")
    typer.echo(f"{title}: {len(data)} bytes")
    width = max(len(f.name) for f in fields)
    for f in fields:
        typer.echo(f"  @{f.offset:<4} {f.name:<{width}}  {f.meaning}")
        typer.echo(f"        {'':<{width}}  {f.hex}")
