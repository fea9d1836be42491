"""Issue 13, finding 1: the public account could destroy a phone's data.

With PlcmSpIp anyone overwrote any MAC's contacts and calls, six PUTs pushed out
every kept version, anyone uploaded without limit for MACs that do not exist,
and 201/204 told which phones have files. The rule that replaced it is
docs/decisions/0008-public-account-writes.md; each test below failed before it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serverkit import (
    DEMO_MAC,
    Server,
    curl,
    edit_settings,
    run_cli,
    start_server,
    status_of,
)

PUBLIC = ("--digest", "-u", "PlcmSpIp:PlcmSpIp")
CODE = ("-o", "/dev/null", "-w", "%{http_code}")
STRANGER = "0004f2dead01"  # a MAC no phone of the site has


def put(server: Server, path: str, body: Path, *extra: str) -> int:
    return status_of(curl(*PUBLIC, *CODE, *extra, "-T", str(body), f"{server.http}/{path}"))


def boot_as_phone(server: Server, mac: str) -> int:
    """A phone's first request, as a bootROM makes it: the master file, its MAC in the UA."""
    agent = f"FileTransport PolycomVVX-VVX_411-UA/5.9.5.0614 (SN:{mac}) Type/Application"
    return status_of(curl(*PUBLIC, *CODE, "-A", agent, f"{server.http}/000000000000.cfg"))


def prove_identity(server: Server) -> None:
    """The demo phone fetches its own secrets file over mutual TLS (its certificate)."""
    demo = server.site / "demo"
    result = curl(
        "--cacert",
        str(server.site / "pki" / "ca.pem"),
        "--cert",
        str(demo / f"{DEMO_MAC}.pem"),
        "--key",
        str(demo / f"{DEMO_MAC}.key"),
        *CODE,
        f"{server.https}/{DEMO_MAC}-phone-secrets.cfg",
    )
    assert status_of(result) == 200


def wait_for(probe: object, timeout: float = 5.0) -> None:
    assert callable(probe)
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.1)


@pytest.fixture
def quarantine_server(site: Path) -> Iterator[Server]:
    edit_settings(site, policy={"enrolment": "quarantine"})
    running = start_server(site)
    yield running
    running.stop()


def test_fail_public_account_cannot_overwrite_a_phone_that_proved_itself(
    server: Server, tmp_path: Path
) -> None:
    contacts = server.site / "boot" / "contacts" / f"{DEMO_MAC}-directory.xml"
    contacts.parent.mkdir(parents=True, exist_ok=True)
    contacts.write_text("<directory>the phone's own</directory>")
    prove_identity(server)
    forged = tmp_path / "forged.xml"
    forged.write_text("<directory>attacker</directory>")

    # At once: the server that saw the proof knows it before the store does.
    assert put(server, f"contacts/{DEMO_MAC}-directory.xml", forged) == 403
    assert contacts.read_text() == "<directory>the phone's own</directory>"
    assert put(server, f"calls/{DEMO_MAC}-calls.xml", forged) == 403
    server.wait_for_log("security", "reason=own-identity-only")
    # And for good: the mark is in the store, so a restarted server still refuses.
    wait_for(
        lambda: (
            "own-identity" in run_cli("device", "show", DEMO_MAC, "--site", str(server.site)).stdout
        )
    )
    # The bootROM still uploads its log over digest on every boot.
    log = tmp_path / "boot.log"
    log.write_text("bootrom\n")
    assert put(server, f"logs/{DEMO_MAC}-boot.log", log) == 204


def test_fail_public_account_cannot_upload_for_phones_not_enrolled(
    server: Server, tmp_path: Path
) -> None:
    body = tmp_path / "big.log"
    body.write_bytes(b"x" * 1024 * 1024)
    answers = {put(server, f"logs/{STRANGER}-app.log", body) for _ in range(3)}
    answers.add(put(server, f"contacts/{STRANGER}-directory.xml", body))
    assert answers == {403}
    assert not list((server.site / "boot").rglob(f"{STRANGER}*"))
    server.wait_for_log("security", "reason=not-enrolled")


def test_ok_a_phone_seen_asking_may_upload_its_log(server: Server, tmp_path: Path) -> None:
    """Under the default enrolment ("allow") a new phone is enrolled by asking for files."""
    mac = "0004f2000a11"
    assert boot_as_phone(server, mac) == 200
    log = tmp_path / "boot.log"
    log.write_text("new phone\n")
    assert put(server, f"logs/{mac}-boot.log", log) == 204
    assert (server.site / "boot" / "logs" / f"{mac}-boot.log").read_text() == "new phone\n"


