"""Wrap a phoneprov snippet into a minimal, runnable configuration for each real DHCP server.

The snippet is pasted unchanged; only what a server needs to run in the test
namespace (interface, subnet, pool, lease file, foreground logging) is added.
Each launcher also names the offline validator command for the bare snippet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .netns import POOL, SERVER_IP, SUBNET, Pair


@dataclass(frozen=True)
class Launch:
    """How to check the bare snippet, and how to run the wrapped configuration."""

    validate: list[str]
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def dnsmasq(snippet: str, work: Path, pair: Pair) -> Launch:
    bare = work / "snippet.conf"
    bare.write_text(snippet)
    conf = work / "dnsmasq.conf"
    conf.write_text(
        "\n".join(
            [
                "port=0",
                f"interface={pair.server_if}",
                "bind-interfaces",
                "dhcp-authoritative",
                f"dhcp-range={POOL[0]},{POOL[1]},255.255.255.0,10m",
                f"dhcp-leasefile={work / 'dnsmasq.leases'}",
                f"pid-file={work / 'dnsmasq.pid'}",
                "user=root",
                "no-ping",
                "log-dhcp",
                snippet,
            ]
        )
    )
    return Launch(
        validate=["dnsmasq", "--test", f"--conf-file={bare}"],
        argv=["dnsmasq", "--keep-in-foreground", "--log-facility=-", f"--conf-file={conf}"],
    )


def isc_dhcpd(snippet: str, work: Path, pair: Pair) -> Launch:
    bare = work / "snippet.conf"
    bare.write_text(snippet)
    conf = work / "dhcpd.conf"
    conf.write_text(
        "\n".join(
            [
                "ddns-update-style none;",
                "authoritative;",
                "default-lease-time 600;",
                "ping-check false;",
                snippet,
                f"subnet {SUBNET} netmask 255.255.255.0 {{ range {POOL[0]} {POOL[1]}; }}",
                "",
            ]
        )
    )
    leases = work / "dhcpd.leases"
    leases.touch()
    return Launch(
        validate=["dhcpd", "-t", "-q", "-4", "-cf", str(bare)],
        argv=[
            "dhcpd", "-f", "-d", "-4", "-cf", str(conf), "-lf", str(leases),
            "-pf", str(work / "dhcpd.pid"), pair.server_if,
        ],
    )  # fmt: skip


def kea(snippet: str, work: Path, pair: Pair) -> Launch:
    bare = work / "snippet.json"
    bare.write_text(snippet)
    # Kea accepts // comments; json does not, so drop them before merging.
    config = json.loads("\n".join(ln for ln in snippet.splitlines() if not ln.startswith("//")))
    dhcp4 = config["Dhcp4"]
    dhcp4.update(
        {
            "interfaces-config": {"interfaces": [pair.server_if]},
            "lease-database": {"type": "memfile", "persist": False},
            "valid-lifetime": 600,
            "subnet4": [
                {
                    "id": 1,
                    "subnet": f"{SUBNET}/24",
                    "interface": pair.server_if,
                    "pools": [{"pool": f"{POOL[0]} - {POOL[1]}"}],
                    "option-data": [{"name": "routers", "data": SERVER_IP}],
                }
            ],
            "loggers": [
                {"name": "kea-dhcp4", "output_options": [{"output": "stdout"}], "severity": "INFO"}
            ],
        }
    )
    conf = work / "kea-dhcp4.json"
    conf.write_text(json.dumps(config, indent=2))
    env = {"KEA_PIDFILE_DIR": str(work), "KEA_LOCKFILE_DIR": str(work)}
    return Launch(
        validate=["kea-dhcp4", "-t", str(bare)], argv=["kea-dhcp4", "-c", str(conf)], env=env
    )


LAUNCHERS = {"dnsmasq": dnsmasq, "isc-dhcpd": isc_dhcpd, "kea": kea}
