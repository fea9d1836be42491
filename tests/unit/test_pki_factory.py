"""Factory-certificate lookup by label part number and revision."""

from __future__ import annotations

import pytest

from phoneprov.errors import InputError
from phoneprov.pki.factory_certs import factory_revision, load_table, revision_key


@pytest.mark.parametrize(
    ("part", "rev", "expected"),
    [
        ("2201-12450-001", "J", True),
        ("2201-12450-001", "K", True),
        ("2201-12450-001", "H", False),
        ("2201 12450 001", "j", True),
        ("220112450001", "AA", True),
        ("2201-36172-302", "2", True),
        ("2201-36172-312", "2", False),
        ("2201-36172-312", "10", True),
        ("2302-12651-025", "E", False),
        ("2302-12651-025", "G", True),
    ],
    ids=[
        "ok/first-revision",
        "ok/later",
        "ok/earlier-has-none",
        "ok/spaces-lowercase",
        "ok/bare-digits-double-letter",
        "ok/numeric",
        "ok/numeric-earlier",
        "ok/numeric-compared-as-numbers",
        "ok/listed-twice-uses-later",
        "ok/listed-twice-at-later",
    ],
)
def test_lookup(part: str, rev: str, expected: bool) -> None:
    assert factory_revision(part, rev).has_factory_cert is expected


def test_json_shape() -> None:
    assert factory_revision("2200-44500-025", "b").to_json() == {
        "part": "2200-44500-025",
        "platform": "VVX 500",
        "label": "box",
        "revision": "B",
        "first_revision": "B",
        "date": "December 2011",
        "has_factory_cert": True,
        "note": "",
    }


def test_fail_unknown_part_names_closest() -> None:
    with pytest.raises(InputError) as caught:
        factory_revision("2201-12450-009", "A")
    assert caught.value.exit_code == 2
    assert "2201-12450-001" in caught.value.hint


def test_fail_revision_kind_mismatch() -> None:
    with pytest.raises(InputError, match="uses letter revisions"):
        factory_revision("2201-12450-001", "3")
    with pytest.raises(InputError, match="neither letters nor a number"):
        revision_key("B-2")


def test_table_is_complete_and_parsed() -> None:
    rows = load_table()
    assert len(rows) == 140
    assert {r.label for r in rows} == {"console", "box"}
    for row in rows:
        revision_key(row.first_revision)
