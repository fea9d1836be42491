"""Inventory values, --line specs and CSV import/export (SQLite store in a temp folder)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneprov.errors import InputError
from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.provisioning.devicecsv import MASK, plan_import, write_csv
from phoneprov.provisioning.inventory import Inventory, parse_line_spec
from phoneprov.records import Sighting
from phoneprov.store import open_database


@pytest.fixture
def inventory(tmp_path: Path) -> Iterator[Inventory]:
    store = open_database(f"sqlite:///{tmp_path / 'inv.db'}")
    yield Inventory(store)
    store.close()


def _plan(inventory: Inventory, text: str):  # type: ignore[no-untyped-def]
    return plan_import(io.StringIO(text), inventory.rows.entries_by_mac)


@pytest.mark.parametrize(
    "text",
    ["00:04:F2:AB:CD:EF", "0004f2abcdef", "0004.f2ab.cdef", "00-04-f2-ab-cd-ef", " 0004F2ABCDEF "],
    ids=["ok/colons-upper", "ok/bare", "ok/cisco-dots", "ok/dashes", "ok/spaces-upper"],
)
def test_mac_forms_are_stored_canonical(inventory: Inventory, text: str) -> None:
    entry = inventory.add(MacAddress.parse(text), model="VVX410")
    assert entry.mac.value == "0004f2abcdef"
    assert [e.mac.value for _, e in inventory.list()] == ["0004f2abcdef"]


@pytest.mark.parametrize(
    "text",
    ["0004f2abcde", "00:04:f2:ab:cd:eg", "00:04-f2:ab:cd:ef", "0004.f2abcdef"],
    ids=["fail/short", "fail/not-hex", "fail/mixed-separators", "fail/bad-dots"],
)
def test_fail_mac_forms(text: str) -> None:
    with pytest.raises(InputError, match="not a MAC address"):
        MacAddress.parse(text)


def test_ok_line_spec_defaults_user_to_ext() -> None:
    line = parse_line_spec("2:ext=1002,password=p w,server=pbx.example.com:5061", "VVX410")
    assert (line.index, line.ext, line.user, line.password, line.server) == (
        2,
        "1002",
        "1002",
        "p w",
        "pbx.example.com:5061",
    )


@pytest.mark.parametrize(
    "spec,model,message",
    [
        ("2:ext=1002", "Trio8800", "Trio8800 has 1 line"),
        ("ext=1002", "VVX410", "does not start with a line number"),
        ("1:ext=1002,colour=red", "VVX410", "is not one of"),
        ("1:user=1002", "VVX410", "has no ext"),
        ("1:ext=10 02", "VVX410", "ext '10 02' is not valid"),
        ("1:ext=1,server=pbx example", "VVX410", "server 'pbx example' is not valid"),
    ],
    ids=[
        "fail/over-line-count",
        "fail/no-index",
        "fail/unknown-field",
        "fail/no-ext",
        "fail/space-in-ext",
        "fail/bad-server",
    ],
)
def test_fail_line_spec(spec: str, model: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_line_spec(spec, model)


def test_fail_line_spec_error_masks_password() -> None:
    with pytest.raises(InputError) as caught:
        parse_line_spec("x:password=topsecret", "VVX410")
    assert "topsecret" not in str(caught.value)


GOOD = """mac,model,site,group,label,line1_ext,line1_user,line1_password,line1_server,line2_ext
00:04:f2:00:00:10,VVX410,hq,pilot,Front desk,1010,u1010,pw1,pbx.example.com,1011
0004.f200.0011,SPIP550,hq,,Meeting room,1011,,pw2,pbx.example.com,
0004f2000012,Trio 8800,branch,,Board,1012,,"pw,3",pbx.example.com,
"""


def test_ok_import_good_file(inventory: Inventory) -> None:
    plan = _plan(inventory, GOOD)
    assert plan.problems == []
    count = inventory.save(plan.entries)
    assert (count.created, count.updated) == (3, 0)
    _, first = inventory.get(MacAddress("0004f2000010"))
    assert (first.model, first.site, first.group, first.label) == (
        "VVX410",
        "hq",
        "pilot",
        "Front desk",
    )
    assert [(ln.index, ln.ext, ln.user, ln.password) for ln in first.lines] == [
        (1, "1010", "u1010", "pw1"),
        (2, "1011", "1011", ""),
    ]
    _, trio = inventory.get(MacAddress("0004f2000012"))
    assert trio.model == "Trio8800" and trio.lines[0].password == "pw,3"
    record, _ = inventory.get(MacAddress("0004f2000011"))
    assert record.status is DeviceStatus.KNOWN


BAD = """mac,model,group,line1_ext,line1_password,line2_ext
0004f2000020,VVX410,pilot,1020,ok,1021
0004f20000zz,VVX410,,1021,,
0004f2000022,VVX999,,1022,,
0004f2000023,Trio8800,,1023,,1024
0004f2000020,VVX410,,1025,,
0004f2000026,VVX410,bad group,1026,"x\x01y",
"""


def test_fail_import_bad_rows_reported_and_nothing_stored(inventory: Inventory) -> None:
    plan = _plan(inventory, BAD)
    found = {(p.row, p.column) for p in plan.problems}
    assert found == {
        (3, "mac"),
        (4, "model"),
        (5, "line2_ext"),
        (6, "mac"),
        (7, "group"),
        (7, "line1_password"),
    }
    by_row = {p.row: p for p in plan.problems}
    assert by_row[3].value == "0004f20000zz" and "not a MAC address" in by_row[3].reason
    assert "Trio8800 has 1 line" in by_row[5].reason
    assert "same MAC as row 2" in by_row[6].reason
    password = next(p for p in plan.problems if p.column == "line1_password")
    assert password.value == MASK  # a password never reaches the report
    assert [e.mac.value for e in plan.entries] == ["0004f2000020"]


@pytest.mark.parametrize(
    "text,column,reason",
    [
        ("", "", "the file is empty"),
        ("model,label\nVVX410,x\n", "mac", "no mac column"),
        ("mac,colour\n0004f2000001,red\n", "colour", "unknown column"),
        ("mac,mac\n0004f2000001,0004f2000001\n", "mac", "column appears twice"),
    ],
    ids=["fail/empty", "fail/no-mac-column", "fail/unknown-column", "fail/duplicate-column"],
)
def test_fail_import_header(inventory: Inventory, text: str, column: str, reason: str) -> None:
    problems = _plan(inventory, text).problems
    assert problems[0].row == 1 and problems[0].column == column
    assert reason in problems[0].reason


def test_fail_ragged_row(inventory: Inventory) -> None:
    problems = _plan(inventory, "mac,model\n0004f2000001,VVX410,extra\n").problems
    assert (problems[0].row, "row has 3 fields; the header has 2") == (2, problems[0].reason)


def test_ok_reimport_updates_in_place_and_keeps_absent_columns(inventory: Inventory) -> None:
    inventory.save(_plan(inventory, GOOD).entries)
    update = "mac,label,line1_ext,line1_server\n0004f2000010,Reception,1010,pbx2.example.com\n"
    plan = _plan(inventory, update)
    count = inventory.save(plan.entries)
    assert (count.created, count.updated) == (0, 1)
    _, entry = inventory.get(MacAddress("0004f2000010"))
    assert entry.label == "Reception" and entry.group == "pilot"  # group column absent: kept
    assert entry.lines[0].password == "pw1"  # password column absent: kept
    assert entry.lines[0].server == "pbx2.example.com"


def test_ok_export_without_passwords_reimports_same(inventory: Inventory) -> None:
    inventory.save(_plan(inventory, GOOD).entries)
    before = [e for _, e in inventory.list()]
    out = io.StringIO()
    write_csv(before, out, passwords=False)
    assert "pw1" not in out.getvalue()
    inventory.save(_plan(inventory, out.getvalue()).entries)
    assert [e for _, e in inventory.list()] == before


def test_ok_approve_pending_device(inventory: Inventory) -> None:
    mac = MacAddress("0004f2000099")
    inventory.store.record([Sighting(mac, 1.0, "192.0.2.9", "https", DeviceStatus.PENDING)], [])
    assert inventory.approve(mac) is DeviceStatus.PENDING
    record, _ = inventory.get(mac)
    assert record.status is DeviceStatus.KNOWN


def test_fail_approve_unknown_or_blocked(inventory: Inventory) -> None:
    with pytest.raises(InputError, match="has asked for files yet"):
        inventory.approve(MacAddress("0004f2000098"))
    mac = MacAddress("0004f2000097")
    inventory.add(mac, model="VVX410")
    inventory.store.set_status(mac, DeviceStatus.BLOCKED)
    with pytest.raises(InputError, match="is blocked"):
        inventory.approve(mac)
    inventory.add(mac, label="still blocked")  # re-adding does not unblock
    assert inventory.get(mac)[0].status is DeviceStatus.BLOCKED


def test_ok_large_import_checks_every_row(inventory: Inventory) -> None:
    rows = ["mac,model,line1_ext,line1_password"]
    rows += [f"0004f2{i:06x},VVX410,{1000 + i},pw{i}" for i in range(3000)]
    rows[1500] = "0004f2zzzzzz,VVX410,1,"
    seen: list[int] = []
    plan = plan_import(
        io.StringIO("\n".join(rows) + "\n"), inventory.rows.entries_by_mac, seen.append
    )
    assert [(p.row, p.column) for p in plan.problems] == [(1501, "mac")]
    assert len(plan.entries) == 2999 and seen[-1] == 3000
    assert inventory.save(plan.entries).created == 2999
