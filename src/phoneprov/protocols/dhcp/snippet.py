"""Pick the renderer for a DHCP server syntax."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence

from phoneprov.protocols.dhcp import render as dhcp_render
from phoneprov.protocols.dhcp import vendor as dhcp_render_vendor
from phoneprov.protocols.dhcp.options import DhcpOption


class SnippetFormat(enum.StrEnum):
    """The DHCP server syntaxes phoneprov writes."""

    windows_netsh = "windows-netsh"
    powershell = "powershell"
    cisco_ios = "cisco-ios"
    isc_dhcpd = "isc-dhcpd"
    kea = "kea"
    dnsmasq = "dnsmasq"
    mikrotik = "mikrotik"


_RENDERERS: dict[SnippetFormat, Callable[[Sequence[DhcpOption]], str]] = {
    SnippetFormat.windows_netsh: dhcp_render_vendor.render_netsh,
    SnippetFormat.powershell: dhcp_render_vendor.render_powershell,
    SnippetFormat.cisco_ios: dhcp_render_vendor.render_cisco,
    SnippetFormat.isc_dhcpd: dhcp_render.render_isc,
    SnippetFormat.kea: dhcp_render.render_kea,
    SnippetFormat.dnsmasq: dhcp_render.render_dnsmasq,
    SnippetFormat.mikrotik: dhcp_render_vendor.render_mikrotik,
}


def render(fmt: SnippetFormat, options: Sequence[DhcpOption]) -> str:
    """Return the complete snippet for ``fmt`` (text ending in a newline)."""
    return _RENDERERS[fmt](options)
