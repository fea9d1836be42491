"""Deadlines for the threaded HTTPS listener's connections, kept by one thread.

A connection's thread blocks in OpenSSL (the handshake) or in a read; bytes
arriving must not extend its deadline (a slowloris sends one byte at a time),
so a per-read timeout is not enough. Each connection registers its deadline
here; when it passes, the watchdog shuts the socket down, which ends the
blocked call with an error in the connection's thread. Cancelling and firing
take one lock, so a socket closed (and its descriptor reused) is never touched.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Callable


class Deadline:
    """One connection's current deadline; ``expired`` once the watchdog fired it."""

    __slots__ = ("done", "expired", "on_expiry", "sock", "when")

    def __init__(self, sock: socket.socket, when: float, on_expiry: Callable[[], None] | None):
        self.sock = sock
        self.when = when
        self.on_expiry = on_expiry
        self.done = False
        self.expired = False


class Watchdog:
    """Fires deadlines at their time (``time.monotonic``) from one daemon thread."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="https-deadlines", daemon=True)
        self._thread.start()

    def add(
        self, sock: socket.socket, seconds: float, on_expiry: Callable[[], None] | None = None
    ) -> Deadline:
        """Shut ``sock`` down ``seconds`` from now unless cancelled; then call ``on_expiry``."""
        deadline = Deadline(sock, time.monotonic() + seconds, on_expiry)
        with self._cond:
            first = not self._heap or deadline.when < self._heap[0][0]
            heapq.heappush(self._heap, (deadline.when, next(self._order), deadline))
            if first:
                self._cond.notify()
        return deadline

    def cancel(self, deadline: Deadline) -> bool:
        """Stop the deadline; False when it had already fired (the socket is shut down)."""
        with self._cond:
            deadline.done = True
            return not deadline.expired

    def retarget(self, deadline: Deadline, sock: socket.socket) -> None:
        """The connection's socket is now ``sock`` (the TLS socket wrapping the TCP one)."""
        with self._cond:
            deadline.sock = sock

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            fired: list[Deadline] = []
            with self._cond:
                while not self._stopped:
                    now = time.monotonic()
                    while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
                        _, _, deadline = heapq.heappop(self._heap)
                        if not deadline.done:
                            deadline.done = deadline.expired = True
                            shut(deadline.sock)
                            fired.append(deadline)
                    if fired:
                        break
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
                if self._stopped:
                    return
            for deadline in fired:
                if deadline.on_expiry is not None:
                    deadline.on_expiry()


def shut(sock: socket.socket) -> None:
    """Shut a (TLS) socket down at the TCP level, from any thread; never raises."""
    # The plain socket's shutdown: SSLSocket.shutdown would drop its SSL object
    # under the thread still using it.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
