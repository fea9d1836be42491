"""Nodes of one site sharing a database: who is up, its version, listeners, last error.

Each ``phoneprov serve`` gets an identity when it starts (a random id, and
``--node-name`` or ``[cluster] node_name`` or the host name): nodes are often
made by copying a site folder, so nothing in the folder may name the node.
``NodeHeartbeat`` records the node and refreshes its row every ``[cluster]
heartbeat`` seconds from a thread, with the last error the node logged;
``cluster_status`` reads every node back for ``phoneprov cluster status``.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from phoneprov import __version__
from phoneprov.config import Settings
from phoneprov.provisioning.audit import escape
from phoneprov.records import NodeRow
from phoneprov.store import Store, open_store

log = logging.getLogger("phoneprov.cluster")
SILENT_AFTER = 3  # heartbeats missed before a node counts as silent


class NodeState(enum.StrEnum):
    UP = "up"
    SILENT = "silent"  # no heartbeat for SILENT_AFTER intervals: killed, hung or cut off
    STOPPED = "stopped"  # stopped cleanly


@dataclass(frozen=True, slots=True)
class NodeStatus:
    row: NodeRow
    state: NodeState
    age: float  # seconds since its last heartbeat


class _LastError(logging.Handler):
    """Keeps the last ERROR (or worse) this process logged, escaped, for the heartbeat."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.text = ""
        self.when: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.text = escape(record.getMessage())[:1000]
        except Exception:  # a log handler never raises
            self.text = escape(str(record.msg))[:1000]
        self.when = record.created


class NodeHeartbeat:
    """This node's row in the database, refreshed on a thread until ``stop``."""

    def __init__(self, settings: Settings, store: Store, name: str = "") -> None:
        self.settings = settings
        self.store = store
        now = time.time()
        host = socket.gethostname()
        self.row = NodeRow(
            node_id=str(uuid.uuid4()),
            name=name or settings.cluster.node_name or host,
            host=host,
            pid=os.getpid(),
            version=__version__,
            site_dir=str(settings.site_dir),
            listeners=(),
            started=now,
            last_seen=now,
            stopped=None,
            last_error="",
            last_error_at=None,
        )
        self._errors = _LastError()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, listeners: dict[str, str]) -> NodeHeartbeat:
        """Record the node with its listeners (name -> URL) and start beating."""
        self.row = dataclasses.replace(self.row, listeners=tuple(sorted(listeners.items())))
        self.store.nodes.join(self.row)
        logging.getLogger("phoneprov").addHandler(self._errors)
        self._thread = threading.Thread(target=self._run, name="node-heartbeat", daemon=True)
        self._thread.start()
        log.info("node %s (%s) joined the cluster", escape(self.row.name), self.row.node_id)
        return self

    def beat(self, *, stopped: float | None = None) -> None:
        self.row = dataclasses.replace(
            self.row,
            last_seen=time.time(),
            stopped=stopped,
            last_error=self._errors.text,
            last_error_at=self._errors.when,
        )
        self.store.nodes.beat(self.row)

    def _run(self) -> None:
        while not self._stop.wait(self.settings.cluster.heartbeat):
            try:
                self.beat()
            except Exception as error:  # the next beat tries again
                log.warning("heartbeat not recorded: %s", error.__class__.__name__)

    def stop(self) -> None:
        """Stop beating and mark the node stopped."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        logging.getLogger("phoneprov").removeHandler(self._errors)
        try:
            self.beat(stopped=time.time())
        except Exception as error:  # stopping must not fail on a lost database
            log.warning("node stop not recorded: %s", error.__class__.__name__)


def node_state(row: NodeRow, now: float, heartbeat: float) -> NodeState:
    if row.stopped is not None:
        return NodeState.STOPPED
    if now - row.last_seen > SILENT_AFTER * heartbeat:
        return NodeState.SILENT
    return NodeState.UP


def cluster_status(settings: Settings, now: float | None = None) -> list[NodeStatus]:
    """Every node recorded in the site database, the most recently seen first.

    Raises StoreError when the database cannot be opened or its schema is not current.
    """
    now = time.time() if now is None else now
    store = open_store(settings)
    try:
        rows = store.nodes.nodes()
    finally:
        store.close()
    return [
        NodeStatus(row, node_state(row, now, settings.cluster.heartbeat), now - row.last_seen)
        for row in rows
    ]
