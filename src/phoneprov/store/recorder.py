"""Hot-path writes, off the event loop: device sightings and events in batches.

A phone's boot is 10 to 15 requests in a few seconds. ``Recorder`` merges
sightings per MAC in memory and writes them, with queued events and deferred
bookkeeping, from one background thread through the ``Store`` protocol.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

import sqlalchemy as sa

from phoneprov.records import Event, Sighting, merge_sightings
from phoneprov.store.base import Store

log = logging.getLogger("phoneprov.store")


class Watcher(Protocol):
    """Told of every sighting and event as it is queued (the Prometheus counters)."""

    def sighting(self, sighting: Sighting) -> None: ...
    def event(self, event: Event) -> None: ...


class Recorder:
    """Writes device sightings and events from a background thread.

    A phone's boot is 10 to 15 requests in a few seconds; sightings are merged
    per MAC in memory (a dict update under a lock, no thread wake-up) and
    written once per ``interval``. Events and deferred bookkeeping go through
    a queue, in order.
    """

    def __init__(self, store: Store, interval: float = 0.5) -> None:
        self.store = store
        self.interval = interval
        self._queue: queue.Queue[Event | Callable[[], None] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._pending: dict[str, Sighting] = {}
        self._counts: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self.watchers: list[Watcher] = []

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="phoneprov-recorder", daemon=True)
        self._thread.start()

    def sighting(self, sighting: Sighting) -> None:
        for watcher in self.watchers:
            watcher.sighting(sighting)
        key = sighting.mac.value
        with self._lock:
            self._pending[key] = merge_sightings(self._pending.get(key), sighting)
            self._counts[key] = self._counts.get(key, 0) + 1

    def event(self, event: Event) -> None:
        for watcher in self.watchers:
            watcher.event(event)
        self._queue.put(event)

    def defer(self, work: Callable[[], None]) -> None:
        """Run bookkeeping that writes to the database on the recorder's thread."""
        self._queue.put(work)

    def stop(self) -> None:
        """Flush what is queued and stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        stopping = False
        while not stopping:
            items: list[Event | Callable[[], None]] = []
            try:
                item = self._queue.get(timeout=self.interval)
                while item is not None:
                    items.append(item)
                    if len(items) >= 500:
                        break
                    item = self._queue.get_nowait()
                stopping = item is None
            except queue.Empty:
                pass
            self._flush(items)

    def _flush(self, items: list[Event | Callable[[], None]]) -> None:
        for work in items:
            if not isinstance(work, Event):
                try:
                    work()
                except Exception:
                    log.exception("deferred bookkeeping failed")
        with self._lock:
            sightings, counts = list(self._pending.values()), self._counts
            self._pending, self._counts = {}, {}
        events = [item for item in items if isinstance(item, Event)]
        if not sightings and not events:
            return
        last: Exception | None = None
        for attempt in range(3):
            try:
                self.store.record(sightings, events, counts)
                return
            except sa.exc.OperationalError as error:
                last = error
                time.sleep(0.2 * (attempt + 1))
        # Device records are bookkeeping: phones keep being served when the database
        # is down, and the administrator learns what was lost.
        log.error(
            "dropped %d device sightings and %d events: database unavailable (%s)",
            len(sightings),
            len(events),
            last.__class__.__name__,
        )
