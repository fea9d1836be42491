"""Nodes serving one database: each ``phoneprov serve`` start, and its heartbeat.

A node's identity is made when it starts (a random id and a name), not kept in
the site folder: nodes are often made by copying one. ``cluster status`` reads
the rows back.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from phoneprov.records import NodeRow
from phoneprov.store.tables import cluster_nodes

KEEP_STOPPED = 7 * 86400  # a stopped node's row is removed after a week


class NodeBook:
    """The ``cluster_nodes`` table."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def join(self, node: NodeRow) -> None:
        """Record a node that just started (its id is new)."""
        with self.engine.begin() as conn:
            conn.execute(
                cluster_nodes.delete().where(
                    cluster_nodes.c.stopped.is_not(None),
                    cluster_nodes.c.stopped < node.started - KEEP_STOPPED,
                )
            )
            conn.execute(cluster_nodes.insert().values(**_values(node)))

    def beat(self, node: NodeRow) -> None:
        """Refresh a node's row: last seen, listeners, last error, stopped."""
        values = _values(node)
        for key in ("node_id", "name", "host", "pid", "version", "site_dir", "started"):
            values.pop(key)
        with self.engine.begin() as conn:
            conn.execute(
                cluster_nodes.update()
                .where(cluster_nodes.c.node_id == node.node_id)
                .values(**values)
            )

    def nodes(self) -> list[NodeRow]:
        """Every node recorded, the most recently seen first."""
        query = sa.select(cluster_nodes).order_by(cluster_nodes.c.last_seen.desc())
        with self.engine.connect() as conn:
            return [
                NodeRow(
                    node_id=r.node_id,
                    name=r.name,
                    host=r.host,
                    pid=r.pid,
                    version=r.version,
                    site_dir=r.site_dir,
                    listeners=tuple(sorted(json.loads(r.listeners or "{}").items())),
                    started=r.started,
                    last_seen=r.last_seen,
                    stopped=r.stopped,
                    last_error=r.last_error,
                    last_error_at=r.last_error_at,
                )
                for r in conn.execute(query)
            ]


def _values(node: NodeRow) -> dict[str, object]:
    return {
        "node_id": node.node_id,
        "name": node.name,
        "host": node.host,
        "pid": node.pid,
        "version": node.version,
        "site_dir": node.site_dir,
        "listeners": json.dumps(dict(node.listeners), sort_keys=True),
        "started": node.started,
        "last_seen": node.last_seen,
        "stopped": node.stopped,
        "last_error": node.last_error,
        "last_error_at": node.last_error_at,
    }
