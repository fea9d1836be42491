"""Firmware from the catalog: by part number and plain name, sha256 compared; loop flag."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.serverkit import DEMO_MAC, Server, curl, make_site, run_cli, start_server, status_of

CODE = ["-o", "/dev/null", "-w", "%{http_code}"]
VVX = "FileTransport PolycomVVX-VVX_410-UA/5.9.7.47435 Type/Updater"
TRIO = "FileTransport PolycomRealPresenceTrio-Trio_8800-UA/7.1.0.1 Type/Updater"
PART = "3111-46162-001"


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    """A demo site with VVX410 images 5.9.8 (part and plain) and 6.0.0 for group pilot."""
    work = tmp_path_factory.mktemp("firmware")
    site = make_site(work / "site")
    digests: dict[str, str] = {}
    for name, size in (("part", 700_000), ("plain", 300_000), ("pilot", 200_000)):
        data = os.urandom(size)
        (work / f"{name}.ld").write_bytes(data)
        digests[name] = hashlib.sha256(data).hexdigest()

    def cli(*args: str) -> str:
        return run_cli("firmware", *args, "--site", str(site), check=True).stdout

    cli(
        "add",
        str(work / "part.ld"),
        "--version",
        "5.9.8.5760",
        "--models",
        "VVX410",
        "--part",
        PART,
    )
    cli("add", str(work / "plain.ld"), "--version", "5.9.8.5760", "--models", "VVX410")
    again = cli("add", str(work / "plain.ld"), "--version", "5.9.8.5760", "--models", "VVX410")
    assert "same bytes already stored" in again
    cli("add", str(work / "pilot.ld"), "--version", "6.0.0.1000", "--models", "VVX410")
    cli("assign", "--version", "5.9.8.5760")
    assert len(list((site / "firmware").glob("*.ld"))) == 3  # stored once per sha256
    server = start_server(site)
    yield server, digests
    server.stop()


def _sha(server: Server, path: str, agent: str) -> str:
    out = Path(server.site) / "download.bin"
    curl(
        "--digest", "-u", "PlcmSpIp:PlcmSpIp", "-A", agent, "-o", str(out), f"{server.http}/{path}"
    )
    return hashlib.sha256(out.read_bytes()).hexdigest()


def test_ok_part_number_and_plain_name(firmware: tuple[Server, dict[str, str]]) -> None:
    server, digests = firmware
    assert _sha(server, f"{PART}.sip.ld", VVX) == digests["part"]
    assert _sha(server, "sip.ld", VVX) == digests["plain"]
    assert _sha(server, f"firmware/5.9.8.5760/{PART}.sip.ld", VVX) == digests["part"]
    ver = curl("--digest", "-u", "PlcmSpIp:PlcmSpIp", "-A", VVX, f"{server.http}/sip.ver")
    assert ver.stdout == "5.9.8.5760\n"


def test_fail_unassigned_model_or_unknown_part_404(firmware: tuple[Server, dict[str, str]]) -> None:
    server, _ = firmware
    for path, agent in (("sip.ld", TRIO), ("sip.ver", TRIO), ("3111-99999-001.sip.ld", VVX)):
        result = curl(
            "--digest", "-u", "PlcmSpIp:PlcmSpIp", "-A", agent, *CODE, f"{server.http}/{path}"
        )
        assert status_of(result) == 404, path


def test_ok_group_rollout_and_loop_flag(firmware: tuple[Server, dict[str, str]]) -> None:
    server, digests = firmware
    run_cli(
        "firmware",
        "assign",
        "--version",
        "6.0.0.1000",
        "--group",
        "pilot",
        "--site",
        str(server.site),
        check=True,
    )
    demo = server.site / "demo"
    cert = [
        "--cacert",
        str(server.site / "pki" / "ca.pem"),
        "--cert",
        str(demo / f"{DEMO_MAC}.pem"),
        "--key",
        str(demo / f"{DEMO_MAC}.key"),
    ]
    out = server.site / "pilot.bin"
    for attempt in range(3):
        curl(*cert, "-A", VVX, "-o", str(out), f"{server.https}/sip.ld")
        assert hashlib.sha256(out.read_bytes()).hexdigest() == digests["pilot"]
        shown = json.loads(
            run_cli(
                "device",
                "show",
                DEMO_MAC,
                "--format",
                "json",
                "--site",
                str(server.site),
                check=True,
            ).stdout
        )
        assert ("firmware-loop" in shown["flags"]) is (attempt == 2)
    text = run_cli("device", "show", DEMO_MAC, "--site", str(server.site), check=True).stdout
    assert "firmware loop" in text and "fetched 6.0.0.1000 3 times" in text
    outside = VVX.replace(" Type/", " (SN:0004f2000002) Type/")  # a phone not in the group
    other = curl("--digest", "-u", "PlcmSpIp:PlcmSpIp", "-A", outside, f"{server.http}/sip.ver")
    assert other.stdout == "5.9.8.5760\n"  # phones outside the group stay on the model's version
