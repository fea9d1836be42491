"""A site's CA index.json is adopted into the database once, however many processes find it.

`serve --workers 2` starts its workers together and each loads the CA: before the fix the
slower worker read or renamed an index.json the other had just renamed, died with
FileNotFoundError, and the parent waited 60 s for it (tests/integration/test_boot_server.py
two_workers failed that way in the full suite).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneprov.config import Settings
from phoneprov.model import MacAddress
from phoneprov.pki.authority import CertificateAuthority
from phoneprov.pki.index import INDEX_FILE, IndexState, read_index
from phoneprov.provisioning import authority
from phoneprov.store import Store, open_database

MAC = MacAddress.parse("0004f2000001")


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A CA an older phoneprov made: its index.json lists one device certificate."""
    folder = tmp_path / "site" / "pki"
    ca = CertificateAuthority.create(folder, common_name="Adopted Root")
    ca.issue_device(MAC)
    assert (folder / INDEX_FILE).is_file()
    return folder


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """Two handles on one database, as two workers hold them."""
    url = Settings(site_dir=tmp_path / "site").database_url
    first, second = open_database(url), open_database(url)
    yield first, second
    first.close()
    second.close()


def test_ok_index_adopted_once_and_renamed(pki: Path, stores: tuple[Store, Store]) -> None:
    first, second = stores
    index = authority.root_index(first, pki)
    assert index is not None
    assert [r.mac for r in index.records()] == [MAC.value]
    assert not (pki / INDEX_FILE).exists()
    assert (pki / (INDEX_FILE + authority.ADOPTED_SUFFIX)).is_file()
    again = authority.root_index(second, pki)
    assert again is not None and len(again.records()) == 1


def test_ok_worker_that_finds_the_file_gone_midway_uses_the_database(
    pki: Path, stores: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving of two workers: B sees index.json, A adopts and renames it, B reads."""
    first, second = stores

    def read_after_the_other_worker(folder: Path) -> IndexState:
        monkeypatch.setattr(authority, "read_index", read_index)
        assert authority.root_index(first, folder) is not None  # worker A, start to finish
        return read_index(folder)  # worker B's read, after the rename

    monkeypatch.setattr(authority, "read_index", read_after_the_other_worker)
    index = authority.root_index(second, pki)
    assert index is not None
    assert [r.mac for r in index.records()] == [MAC.value]


def test_ok_worker_that_loses_the_rename_keeps_going(
    pki: Path, stores: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both workers read the file and adopt; the one that renames second finds it gone."""
    first, second = stores
    legacy = pki / INDEX_FILE
    text = legacy.read_bytes()

    def read_then_lose_the_rename(folder: Path) -> IndexState:
        state = read_index(folder)
        monkeypatch.setattr(authority, "read_index", read_index)
        assert authority.root_index(first, folder) is not None  # A adopts and renames
        return state

    monkeypatch.setattr(authority, "read_index", read_then_lose_the_rename)
    index = authority.root_index(second, pki)
    assert index is not None
    assert len(index.records()) == 1  # one copy of the record, not two
    assert (pki / (INDEX_FILE + authority.ADOPTED_SUFFIX)).read_bytes() == text
