"""Storage behind the ``Store`` protocol (``store/base.py``); ``open_store`` builds it.

Services are handed a ``Store``; nothing outside this package names the
SQLAlchemy implementation, so a second backend changes this factory only.
"""

from __future__ import annotations

from phoneprov.config import Settings
from phoneprov.store.base import Store
from phoneprov.store.recorder import Recorder
from phoneprov.store.secrets import site_box
from phoneprov.store.sql import SqlStore

__all__ = ["Recorder", "Store", "open_database", "open_store"]


def open_store(settings: Settings) -> Store:
    """The site's database, migrated, with the site's key for secrets at rest.

    Raises StoreError naming the database when it cannot be opened.
    """
    return SqlStore(settings.database_url, site_box(settings.pki_dir))


def open_database(url: str) -> Store:
    """A database by URL without the site key (SIP passwords then read as empty).

    For tools that look at a database without a site folder (benchmarks, a
    second node's checks); raises StoreError like ``open_store``.
    """
    return SqlStore(url)
