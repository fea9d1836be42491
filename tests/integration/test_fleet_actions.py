"""Resync and restart over real HTTPS with simulated phones (issue 18).

The phones' side follows Poly's REST API (protocols/phonerest.py quotes the
"REST API Reference Manual", UC Software 6.4.0, 3725-46212-006A): Basic auth as
``Polycom`` with the admin password, ``{"Status": "2000"}`` on success and
"4001 Device busy." when the phone cannot take the request now. Each phone
listens on its own loopback address and fetches its configuration from that
address over mutual TLS first, as a real phone does before anyone may reach it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from bench.nginx import free_port
from tests.integration.fleetkit import PhoneLoop, address_of, fetch_secrets, mac_of
from tests.serverkit import Server, edit_settings, make_site, run_cli, start_server

from phoneprov.config import load_settings
from phoneprov.sim.certs import device_pair
from phoneprov.sim.restapi import Gauge, PhoneWebServer
from phoneprov.store import open_store

PHONES = 200
LIMIT = 8


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Server, list[PhoneWebServer], Gauge]]:
    site = make_site(tmp_path / "site", fqdns=("127.0.0.1",))
    rest_port = free_port()
    edit_settings(
        site,
        fleet={
            "rest_api": True,
            "rest_port": rest_port,
            "max_in_flight": LIMIT,
            "per_second": 10000.0,
            "timeout": 10.0,
            "busy_retry_delay": 0.2,
        },
    )
    rows = "\n".join(f"{mac_of(i)},VVX410,,floor{i % 2},desk {i}" for i in range(PHONES))
    csv = tmp_path / "phones.csv"
    csv.write_text("mac,model,site,group,label\n" + rows + "\n")
    run_cli("device", "import", str(csv), "--site", str(site), check=True)
    server = start_server(site)
    loop = PhoneLoop()
    gauge = Gauge()
    phones: list[PhoneWebServer] = []
    try:
        pairs = [device_pair(site, mac_of(i)) for i in range(PHONES)]
        for i, (cert, key) in enumerate(pairs):
            password = fetch_secrets(site, server.ports["https"], i, cert, key)
            # Phone 1's web server presents phone 2's certificate (a swapped or cloned box).
            shown = pairs[2] if i == 1 else (cert, key)
            phones.append(
                PhoneWebServer(
                    mac_of(i),
                    password,
                    shown[0],
                    shown[1],
                    address_of(i),
                    rest_port,
                    gauge=gauge,
                    busy=1 if i == 0 else 0,
                    delay=0.05,
                )
            )
        for phone in phones:
            loop.call(phone.start())
        wait_for_addresses(site)
        yield server, phones, gauge
    finally:
        for phone in phones:
            loop.call(phone.stop())
        loop.close()
        server.stop()


def wait_for_addresses(site: Path) -> None:
    """Wait until the server's recorder wrote where every phone proved who it is from."""
    macs = [mac_of(i) for i in range(PHONES)]
    deadline = time.monotonic() + 10
    with closing(open_store(load_settings(site))) as store:
        while len(store.fleet_actions.access(macs)) < PHONES:
            assert time.monotonic() < deadline, "the server recorded no address for some phones"
            time.sleep(0.1)


def resync(server: Server, *args: str) -> tuple[int, list[dict[str, object]]]:
    result = run_cli("device", "resync", *args, "--json", "--site", str(server.site))
    return result.returncode, json.loads(result.stdout)


def test_resync_fans_out_within_the_limit_and_skips_a_wrong_certificate(
    fleet: tuple[Server, list[PhoneWebServer], Gauge],
) -> None:
    server, phones, gauge = fleet
    code, everyone = resync(server, "--all")
    # The demo phones of the site never came online: no address, nothing sent.
    rows = [row for row in everyone if str(row["mac"]).startswith("0004f21")]
    assert {r["outcome"] for r in everyone if r not in rows} == {"no-address"}
    by_mac = {row["mac"]: row for row in rows}
    assert len(rows) == PHONES
    # Never more phones asked at once than [fleet] max_in_flight, counted by the phones.
    assert 1 < gauge.peak <= LIMIT
    # "4001 Device busy.": asked again later, then accepted.
    assert by_mac[mac_of(0).value]["outcome"] == "accepted"
    assert by_mac[mac_of(0).value]["attempts"] == 2
    assert phones[0].actions == ["/api/v1/mgmt/updateConfiguration"] * 2
    # Another MAC's certificate: refused before anything is sent.
    mismatch = by_mac[mac_of(1).value]
    assert mismatch["outcome"] == "cert-mismatch"
    assert str(mac_of(2)) in str(mismatch["detail"])
    assert phones[1].received == []
    accepted = [row for row in rows if row["outcome"] == "accepted"]
    assert len(accepted) == PHONES - 1
    assert code == 1  # one phone did not accept
    shown = run_cli("device", "show", str(mac_of(1)), "--site", str(server.site), check=True)
    assert "fleet-resync" in shown.stdout and "cert-mismatch" in shown.stdout
    # "The resync is confirmed when the phone next fetches its config" (issue 18).
    site = server.site
    with closing(open_store(load_settings(site))) as store:
        assert store.fleet_actions.actions(mac_of(3))[0].confirmed is None
        cert, key = device_pair(site, mac_of(3))
        fetch_secrets(site, server.ports["https"], 3, cert, key)
        deadline = time.monotonic() + 10
        while store.fleet_actions.actions(mac_of(3))[0].confirmed is None:
            assert time.monotonic() < deadline, "the accepted resync was never confirmed"
            time.sleep(0.1)
    shown = run_cli("device", "show", str(mac_of(3)), "--site", str(site), check=True)
    assert "confirmed: the phone fetched its files again" in shown.stdout


def test_restart_of_a_group_reaches_only_that_group(
    fleet: tuple[Server, list[PhoneWebServer], Gauge],
) -> None:
    server, phones, _ = fleet
    result = run_cli("device", "restart", "--group", "floor0", "--json", "--site", str(server.site))
    restarted = json.loads(result.stdout)
    assert {r["mac"] for r in restarted} == {str(mac_of(i)) for i in range(0, PHONES, 2)}
    assert "/api/v1/mgmt/safeRestart" in phones[0].actions
    assert "/api/v1/mgmt/safeRestart" not in phones[3].actions
