"""Connections waiting for their next request, held without a thread.

A phone that has finished its handshake but not yet sent its request, or a
kept-alive connection between requests, would otherwise hold a worker thread
(its stack and Python frames: about 35 KiB each, 35 MB for 1,000 idle
phones). Parked connections wait in one epoll set; when one becomes readable
(its request arrived, it closed, or the watchdog shut it at its deadline) it
goes back to the worker pool.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Callable
from typing import Any


class Parking:
    """One thread waiting on the parked sockets; ``resume(item)`` for each readable one."""

    def __init__(self, resume: Callable[[Any], None]) -> None:
        self.resume = resume
        self.selector = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.wake, self._waker = socket.socketpair()
        self.selector.register(self.wake, selectors.EVENT_READ, None)
        self.thread = threading.Thread(target=self._run, name="https-parking", daemon=True)
        self.thread.start()

    def park(self, sock: socket.socket, item: object) -> None:
        with self.lock:
            self.selector.register(sock, selectors.EVENT_READ, item)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._waker.send(b"x")
        self.thread.join(timeout=5)
        self.wake.close()
        self._waker.close()

    def _run(self) -> None:
        while True:
            ready = self.selector.select()
            for key, _ in ready:
                if key.data is None:
                    return
                with self.lock:
                    self.selector.unregister(key.fileobj)
                self.resume(key.data)
