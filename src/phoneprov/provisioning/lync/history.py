"""The update requests a Lync/SfB device sent, newest first (``firmware ucupdate-requests``)."""

from __future__ import annotations

from contextlib import closing

from phoneprov.config import Settings
from phoneprov.model import MacAddress
from phoneprov.records import RequestRow
from phoneprov.store import open_store


def recent_requests(settings: Settings, mac: MacAddress, limit: int = 10) -> list[RequestRow]:
    """The latest ``limit`` requests of ``mac``: what it reported and what it was offered."""
    with closing(open_store(settings)) as store:
        return store.lync.recent(mac, limit)
