"""Which DHCP options a phone site needs, with their bytes and the notes an administrator reads.

``build_options`` turns validated administrator input into ``DhcpOption``
values; the renderers (``dhcp.render``, ``dhcp.vendor``) only change
syntax, never bytes.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from phoneprov.errors import InputError
from phoneprov.protocols.dhcp import encode as enc


class Skus(enum.StrEnum):
    """Which phone software the site runs: it decides option 160, 161 or both."""

    open_sip = "open-sip"
    lync = "lync"
    both = "both"


@dataclass(frozen=True)
class DhcpOption:
    """One option value ready to render: ``data`` is the wire value without code and length."""

    code: int
    name: str
    data: bytes
    value: str
    vendor_class: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def hex(self) -> str:
        """Upper-case hex, no separators (the form DHCPUtil prints)."""
        return self.data.hex().upper()

    def as_json(self) -> dict[str, object]:
        """The stable JSON shape of ``phoneprov dhcp options --format json``."""
        return {
            "code": self.code,
            "vendor_class": self.vendor_class,
            "name": self.name,
            "hex": self.hex,
            "value": self.value,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class OptionRequest:
    """What the administrator asked for; every field is raw input, validated by build_options."""

    provisioning_url: str
    sip_servers: tuple[str, ...] = ()
    web_server: str | None = None
    web_port: int = 443
    cert_prov_path: str = enc.DEFAULT_CERT_PROV_PATH
    ntp_servers: tuple[str, ...] = ()
    tz_offset: int | None = None
    tftp_server: str | None = None
    vlan: int | None = None
    skus: Skus = Skus.both
    url_notes: tuple[str, ...] = ()


def offset_for_zone(zone: tzinfo, zone_name: str, now: datetime) -> tuple[int, str]:
    """Seconds east of UTC for ``zone`` at ``now`` (aware), and the note explaining it."""
    delta = now.astimezone(zone).utcoffset()
    seconds = int(delta.total_seconds()) if delta is not None else 0
    sign = "+" if seconds >= 0 else "-"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    note = (
        f"{zone_name} is UTC{sign}{hours:02d}:{minutes:02d} on {now.date().isoformat()}; "
        "daylight saving time changes it, so run this again after each change "
        "(phones keep their own DST rules in tcpIpApp.sntp.*)."
    )
    return seconds, note


def _seconds_text(seconds: int) -> str:
    sign = "+" if seconds >= 0 else "-"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{seconds} s (UTC{sign}{hours:02d}:{minutes:02d})"


def _url_option(code: int, name: str, url: str, notes: Sequence[str]) -> DhcpOption:
    return DhcpOption(code, name, enc.text_value(url, f"option {code}"), url, None, tuple(notes))


def build_options(request: OptionRequest, tz_note: str = "") -> tuple[DhcpOption, ...]:
    """Encode every option the request implies, in option-code order (43 variants last).

    Raises InputError (exit 2) naming the bad value and the fix.
    """
    url = enc.boot_url(request.provisioning_url)
    options: list[DhcpOption] = []
    if request.tz_offset is not None:
        tz_notes = [tz_note] if tz_note else []
        tz_notes.append("Two's complement: servers that store it unsigned need the hex form.")
        options.append(
            DhcpOption(
                2,
                "time-offset",
                enc.time_offset(request.tz_offset),
                _seconds_text(request.tz_offset),
                None,
                tuple(tz_notes),
            )
        )
    if request.ntp_servers:
        addresses = [str(enc.ipv4_address(a, "--ntp")) for a in request.ntp_servers]
        options.append(
            DhcpOption(
                42,
                "ntp-servers",
                enc.ipv4_list(addresses, "--ntp"),
                ", ".join(addresses),
                None,
                ("Accurate time matters: phones check TLS certificate dates.",),
            )
        )
    options.append(_tftp_option(request, url))
    if request.sip_servers:
        options.append(_sip_option(request.sip_servers))
    if request.tftp_server and enc.is_ipv4(request.tftp_server.strip()):
        address = request.tftp_server.strip()
        options.append(
            DhcpOption(
                150,
                "cisco-tftp-servers",
                enc.ipv4_list([address], "--tftp-server"),
                address,
                None,
                ("Cisco-style TFTP server list; Polycom phones read option 66 or 160/161.",),
            )
        )
    if request.skus in (Skus.open_sip, Skus.both):
        notes = (
            "Polycom boot server option for Open SIP (UC Software) phones: "
            "device.dhcp.bootSrvOpt defaults to 160 with 'Custom + Option 66'.",
            *request.url_notes,
        )
        options.append(_url_option(160, "polycom-boot-server", url, notes))
    if request.skus in (Skus.lync, Skus.both):
        notes = (
            "Boot server option for Lync/Skype for Business SKUs "
            "(part numbers ending -018 or -019).",
            *request.url_notes,
        )
        options.append(_url_option(161, "polycom-boot-server-lync", url, notes))
    if request.web_server is not None:
        options.append(_ms_uc_option(request, request.web_server))
    if request.vlan is not None:
        options.append(
            DhcpOption(
                43,
                "voice-vlan",
                enc.cpe_ocphone_vlan(request.vlan),
                str(request.vlan),
                enc.CPE_OCPHONE,
                (
                    "Sub-option 10, 16-bit word; sent only to clients whose option 60 is "
                    "CPE-OCPHONE (Microsoft documents also spell it CPE-OCPhone).",
                    "Only when LLDP-MED cannot give the voice VLAN: the phone stores the ID, "
                    "releases the lease and asks again on the tagged VLAN.",
                ),
            )
        )
    return tuple(options)


def _tftp_option(request: OptionRequest, url: str) -> DhcpOption:
    if request.tftp_server:
        server = request.tftp_server.strip()
        if not enc.is_ipv4(server):
            server = enc.hostname(server, "--tftp-server")
        return DhcpOption(
            66,
            "tftp-server-name",
            enc.text_value(server, "option 66"),
            server,
            None,
            ("Phones whose boot server option is 'Option 66' fetch from this TFTP server.",),
        )
    return DhcpOption(
        66,
        "tftp-server-name",
        enc.text_value(url, "option 66"),
        url,
        None,
        (
            "Polycom phones accept a full URL in option 66; it is their fallback "
            "when option 160/161 is missing.",
        ),
    )


def _sip_option(servers: Sequence[str]) -> DhcpOption:
    data = enc.sip_servers(servers)
    names = [s.strip().rstrip(".") for s in servers]
    notes = ["RFC 3361: encoding byte 00 + DNS names, or 01 + IPv4 addresses; never mixed."]
    if data[0] == 1:
        notes.append("Lync/SfB phones need a name here (TLS checks it); addresses suit Open SIP.")
    return DhcpOption(120, "sip-server", data, ", ".join(names), None, tuple(notes))


def _ms_uc_option(request: OptionRequest, web_server: str) -> DhcpOption:
    data = enc.ms_uc_client(web_server, request.web_port, request.cert_prov_path)
    fqdn = enc.web_server_name(web_server)
    if request.skus is Skus.open_sip:
        raise InputError(
            "--web-server sets option 43 for Lync/SfB phones, but --skus is open-sip",
            "Use --skus lync or --skus both, or leave out --web-server.",
        )
    return DhcpOption(
        43,
        "ms-uc-cert-provisioning",
        data,
        f"https://{fqdn}:{request.web_port}{request.cert_prov_path}",
        enc.MS_UC_CLIENT,
        (
            "Sub-options 1-5 exactly as Microsoft DHCPUtil prints them: UC identifier, "
            "scheme, web server FQDN, port as ASCII, relative path; no NUL, no END byte.",
            "Sent only to clients whose option 60 is MS-UC-Client (case matters).",
        ),
    )
