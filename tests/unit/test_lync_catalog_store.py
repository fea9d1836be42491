"""The Lync/SfB device update catalog in the database (issue 17): two store handles on one
SQLite file stand for two nodes; adoption of an older site's ``ucupdate/catalog.json``;
the listener's cache, which reads the revision at most every ``catalog_refresh``."""

from __future__ import annotations

import json
import logging
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phoneprov.config import Settings
from phoneprov.config_cluster import ClusterSettings
from phoneprov.errors import InputError, StoreError
from phoneprov.protocols.lync import PackageKey
from phoneprov.provisioning.lync import service
from phoneprov.provisioning.lync.catalog import ATTEMPTS, Catalog, change_catalog
from phoneprov.provisioning.lync.packages import add_package, assign_version, site_catalog
from phoneprov.provisioning.lync.service import LyncUpdates
from phoneprov.store import Store, open_database

KEY = PackageKey("UCPhone", "Polycom", "CX700", "A", "ENU")
OTHER = PackageKey("UCPhone", "Polycom", "CX600", "A", "ENU")


@pytest.fixture
def site(tmp_path: Path) -> Settings:
    return Settings(site_dir=tmp_path / "site")


@pytest.fixture
def handles(site: Settings) -> Iterator[tuple[Store, Store]]:
    """Two stores on the site's one database file, as two nodes hold them."""
    site.site_dir.mkdir(parents=True, exist_ok=True)
    first, second = open_database(site.database_url), open_database(site.database_url)
    yield first, second
    first.close()
    second.close()


def add(site: Settings, version: str, *, key: PackageKey = KEY, group: str | None = "") -> None:
    image = site.site_dir.parent / "in" / f"{key.model}-{version}" / "CPE.nbt"
    image.parent.mkdir(parents=True, exist_ok=True)
    image.write_bytes(f"{key.model} {version}".encode() * 100)
    add_package(site, [image], key, version, group=group)


def test_ok_package_added_through_one_handle_is_seen_by_the_other(
    site: Settings, handles: tuple[Store, Store]
) -> None:
    node_a, node_b = handles
    assert Catalog.load(node_b.lync_catalog, site.site_dir).packages == ()
    assert node_b.lync_catalog.revision() == 0
    add(site, "1.0.522.101")
    seen = Catalog.load(node_b.lync_catalog, site.site_dir)
    assert [p.version for p in seen.packages] == ["1.0.522.101"]
    assert seen.assigned_version(KEY, "") == "1.0.522.101"
    assert seen.revision == node_a.lync_catalog.revision() == 1
    # The file is where every node looks for it: <site>/ucupdate/objects/<sha256>.
    assert seen.object_path(seen.packages[0].primary.sha256).is_file()
    assert not (site.site_dir / "ucupdate" / "catalog.json").exists()


def test_fail_write_over_a_revision_another_node_moved_writes_nothing(
    handles: tuple[Store, Store],
) -> None:
    node_a, node_b = handles
    assert node_a.lync_catalog.write('{"packages": []}', 0) == 1
    assert node_b.lync_catalog.write('{"lost": true}', 0) is None  # both saw no catalog
    assert node_b.lync_catalog.write('{"packages": [], "assignments": []}', 1) == 2
    assert node_a.lync_catalog.write('{"lost": true}', 1) is None  # node A read revision 1
    assert node_a.lync_catalog.read() == ('{"packages": [], "assignments": []}', 2)


def test_ok_interleaved_changes_on_two_nodes_keep_both(
    site: Settings, handles: tuple[Store, Store]
) -> None:
    """Both nodes read revision N and assign; the second write is refused, read again and
    redone, so the first node's assignment is still there."""
    add(site, "1.0.522.73")
    add(site, "1.0.522.101", group=None)
    node_a, node_b = handles
    read_by_b = Catalog.load(node_b.lync_catalog, site.site_dir)
    change_catalog(
        node_a.lync_catalog, site.site_dir, lambda c: c.with_assignment(KEY, "1.0.522.101", "a")
    )
    assert read_by_b.with_assignment(KEY, "1.0.522.101", "b").save(node_b.lync_catalog) is None
    saved = change_catalog(
        node_b.lync_catalog, site.site_dir, lambda c: c.with_assignment(KEY, "1.0.522.101", "b")
    )
    assert saved.assigned_version(KEY, "a") == saved.assigned_version(KEY, "b") == "1.0.522.101"
    assert saved.assigned_version(KEY, "") == "1.0.522.73"
    assert saved.revision == read_by_b.revision + 2


