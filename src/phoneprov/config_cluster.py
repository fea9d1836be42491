"""``[cluster]`` settings: nodes sharing one database, behind a load balancer.

Parsed by ``config.settings_from_mapping``; see docs/scale-out.md. Pure: values in,
frozen values out.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from phoneprov.errors import ConfigError


class _Section(Protocol):
    """What ``config._Section`` offers that is read here."""

    path: Path

    def text(self, key: str, default: str) -> str: ...

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class ClusterSettings:
    """Nodes sharing one database: ``[cluster]`` (docs/scale-out.md)."""

    node_name: str = ""  # shown by `phoneprov cluster status`; the host name when empty
    heartbeat: float = 10.0  # seconds between two heartbeats of a node
    revocation_refresh: float = 5.0  # seconds before every node refuses a revoked certificate
    catalog_refresh: float = 5.0  # seconds before every node offers a changed Lync catalog
    # Balancers (addresses or networks) whose connections start with a PROXY protocol
    # header naming the phone: the phone listeners use that address, and refuse a header
    # from anywhere else.
    proxy_from: tuple[str, ...] = ()


class TrustedAddresses:
    """Membership of an address in networks from the settings (``proxy_from``)."""

    def __init__(self, networks: tuple[str, ...]) -> None:
        self.networks = tuple(ipaddress.ip_network(n) for n in networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, ip: object) -> bool:
        if not self.networks or not isinstance(ip, str):
            return False
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def networks(section: _Section, key: str) -> tuple[str, ...]:
    """A list of addresses or networks, normalised ("10.0.0.1" -> "10.0.0.1/32")."""
    found = []
    for entry in section.strings(key, ()):
        try:
            found.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            raise ConfigError(
                f"{section.path}: [cluster] {key} has {entry!r}, not an address or network",
                'List the balancers\' addresses, e.g. ["10.0.0.5", "10.0.1.0/28"].',
            ) from None
    return tuple(found)


def cluster_settings(
    section: _Section, heartbeat: float, revocation_refresh: float, catalog_refresh: float
) -> ClusterSettings:
    return ClusterSettings(
        node_name=section.text("node_name", ""),
        heartbeat=heartbeat,
        revocation_refresh=revocation_refresh,
        catalog_refresh=catalog_refresh,
        proxy_from=networks(section, "proxy_from"),
    )


@dataclass(frozen=True)
class EdgeSettings:
    """nginx in front, terminating mutual TLS: ``[edge]`` (docs/scale-out.md).

    The forwarded client certificate is believed on ``socket`` only: a unix socket
    (mode 0660, group ``group``) that only nginx's user can reach. Empty: no edge listener.
    """

    socket: str = ""
    group: str = ""  # the socket's group (nginx's user must be in it); the server's own when empty


# sockaddr_un holds 108 bytes, the terminating NUL included.
UNIX_PATH_MAX = 107


def edge_settings(section: _Section) -> EdgeSettings:
    path = section.text("socket", "")
    if path and (not path.startswith("/") or len(path.encode()) > UNIX_PATH_MAX):
        raise ConfigError(
            f"{section.path}: [edge] socket = {path!r} is not an absolute path of at most "
            f"{UNIX_PATH_MAX} bytes",
            'Name the unix socket nginx proxies to, e.g. "/run/phoneprov/edge.sock".',
        )
    return EdgeSettings(socket=path, group=section.text("group", ""))