def test_ok_a_phone_without_its_mac_in_the_user_agent_enrols_by_its_own_config(
    server: Server, tmp_path: Path
) -> None:
    """The bootROM asks for its own master file first. SoundPoint IP / SoundStation IP
    Administrator's Guide (SIP 3.1, appendix A, "Master Configuration Files"): "the file
    should be named <Ethernet address>.cfg ... If this file cannot be downloaded, the
    phone will search for the default master configuration file". The MAC is in the
    User-Agent only with ``device.prov.tagSerialNo`` (research/anchors_provisioning.md,
    reperio and provd; inferred, not from a Polycom document), so the request for
    ``<MAC>.cfg`` is how a phone on the public account makes itself known."""
    mac = "0004f2000a14"
    agent = "FileTransport PolycomVVX-VVX_411-UA/5.9.5.0614 Type/Updater"  # no (SN:...)
    own = curl(*PUBLIC, *CODE, "-A", agent, f"{server.http}/{mac}.cfg")
    assert status_of(own) == 404  # a public account never gets a per-phone file
    log = tmp_path / "boot.log"
    log.write_text("updater\n")
    assert put(server, f"logs/{mac}-boot.log", log) == 204


def test_fail_put_answers_the_same_whether_or_not_a_file_existed(
    server: Server, tmp_path: Path
) -> None:
    body = tmp_path / "calls.xml"
    body.write_text("<calls/>")
    first = put(server, f"calls/{DEMO_MAC}-calls.xml", body)
    second = put(server, f"calls/{DEMO_MAC}-calls.xml", body)
    assert first == second == 204


def test_fail_a_burst_of_writes_keeps_every_recent_version(server: Server, tmp_path: Path) -> None:
    """Six PUTs used to push out the five kept versions; recent versions now stay."""
    name = f"{DEMO_MAC}-directory.xml"
    body = tmp_path / "contacts.xml"
    body.write_text("<directory>good</directory>")
    assert put(server, f"contacts/{name}", body) == 204
    for n in range(8):
        body.write_text(f"<directory>burst {n}</directory>")
        assert put(server, f"contacts/{name}", body) == 204
    kept = sorted((server.site / "versions" / "contacts").glob(f"{name}.*"))
    assert len(kept) == 8
    assert kept[0].read_text() == "<directory>good</directory>"


def test_fail_quota_per_phone_refuses_with_429(site: Path, tmp_path: Path) -> None:
    edit_settings(site, uploads={"mac_quota": "64KiB"})
    server = start_server(site)
    try:
        body = tmp_path / "app.log"
        body.write_bytes(b"y" * 30 * 1024)
        assert put(server, f"logs/{DEMO_MAC}-app.log", body) == 204
        assert put(server, f"logs/{DEMO_MAC}-app.log", body) == 204
        headers = curl(
            *PUBLIC,
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-T",
            str(body),
            f"{server.http}/logs/{DEMO_MAC}-app.log",
        ).stdout
        assert "HTTP/1.1 429" in headers, headers  # after the digest challenge
        assert "Retry-After: " in headers
        server.wait_for_log("security", "reason=quota-exceeded")
        # Another phone from the same address is not held back by this one's quota.
        assert boot_as_phone(server, "0004f2000a12") == 200
        assert put(server, "logs/0004f2000a12-app.log", body) == 204
    finally:
        server.stop()


def test_fail_quarantined_phone_files_are_held_until_approved(
    quarantine_server: Server, tmp_path: Path
) -> None:
    server = quarantine_server
    mac = "0004f2000a13"
    boot_as_phone(server, mac)
    body = tmp_path / "contacts.xml"
    body.write_text("<directory>pending</directory>")
    assert put(server, f"contacts/{mac}-directory.xml", body) == 204
    held = server.site / "held" / "contacts" / f"{mac}-directory.xml"
    served = server.site / "boot" / "contacts" / f"{mac}-directory.xml"
    assert held.read_text() == "<directory>pending</directory>" and not served.exists()
    wait_for(lambda: run_cli("device", "show", mac, "--site", str(server.site)).returncode == 0)
    approved = run_cli("device", "approve", mac, "--site", str(server.site), check=True)
    assert f"released held upload contacts/{mac}-directory.xml" in approved.stdout
    assert served.read_text() == "<directory>pending</directory>" and not held.exists()
