"""Firmware rollouts over real HTTPS with simulated phones (issue 18).

Each phone listens on its own loopback address with the Poly REST API
(``sim/restapi.py``: Basic auth as ``Polycom``, ``{"Status": "2000"}``) and
boots from ``phoneprov serve`` over mutual TLS when asked to restart
(``tests/integration/fleetkit.py``): the Updater reads the master file, the
version file beside ``APP_FILE_PATH_VVX410``, and the image when the version
differs (SPEC §2); the application then names the version it runs in its
User-Agent. ``serve`` checks the rollout every ``[fleet] poll_interval``.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bench.nginx import free_port
from tests.integration.adminkit import Api
from tests.integration.fleetkit import (
    FirmwarePhone,
    PhoneLoop,
    fetch_secrets,
    mac_of,
)
from tests.integration.shdoc import run_sh_blocks
from tests.serverkit import Server, edit_settings, make_site, run_cli, start_server

from phoneprov.config import load_settings
from phoneprov.protocols.polycom import Stage
from phoneprov.provisioning import admins
from phoneprov.sim.certs import device_pair
from phoneprov.sim.restapi import PhoneWebServer
from phoneprov.store import open_store

OLD, NEW = "5.9.5.0614", "6.4.0.1000"
DOC = Path(__file__).resolve().parents[2] / "docs" / "fleet-actions.md"


@dataclass
class Fleet:
    server: Server
    phones: list[FirmwarePhone]
    loop: PhoneLoop
    webs: dict[int, PhoneWebServer]  # phone index -> its web server

    @property
    def site(self) -> Path:
        return self.server.site

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, "--site", str(self.site), check=check, timeout=120)


def start_fleet(
    root: Path,
    count: int,
    canary: int,
    *,
    looping: int = 0,
    offline: tuple[int, ...] = (),
    add_new: bool = True,
) -> Fleet:
    """``count`` phones of site hq on OLD, the first ``canary`` in group canary (the first
    ``looping`` of them loop on any new image); ``offline`` phones have no REST API.
    Both images are in ``root``; NEW is in the catalog too unless ``add_new`` is False."""
    site = make_site(root / "site", demo=False, fqdns=("127.0.0.1",))
    rest_port = free_port()
    edit_settings(
        site,
        fleet={
            "rest_api": True,
            "rest_port": rest_port,
            "per_second": 1000.0,
            "timeout": 5.0,
            "report_deadline": 60.0,
            "poll_interval": 0.2,
        },
    )
    for version in (OLD, NEW):
        image = root / f"sip-{version}.ld"
        image.write_bytes(os.urandom(4096))
        if version == NEW and not add_new:
            continue
        run_cli("firmware", "add", str(image), "--version", version, "--models", "VVX410",
                "--site", str(site), check=True)  # fmt: skip
    run_cli("firmware", "assign", "--version", OLD, "--site", str(site), check=True)
    rows = "".join(
        f"{mac_of(i)},VVX410,hq,{'canary' if i < canary else 'floor'},desk {i}\n"
        for i in range(count)
    )
    (root / "phones.csv").write_text("mac,model,site,group,label\n" + rows)
    run_cli("device", "import", str(root / "phones.csv"), "--site", str(site), check=True)
    server = start_server(site, protocols=("http", "https", "admin"))
    fleet = Fleet(server, [], PhoneLoop(), {})
    https = server.ports["https"]
    for i in range(count):
        cert, key = device_pair(site, mac_of(i))
        phone = FirmwarePhone(i, site, https, cert, key, OLD, loops=3 if i < looping else 0)
        fleet.phones.append(phone)
        # Its running application fetches its own file, saying it runs OLD.
        password = fetch_secrets(site, https, i, cert, key, phone.agent(Stage.APPLICATION))
        if i not in offline:
            fleet.webs[i] = phone.web_server(password, rest_port)
            fleet.loop.call(fleet.webs[i].start())
    wait_until(lambda: len(reported(site, OLD)) == count, "every phone reported " + OLD)
    return fleet


def reported(site: Path, version: str) -> list[str]:
    with closing(open_store(load_settings(site))) as store:
        return [d.mac.value for d in store.list_devices() if d.firmware == version]


def wait_until(done: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.1)


@pytest.fixture
def fleets(tmp_path: Path) -> Iterator[list[Fleet]]:
    made: list[Fleet] = []
    yield made
    for fleet in made:
        for web in fleet.webs.values():
            fleet.loop.call(web.stop())
        fleet.loop.close()
        fleet.server.stop()


def status(fleet: Fleet, name: str, *extra: str) -> tuple[int, dict[str, Any]]:
    result = fleet.cli("rollout", "status", name, "--json", *extra, check=False)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def by_mac(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {phone["mac"]: phone for phone in view["phones"]}


def test_canary_phones_that_loop_halt_the_rollout_before_wave_two(
    tmp_path: Path, fleets: list[Fleet]
) -> None:
    fleet = start_fleet(tmp_path, 6, canary=2, looping=2)
    fleets.append(fleet)
    planned = json.loads(
        fleet.cli(
            "rollout",
            "plan",
            "lobby",
            "--version",
            NEW,
            "--canary-group",
            "canary",
            "--waves",
            "50%,100%",
            # One failure allowed, so the halt waits for the second canary phone and names
            # both: with none allowed it halted on whichever looped first (a race under load).
            "--max-failures",
            "1",
            "--json",
        ).stdout
    )
    assert [p["wave"] for p in planned["phones"]] == [1, 1, 2, 2, 3, 3]
    fleet.cli("rollout", "start", "lobby")
    code, view = status(fleet, "lobby", "--wait", "60")
    assert code == 1 and view["state"] == "halted" and view["wave"] == 1
    canary = [str(mac_of(0)), str(mac_of(1))]
    # Says which phones and why (SPEC §9: fetched again and again, never run).
    for mac in canary:
        assert mac in view["reason"]
        assert by_mac(view)[mac]["state"] == "failed"
        assert "firmware loop" in by_mac(view)[mac]["detail"]
    assert all(p.image_fetches == 3 for p in fleet.phones[:2])
    # The rest is held on the old version: never restarted, offered OLD when it boots.
    later = fleet.phones[2:]
    assert {by_mac(view)[str(p.mac)]["state"] for p in later} == {"held"}
    assert all(p.restarts == [] for p in later)
    fleet.loop.call(later[0].boot())
    assert later[0].image_fetches == 0 and later[0].reports[-1][1] == OLD
    shown = fleet.cli("device", "show", canary[0]).stdout
    assert "lobby" in shown and "firmware loop" in shown
    compliance = json.loads(fleet.cli("firmware", "compliance", "--format", "json").stdout)
    assigned = {p["mac"]: (p["assigned"], p["source"], p["status"]) for p in compliance["phones"]}
    assert assigned[canary[0]] == (NEW, "rollout lobby", "behind")
    assert assigned[str(later[0].mac)] == (OLD, "rollout lobby", "compliant")
    # Abort: every phone is offered its model's version again.
    aborted = json.loads(fleet.cli("rollout", "abort", "lobby", "--json").stdout)
    assert aborted["state"] == "aborted"
    compliance = json.loads(fleet.cli("firmware", "compliance", "--format", "json").stdout)
    assert {(p["assigned"], p["source"]) for p in compliance["phones"]} == {(OLD, "model VVX410")}


def test_healthy_rollout_completes_over_three_waves(tmp_path: Path, fleets: list[Fleet]) -> None:
    offline = 4  # a wave-2 phone the server cannot reach: it moves at its own next boot
    fleet = start_fleet(tmp_path, 12, canary=2, offline=(offline,))
    fleets.append(fleet)
    # Phone 7 serves its REST API on another port than [fleet] rest_port.
    other_port = free_port()
    fleet.cli("device", "rest-port", str(mac_of(7)), str(other_port))
    moved = fleet.webs[7]
    fleet.loop.call(moved.stop())
    moved.port = other_port
    fleet.loop.call(moved.start())
    fleet.cli("rollout", "plan", "hq-64", "--version", NEW, "--sites", "hq",
              "--canary-group", "canary", "--waves", "50%,100%")  # fmt: skip
    fleet.cli("rollout", "start", "hq-64")

    def unreachable_phone_waits() -> bool:
        phone = by_mac(status(fleet, "hq-64")[1])[str(mac_of(offline))]
        return phone["state"] == "moved" and "next boot" in phone["detail"]

    wait_until(unreachable_phone_waits, "wave 2 to start")
    assert fleet.phones[offline].restarts == []
    fleet.loop.call(fleet.phones[offline].boot())  # its own poll: the rollout waited for it
    code, view = status(fleet, "hq-64", "--wait", "60")
    assert code == 0 and view["state"] == "completed", view
    assert [(w["wave"], w["healthy"]) for w in view["progress"]] == [(1, 2), (2, 5), (3, 5)]
    assert sorted(reported(fleet.site, NEW)) == sorted(str(p.mac) for p in fleet.phones)
    # Each wave started once the one before reported NEW: restarts come after those reports.
    waves = {phone["mac"]: phone["wave"] for phone in view["phones"]}
    for wave in (1, 2):
        done = max(
            min(t for t, v in p.reports if v == NEW)
            for p in fleet.phones
            if waves[str(p.mac)] == wave
        )
        started = min(
            p.restarts[0] for p in fleet.phones if waves[str(p.mac)] == wave + 1 and p.restarts
        )
        assert done < started, f"wave {wave + 1} started before wave {wave} was healthy"
    assert fleet.phones[7].restarts, "the phone on its own REST port was not restarted"
    # Each accepted restart is confirmed: the phone fetched its files again afterwards.
    with closing(open_store(load_settings(fleet.site))) as store:
        actions = store.fleet_actions.actions(mac_of(0))
    assert actions[0].outcome == "accepted" and actions[0].confirmed is not None
    compliance = json.loads(fleet.cli("firmware", "compliance", "--format", "json").stdout)
    assert {p["status"] for p in compliance["phones"]} == {"compliant"}
    assert compliance["summary"][0]["running"] == [NEW]


def test_api_plans_runs_and_reports_a_rollout(tmp_path: Path, fleets: list[Fleet]) -> None:
    fleet = start_fleet(tmp_path, 4, canary=1)
    fleets.append(fleet)
    settings = load_settings(fleet.site)
    tokens = {
        role: admins.create_token(settings, role, role).secret for role in ("viewer", "operator")
    }
    api = Api(
        fleet.server, tokens, ssl.create_default_context(cafile=str(fleet.site / "pki" / "ca.pem"))
    )
    plan = {"name": "api-64", "version": NEW, "canary_group": "canary", "waves": ["100%"]}
    body = json.dumps(plan).encode()
    assert api.call("POST", "/api/v1/rollouts", "viewer", body=body)[0] == 403
    made = api.json("POST", "/api/v1/rollouts", "operator", body=body)
    assert made["state"] == "planned" and [w["waiting"] for w in made["progress"]] == [1, 3]
    assert api.call("POST", "/api/v1/rollouts", "operator", body=body)[0] == 409
    assert api.call("GET", "/api/v1/rollouts/no-such-rollout", "viewer")[0] == 404
    api.json("POST", "/api/v1/rollouts/api-64/start", "operator", body=b"")
    wait_until(
        lambda: api.json("GET", "/api/v1/rollouts/api-64", "viewer")["state"] == "completed",
        "the rollout to complete",
    )
    report = api.json("GET", "/api/v1/firmware/compliance", "viewer")
    assert {(p["running"], p["status"]) for p in report["phones"]} == {(NEW, "compliant")}
    status, headers, csv = api.call("GET", "/api/v1/firmware/compliance.csv", "viewer")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert csv.decode().splitlines()[1].startswith("VVX410,canary,1,1,0,0,0,")
    mac = str(mac_of(0))
    done = api.json(
        "POST", "/api/v1/devices/resync", "operator", body=json.dumps({"macs": [mac]}).encode()
    )
    assert [(r["mac"], r["outcome"]) for r in done] == [(mac, "accepted")]
    assert fleet.webs[0].actions[-1] == "/api/v1/mgmt/updateConfiguration"
    history = api.json("GET", f"/api/v1/devices/{mac}/actions", "viewer")
    assert [a["action"] for a in history[:2]] == ["resync", "restart"]


def test_ok_fleet_actions_doc_walk_through_runs(tmp_path: Path, fleets: list[Fleet]) -> None:
    """docs/fleet-actions.md as an administrator runs it, against a live server with eight
    simulated phones (two in group canary) that restart and upgrade when asked."""
    fleet = start_fleet(tmp_path, 8, canary=2, add_new=False)
    fleets.append(fleet)
    assert run_sh_blocks(DOC, tmp_path, text_after_prose=True) == 8
    assert sorted(reported(fleet.site, NEW)) == sorted(str(p.mac) for p in fleet.phones)
