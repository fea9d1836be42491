"""Revoked certificates, kept in memory and refreshed from the site database.

The HTTPS listener asks ``RevocationWatch.get()`` on every request that shows
a client certificate: a set lookup, never a query. A thread polls the database
every ``[cluster] revocation_refresh`` seconds (default 5): one cheap query per
CA for its revocation count, and the revoked serials only when that count
moved. So a certificate revoked through any node (``phoneprov ca revoke``) is
refused by every node within that interval, and a slow or unreachable database
delays no handshake: the last known set stays in force, and the poller logs
the failure and tries again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from phoneprov.store.base import CaIndexRepo

log = logging.getLogger("phoneprov.ca")


class RevocationWatch:
    """The revoked serials of a site's CAs (modern and legacy), in memory."""

    def __init__(self, indexes: Sequence[CaIndexRepo], interval: float) -> None:
        self.indexes = list(indexes)
        self.interval = interval
        self._revisions: list[int | None] = [None] * len(self.indexes)
        self._serials: list[frozenset[int]] = [frozenset()] * len(self.indexes)
        self._all: frozenset[int] = frozenset()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def get(self) -> frozenset[int]:
        """The serials revoked as of the last refresh."""
        return self._all

    def refresh(self) -> bool:
        """Read what changed since the last refresh; False when the database failed."""
        try:
            for n, index in enumerate(self.indexes):
                revision = index.revision()
                if revision != self._revisions[n]:
                    self._serials[n] = index.revoked_serials()
                    self._revisions[n] = revision
        except Exception as error:  # a poller must outlive a database outage
            log.warning(
                "cannot refresh revoked certificates from the database (%s); "
                "the last known list stays in force",
                error.__class__.__name__,
            )
            return False
        self._all = frozenset().union(*self._serials)
        return True

    def start(self) -> RevocationWatch:
        """Read the revocations now, then keep refreshing them on a thread."""
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="revocation-watch", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
