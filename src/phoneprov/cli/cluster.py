"""``phoneprov cluster``: the nodes serving the site's database (``cluster status``)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from phoneprov.cli.common import (
    OutputFormat,
    SiteOption,
    console,
    handle_errors,
    print_json,
    site_path,
)
from phoneprov.config import load_settings
from phoneprov.provisioning.cluster import NodeStatus, cluster_status

app = typer.Typer(help="Nodes sharing the site database.", no_args_is_help=True)


def _when(moment: float | None) -> str:
    if moment is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(moment))


def _json(node: NodeStatus) -> dict[str, object]:
    row = node.row
    return {
        "node_id": row.node_id,
        "name": row.name,
        "state": node.state.value,
        "host": row.host,
        "pid": row.pid,
        "version": row.version,
        "site_dir": row.site_dir,
        "listeners": dict(row.listeners),
        "started": row.started,
        "last_seen": row.last_seen,
        "seconds_since_heartbeat": round(node.age, 1),
        "stopped": row.stopped,
        "last_error": row.last_error,
        "last_error_at": row.last_error_at,
    }


@app.command("status")
@handle_errors
def status(
    site: Path | None = SiteOption,
    fmt: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json."),
) -> None:
    """Nodes seen in the database: state (up, silent, stopped), version, listeners, last error.

    A node is silent when it missed three heartbeats: killed, hung, or cut off
    from the database. Stopped nodes are listed for a week.
    """
    nodes = cluster_status(load_settings(site_path(site)))
    if fmt is OutputFormat.json:
        print_json({"nodes": [_json(node) for node in nodes]})
        return
    if not nodes:
        console.print("no node has served this database yet (`phoneprov serve` records one)")
        return
    table = Table("node", "state", "version", "host", "listeners", "last seen", "last error")
    for node in nodes:
        row = node.row
        table.add_row(
            escape(row.name),
            node.state.value,
            escape(row.version),
            escape(f"{row.host} pid {row.pid}"),
            escape(" ".join(url for _, url in row.listeners)),
            f"{node.age:.0f} s ago",
            escape(f"{_when(row.last_error_at)} {row.last_error}".strip()),
        )
    console.print(table)
