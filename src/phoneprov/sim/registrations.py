"""The SIP registrations a phone would make from the parameters it ended up with.

A line registers when ``reg.N.address`` is set; it authenticates as
``reg.N.auth.userId`` (the address when empty) and registers with
``reg.N.server.M.address`` (``:port`` when ``reg.N.server.M.port`` is set), or,
when the line names no server, with the phone-wide ``voIpProt.server.M.*``
(Polycom UC Software administrator guide, "Registration"). The simulator
reports them so that a migration can be checked line by line; passwords are
reported only as set or not.

Pure: parameters in, values out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_ADDRESS = re.compile(r"reg\.(\d+)\.address")


@dataclass(frozen=True, slots=True)
class Registration:
    """One line as the phone would register it."""

    line: int
    address: str
    user: str
    label: str
    servers: tuple[str, ...]
    password_set: bool


def _servers(params: Mapping[str, str], prefix: str) -> tuple[str, ...]:
    """``<prefix>.server.M.address[:port]`` for M = 1, 2, ... while set."""
    found = []
    index = 1
    while address := params.get(f"{prefix}.server.{index}.address", "").strip():
        port = params.get(f"{prefix}.server.{index}.port", "").strip()
        found.append(f"{address}:{port}" if port and port != "0" else address)
        index += 1
    return tuple(found)


def registrations(params: Mapping[str, str]) -> tuple[Registration, ...]:
    """The lines ``params`` register, by line number."""
    lines = []
    for name, value in params.items():
        match = _ADDRESS.fullmatch(name)
        if match is None or not value.strip():
            continue
        prefix = f"reg.{match.group(1)}"
        lines.append(
            Registration(
                line=int(match.group(1)),
                address=value.strip(),
                user=params.get(f"{prefix}.auth.userId", "").strip() or value.strip(),
                label=params.get(f"{prefix}.label", ""),
                servers=_servers(params, prefix) or _servers(params, "voIpProt"),
                password_set=bool(params.get(f"{prefix}.auth.password", "")),
            )
        )
    return tuple(sorted(lines, key=lambda registration: registration.line))