def test_ok_concurrent_assignments_on_two_nodes_lose_no_update(
    site: Settings, handles: tuple[Store, Store]
) -> None:
    add(site, "1.0.522.73")
    add(site, "1.0.522.101", group=None)
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def assign(store: Store, worker: int) -> None:
        start.wait()
        try:
            for n in range(5):
                group = f"g{worker}-{n}"
                change_catalog(
                    store.lync_catalog,
                    site.site_dir,
                    lambda c, g=group: c.with_assignment(KEY, "1.0.522.101", g),
                )
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    workers = [
        threading.Thread(target=assign, args=(handles[n % 2], n)) for n in range(len(handles) * 2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert failures == []
    final = site_catalog(site)
    groups = {a.group for a in final.assignments}
    assert groups == {""} | {f"g{w}-{n}" for w in range(4) for n in range(5)}
    assert final.revision == 2 + 20  # two adds, then one write per assignment


def test_ok_assign_version_through_settings_matches_and_returns_the_key(site: Settings) -> None:
    add(site, "1.0.522.73")
    add(site, "1.0.522.101", group=None)
    add(site, "2.0", key=OTHER)
    assert assign_version(site, "1.0.522.101", "pilot", model="cx700") == KEY
    catalog = site_catalog(site)
    assert catalog.assigned_version(KEY, "pilot") == "1.0.522.101"
    assert catalog.assigned_version(OTHER, "") == "2.0"
    with pytest.raises(InputError, match="no version '9'"):
        assign_version(site, "9", "", model="CX700")
    assert site_catalog(site).revision == catalog.revision  # a refused change writes nothing


def test_fail_change_gives_up_when_others_keep_writing(tmp_path: Path) -> None:
    class Busy:
        """A catalog another node writes between every read and write of ours."""

        def __init__(self) -> None:
            self.reads = 0

        def read(self) -> tuple[str, int] | None:
            self.reads += 1
            return '{"packages": [], "assignments": []}', self.reads

        def revision(self) -> int:
            return self.reads

        def write(self, document: str, revision: int) -> int | None:
            return None

    busy = Busy()
    with pytest.raises(StoreError, match=f"changed {ATTEMPTS} times") as caught:
        change_catalog(busy, tmp_path, lambda c: c)
    assert "run the command again" in caught.value.hint
    assert busy.reads == ATTEMPTS


# Adoption of the file an older phoneprov kept on each node.


def old_catalog(site: Settings) -> bytes:
    """A catalog.json as phoneprov 0.1 wrote it: two packages, two assignments."""

    def package(version: str, sha: str) -> dict[str, Any]:
        return {
            "type": "UCPhone", "vendor": "Polycom", "model": "CX700", "revision": "A",
            "locale": "ENU", "version": version, "module": "CPE", "added": 1700000000.5,
            "files": [
                {"name": "CPE.nbt", "sha256": sha, "size": 65536},
                {"name": "CPE.nbt.sig", "sha256": "f" * 64, "size": 256},
            ],
        }  # fmt: skip

    def assignment(group: str, version: str) -> dict[str, str]:
        return {
            "type": "UCPhone", "vendor": "Polycom", "model": "CX700", "revision": "A",
            "locale": "ENU", "group": group, "version": version,
        }  # fmt: skip

    data = {
        "packages": [package("1.0.522.73", "a" * 64), package("1.0.522.101", "b" * 64)],
        "assignments": [assignment("", "1.0.522.73"), assignment("pilot", "1.0.522.101")],
    }
    text = (json.dumps(data, indent=2) + "\n").encode()
    path = site.site_dir / "ucupdate" / "catalog.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text)
    return text


def test_ok_existing_catalog_json_is_adopted_once_and_renamed(
    site: Settings, handles: tuple[Store, Store], caplog: pytest.LogCaptureFixture
) -> None:
    text = old_catalog(site)
    legacy = site.site_dir / "ucupdate" / "catalog.json"
    with caplog.at_level(logging.INFO, logger="phoneprov.lync"):
        catalog = Catalog.load(handles[0].lync_catalog, site.site_dir)
    assert "moved 2 package(s) and 2 assignment(s)" in caplog.text
    assert not legacy.exists()
    assert legacy.with_name("catalog.json.adopted").read_bytes() == text  # kept as it was
    # Nothing lost: every package, file and assignment, now read from the database.
    assert catalog.revision == 1
    assert catalog.document().encode() == text
    assert catalog.assigned_version(KEY, "pilot") == "1.0.522.101"
    assert catalog.assigned_version(KEY, "sales") == "1.0.522.73"
    package = catalog.find(KEY, "1.0.522.101", "cpe")
    assert package is not None and package.added == 1700000000.5
    assert [f.name for f in package.files] == ["CPE.nbt", "CPE.nbt.sig"]
    assert package.primary.sha256 == "b" * 64
    other = Catalog.load(handles[1].lync_catalog, site.site_dir)
    assert other == catalog and other.revision == 1  # the other node reads, adopts nothing


def test_ok_a_second_nodes_copy_does_not_replace_the_adopted_catalog(
    site: Settings, handles: tuple[Store, Store], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old_catalog(site)
    adopted = Catalog.load(handles[0].lync_catalog, site.site_dir)
    node_b = tmp_path / "node-b"
    copy = node_b / "ucupdate" / "catalog.json"
    copy.parent.mkdir(parents=True)
    copy.write_text('{"packages": [], "assignments": []}\n')  # a stale copy on node B
    with caplog.at_level(logging.WARNING, logger="phoneprov.lync"):
        seen = Catalog.load(handles[1].lync_catalog, node_b)
    assert "has a catalog already" in caplog.text and str(copy) in caplog.text
    assert seen.packages == adopted.packages and seen.revision == adopted.revision
    assert not copy.exists() and copy.with_name("catalog.json.adopted").is_file()


def test_ok_site_with_neither_starts_empty(site: Settings) -> None:
    catalog = site_catalog(site)
    assert catalog.packages == () and catalog.assignments == () and catalog.revision == 0
    assert not (site.site_dir / "ucupdate").exists()


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"packages": [{"type": "UCPhone"}]}', b"\xff\xfe", b"[1, 2]"],
    ids=["fail/syntax", "fail/missing-field", "fail/not-utf8", "fail/not-an-object"],
)
def test_fail_damaged_catalog_json_is_named_and_left_in_place(
    site: Settings, content: bytes
) -> None:
    legacy = site.site_dir / "ucupdate" / "catalog.json"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(content)
    with pytest.raises(InputError, match=r"catalog\.json is damaged") as caught:
        site_catalog(site)
    assert "add-ucupdate" in caught.value.hint
    assert legacy.read_bytes() == content
    assert not legacy.with_name("catalog.json.adopted").exists()


def test_fail_damaged_document_in_the_database_names_it(
    site: Settings, handles: tuple[Store, Store]
) -> None:
    handles[0].lync_catalog.write("{not json", 0)
    with pytest.raises(InputError, match="catalog in the database is damaged") as caught:
        site_catalog(site)
    assert "backup" in caught.value.hint


# The listener's cache.


class CountingRepo:
    """The real catalog repo, counting the queries the listener makes."""

    def __init__(self, store: Store) -> None:
        self.inner = store.lync_catalog
        self.revisions = 0
        self.reads = 0
        self.down = False

    def read(self) -> tuple[str, int] | None:
        self.reads += 1
        return self.inner.read()

    def revision(self) -> int:
        self.revisions += 1
        if self.down:
            raise ConnectionError("database unreachable")
        return self.inner.revision()

    def write(self, document: str, revision: int) -> int | None:
        return self.inner.write(document, revision)


def test_ok_listener_reads_the_revision_at_most_every_catalog_refresh(
    site: Settings,
    handles: tuple[Store, Store],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(service, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    settings = Settings(site_dir=site.site_dir, cluster=ClusterSettings(catalog_refresh=5.0))
    repo = CountingRepo(handles[0])
    store: Any = types.SimpleNamespace(lync_catalog=repo)
    updates = LyncUpdates(settings, store, None, None, None)  # type: ignore[arg-type]
    add(site, "1.0.522.73")
    assert updates.catalog().assigned_version(KEY, "") == "1.0.522.73"
    assert (repo.revisions, repo.reads) == (0, 1)
    add(site, "1.0.522.101")  # through another node
    clock[0] += 4.9
    for _ in range(100):  # phone requests within the interval: no query at all
        assert updates.catalog().assigned_version(KEY, "") == "1.0.522.73"
    assert (repo.revisions, repo.reads) == (0, 1)
    clock[0] += 0.1
    assert updates.catalog().assigned_version(KEY, "") == "1.0.522.101"  # the revision moved
    assert (repo.revisions, repo.reads) == (1, 2)
    clock[0] += 5.0
    same = updates.catalog()
    assert (repo.revisions, repo.reads) == (2, 2)  # unchanged: not read again
    repo.down = True
    clock[0] += 5.0
    with caplog.at_level(logging.WARNING, logger="phoneprov.lync"):
        assert updates.catalog() is same  # the last catalog stays in force
    assert "cannot refresh the device update catalog" in caplog.text
