"""First come, first served: the order in which connection threads may run Python.

The HTTPS listener gives each connection a thread, so a storm of 1,000 phones
is 1,000 threads wanting the GIL, which no one hands out in order: under
saturation the unluckiest requests waited past the phones' 30 s timeout while
later ones were served (issue 16's storm: 139 timeouts). A thread holds one of a
few permits while it works (the handshake's steps, parsing, the handler) and
gives it back whenever it would wait for the network, so a client that stalls
holds its thread but no permit; waiting threads get permits oldest first (by
when their connection was accepted, or when its next request arrived).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import threading
from collections.abc import Iterator

PERMITS_PER_CPU = 4  # the handshake's crypto and fsyncs run without the GIL


def default_permits() -> int:
    """Permits for the CPUs this process may run on."""
    return max(4, PERMITS_PER_CPU * len(os.sched_getaffinity(0)))


class FifoGate:
    """At most ``permits`` holders; waiters are admitted lowest ``since`` first."""

    def __init__(self, permits: int) -> None:
        self._lock = threading.Lock()
        self._free = permits
        self._waiting: list[tuple[float, int, threading.Lock]] = []
        self._order = itertools.count()

    def acquire(self, since: float) -> None:
        with self._lock:
            if self._free and not self._waiting:
                self._free -= 1
                return
            turn = threading.Lock()
            turn.acquire()
            heapq.heappush(self._waiting, (since, next(self._order), turn))
        turn.acquire()  # release() hands its permit over by unlocking it

    def release(self) -> None:
        with self._lock:
            if self._waiting:
                heapq.heappop(self._waiting)[2].release()
            else:
                self._free += 1

    @contextlib.contextmanager
    def released(self, since: float) -> Iterator[None]:
        """Give the permit back while waiting (for the network), then queue for it again."""
        self.release()
        try:
            yield
        finally:
            self.acquire(since)
