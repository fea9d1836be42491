"""Issue 13, finding 4: the Lync device update endpoint wrote the inventory unauthenticated.

``POST /RequestHandler/ucdevice.upx`` is anonymous (a CX700 asks before it
trusts anything). Its sighting was merged into the device record like a phone
listener's: one POST changed a known phone's model, and 300 POSTs with made-up
MACs created 300 devices. Now what it says is an unverified sighting: never
written over a record a phone listener or the administrator wrote, and new
devices are flagged ``unverified``, bounded in rate and count (``[policy]
lync_new_devices_per_minute``, ``lync_unverified_devices``). Each test stops
the server before reading the database: a stop flushes every queued sighting,
so what the old code would have written is there to see.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from phoneprov.model import MacAddress
from phoneprov.protocols.lync import PackageKey, example_request
from phoneprov.store import Store, open_database
from tests.serverkit import Server, curl, edit_settings, run_cli, start_server, status_of

CX700 = PackageKey("UCPhone", "Polycom", "CX700", "A", "ENU")
PUBLIC = ("--digest", "-u", "PlcmSpIp:PlcmSpIp")
CODE = ("-o", "/dev/null", "-w", "%{http_code}")
DEFAULT_PER_MINUTE = 120  # [policy] lync_new_devices_per_minute


def store_of(site: Path) -> Store:
    return open_database(f"sqlite:///{(site / 'phoneprov.db').resolve()}")


def post_many(server: Server, tmp_path: Path, bodies: list[bytes]) -> list[int]:
    """POST each body to ucdevice.upx with one curl run (``next`` per request), as a CX700
    would (libcurl); return the status of each."""
    lines = []
    for n, body in enumerate(bodies):
        path = tmp_path / f"request-{n}.xml"
        path.write_bytes(body)
        if n:
            lines.append("next")
        lines += [
            f'url = "{server.http}/RequestHandler/ucdevice.upx"',
            'header = "Content-Type: text/xml"',
            f'data-binary = "@{path}"',
            'output = "/dev/null"',
            'write-out = "%{http_code}\\n"',
        ]
    config = tmp_path / "requests.curlrc"
    config.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        ["curl", "-sS", "--max-time", "20", "-K", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return [int(code) for code in result.stdout.split()]


def show(site: Path, mac: str) -> dict[str, object]:
    shown = run_cli("device", "show", mac, "--site", str(site), "--format", "json", check=True)
    info: dict[str, object] = json.loads(shown.stdout)
    return info


def test_fail_post_claiming_another_model_leaves_a_known_phone(site: Path, tmp_path: Path) -> None:
    mac = "0004f2a0c001"
    run_cli(
        "device", "add", mac, "--model", "VVX410", "--group", "lobby", "--label", "Front desk",
        "--site", str(site), check=True,
    )  # fmt: skip
    server = start_server(site)
    try:
        forged = example_request(CX700, MacAddress(mac), "1.0.522.73")
        assert post_many(server, tmp_path, [forged]) == [200]  # still answered
    finally:
        server.stop()
    info = show(site, mac)
    assert (info["model"], info["group"], info["label"]) == ("VVX410", "lobby", "Front desk")
    assert info["firmware"] == "" and info["status"] == "known"
    assert "unverified" not in info["flags"]  # type: ignore[operator]


def test_fail_300_made_up_macs_do_not_create_300_devices(site: Path, tmp_path: Path) -> None:
    macs = [f"0004f2b{n:05x}" for n in range(300)]
    server = start_server(site)
    try:
        bodies = [example_request(CX700, MacAddress(mac), "1.0.522.73") for mac in macs]
        started = time.monotonic()
        assert post_many(server, tmp_path, bodies) == [200] * 300  # every one answered
        minutes = 1 + int((time.monotonic() - started) // 60)  # one on any usual machine
    finally:
        server.stop()
    store = store_of(site)
    try:
        made = [d for d in store.list_devices() if d.mac.value in set(macs)]
        assert 0 < len(made) <= DEFAULT_PER_MINUTE * minutes
        assert all("unverified" in d.flags and d.model == "CX700" for d in made)
        recorded = {d.mac.value for d in made}
        unrecorded = [mac for mac in macs if mac not in recorded]
        assert all(store.lync.recent(MacAddress(mac)) == [] for mac in unrecorded[:20])
        reports = [e for e in store.events_for(limit=1000) if e.kind == "ucupdate-unrecorded"]
        assert reports and "lync_new_devices_per_minute" in reports[0].detail
    finally:
        store.close()


def test_fail_unverified_devices_stop_at_the_cap(site: Path, tmp_path: Path) -> None:
    edit_settings(site, policy={"lync_unverified_devices": 10})
    macs = [f"0004f2c{n:05x}" for n in range(30)]
    server = start_server(site)
    try:
        bodies = [example_request(CX700, MacAddress(mac), "1.0.522.73") for mac in macs]
        assert post_many(server, tmp_path, bodies) == [200] * 30
    finally:
        server.stop()
    store = store_of(site)
    try:
        made = [d for d in store.list_devices() if "unverified" in d.flags]
        assert len(made) == 10
        reports = [e for e in store.events_for(limit=1000) if e.kind == "ucupdate-unrecorded"]
        assert reports and "lync_unverified_devices = 10 reached" in reports[0].detail
    finally:
        store.close()


def test_ok_a_phone_listener_takes_over_an_unverified_record(site: Path, tmp_path: Path) -> None:
    """A real CX700 is recorded, flagged unverified; once the phone boots over HTTP (public
    account, its MAC in the User-Agent) the record is its own and the endpoint leaves it."""
    mac = "0004f2a0c002"
    server = start_server(site)
    try:
        claim = example_request(CX700, MacAddress(mac), "1.0.522.73")
        assert post_many(server, tmp_path, [claim]) == [200]
        store = store_of(site)
        try:
            device = store.get_device(MacAddress(mac))
            assert device is not None and "unverified" in device.flags
            assert (device.model, device.firmware) == ("CX700", "1.0.522.73")
            agent = f"FileTransport PolycomVVX-VVX_411-UA/5.9.5.0614 (SN:{mac}) Type/Application"
            booted = curl(*PUBLIC, *CODE, "-A", agent, f"{server.http}/000000000000.cfg")
            assert status_of(booted) == 200
            deadline = time.monotonic() + 10  # the recorder writes every half second
            while "unverified" in flags_of(store, mac) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "unverified" not in flags_of(store, mac)
        finally:
            store.close()
        again = example_request(CX700, MacAddress(mac), "1.0.9.9")
        assert post_many(server, tmp_path, [again]) == [200]
    finally:
        server.stop()
    info = show(site, mac)
    assert (info["model"], info["firmware"]) == ("VVX411", "5.9.5.0614")


def flags_of(store: Store, mac: str) -> tuple[str, ...]:
    device = store.get_device(MacAddress(mac))
    return device.flags if device is not None else ()
