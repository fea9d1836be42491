"""Phones behind one NAT address: no phone borrows the identity of the last one seen there.

A firmware request (``sip.ver``, ``sip.ld``) carries no MAC. The server used to
stand in the MAC last seen from the same address: behind a NAT (every test here
comes from 127.0.0.1, like a site's phones behind one router) another phone got
that phone's group firmware, and a storm of other phones' downloads was counted
against it as a firmware loop. A request without a MAC is an unknown phone.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serverkit import DEMO_MAC, Server, curl, make_site, run_cli, start_server

DIGEST = ["--digest", "-u", "PlcmSpIp:PlcmSpIp"]
VVX = "FileTransport PolycomVVX-VVX_410-UA/5.9.7.47435 Type/Updater"
SITE_VERSION = "5.9.8.5760"
PILOT_VERSION = "6.0.0.1000"  # the demo phone's group, "pilot"
RECORDER_FLUSH = 2.0  # seconds: the recorder writes every half second


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("nat")
    site = make_site(work / "site")

    def cli(*args: str) -> None:
        run_cli("firmware", *args, "--site", str(site), check=True)

    for version in (SITE_VERSION, PILOT_VERSION):
        image = work / f"{version}.ld"
        image.write_bytes(os.urandom(50_000))
        cli("add", str(image), "--version", version, "--models", "VVX410")
    cli("assign", "--version", SITE_VERSION)
    cli("assign", "--version", PILOT_VERSION, "--group", "pilot")
    running = start_server(site)
    yield running
    running.stop()


def _flags(server: Server, mac: str) -> list[str]:
    shown = run_cli(
        "device", "show", mac, "--format", "json", "--site", str(server.site), check=True
    )
    flags: list[str] = json.loads(shown.stdout)["flags"]
    return flags


def test_attack_second_phone_behind_nat_does_not_get_first_phones_group_firmware(
    server: Server,
) -> None:
    # The pilot phone asks for its own config file: the server now knows it, at this address.
    curl(*DIGEST, "-A", VVX, "-o", "/dev/null", f"{server.http}/{DEMO_MAC}.cfg")
    # Another VVX 410 behind the same router asks which firmware to run: no MAC in it.
    other = curl(*DIGEST, "-A", VVX, f"{server.http}/sip.ver")
    assert other.stdout == f"{SITE_VERSION}\n"
    # The pilot phone itself, once it says who it is, gets its group's version.
    tagged = VVX.replace(" Type/", f" (SN:{DEMO_MAC}) Type/")
    mine = curl(*DIGEST, "-A", tagged, f"{server.http}/sip.ver")
    assert mine.stdout == f"{PILOT_VERSION}\n"


def test_attack_storm_from_one_address_does_not_flag_a_firmware_loop(
    server: Server, tmp_path: Path
) -> None:
    curl(*DIGEST, "-A", VVX, "-o", "/dev/null", f"{server.http}/{DEMO_MAC}.cfg")
    out = tmp_path / "sip.ld"
    for _ in range(6):  # other phones, each fetching its image once; LOOP_THRESHOLD is 3
        curl(*DIGEST, "-A", VVX, "-o", str(out), f"{server.http}/sip.ld")
        assert out.stat().st_size == 50_000
    time.sleep(RECORDER_FLUSH)  # a loop flag would be written by now
    assert "firmware-loop" not in _flags(server, DEMO_MAC)
