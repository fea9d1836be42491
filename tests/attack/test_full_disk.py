"""Issue 13, finding 5: a full disk left debris and lost security events.

A PUT on a full disk answered 500 and left its ``.part`` file (removing it
failed on the full disk), later uploads left more, ``security.log`` lost 30 of
30 failed logins while its disk was full, and a server killed mid-PUT left a
``.part`` no restart removed. The disks here are small tmpfs mounts (the tests
run as root, as ``make test`` does), unmounted when each test ends.
"""

from __future__ import annotations

import contextlib
import ftplib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.serverkit import DEMO_MAC, Server, curl, edit_settings, start_server, status_of

PUBLIC = ("--digest", "-u", "PlcmSpIp:PlcmSpIp")
CODE = ("-o", "/dev/null", "-w", "%{http_code}")
LOG = f"{DEMO_MAC}-boot.log"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``folder`` (created), unmounted afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def fill(folder: Path, leave: int = 0) -> Path:
    """Fill the disk holding ``folder`` until ``leave`` bytes (or none) are free."""
    filler = folder / "filler.bin"
    with filler.open("wb", buffering=0) as out:  # unbuffered: close has nothing to flush
        stats = os.statvfs(folder)
        out.write(b"\0" * max(0, stats.f_bavail * stats.f_frsize - leave))
        while not leave:
            try:
                out.write(b"\0" * 4096)
            except OSError:
                break  # full, as wanted
    return filler


def put(server: Server, name: str, body: Path) -> int:
    return status_of(curl(*PUBLIC, *CODE, "-T", str(body), f"{server.http}/logs/{name}"))


def ftp_store(server: Server, name: str, data: bytes) -> str:
    """STOR as a phone does (public account); return the server's reply to the transfer.

    A server that gives up mid-transfer closes the data connection: sending then fails,
    and the reply on the control connection says why."""
    client = ftplib.FTP()
    client.connect("127.0.0.1", server.ports["ftp"], timeout=10)
    try:
        client.login("PlcmSpIp", "PlcmSpIp")
        client.voidcmd("TYPE I")
        # The server may close the data connection early: its reply follows.
        with client.transfercmd(f"STOR logs/{name}") as conn, contextlib.suppress(OSError):
            conn.sendall(data)
        try:
            return client.voidresp()
        except ftplib.Error as error:
            return str(error)
    finally:
        client.close()


def parts(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.part"))


def wait_for(probe: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.05)


def test_fail_put_on_a_full_disk_answers_507_and_leaves_nothing(site: Path, tmp_path: Path) -> None:
    """Default settings: the disk is below [uploads] free_space_reserve, so the upload is
    refused before a byte is stored; the old code answered 500 and kept the .part."""
    body = tmp_path / "boot.log"
    body.write_bytes(b"bootrom log line\n" * 60_000)  # 1 MiB
    with small_disk(site / "boot" / "logs", "2m") as logs:
        fill(logs, leave=256 * 1024)
        server = start_server(site)
        try:
            assert [put(server, LOG, body) for _ in range(3)] == [507, 507, 507]
            assert parts(logs) == [] and not (logs / LOG).exists()
            line = server.wait_for_log("security", "reason=upload-failed")
            assert f'path="logs/{LOG}"' in line and "free_space_reserve" in line
            server.wait_for_log("access", "status=507")
        finally:
            server.stop()


def test_fail_disk_filling_mid_upload_removes_the_partial_file(site: Path, tmp_path: Path) -> None:
    """No reserve: the disk really runs out during the write (HTTP 507, FTP 452), the
    partial file goes first, and uploads work again once there is room."""
    edit_settings(site, uploads={"free_space_reserve": "0"})
    body = tmp_path / "boot.log"
    body.write_bytes(b"bootrom log line\n" * 60_000)  # 1 MiB
    with small_disk(site / "boot" / "logs", "2m") as logs:
        filler = fill(logs, leave=256 * 1024)
        server = start_server(site, protocols=("http", "https", "ftp"))
        try:
            assert put(server, LOG, body) == 507
            assert parts(logs) == []
            assert ftp_store(server, LOG, body.read_bytes()).startswith("452 ")
            assert parts(logs) == []
            server.wait_for_log("security", "disk\\x20is\\x20full")
            filler.unlink()
            assert put(server, LOG, body) == 204
            assert (logs / LOG).read_bytes() == body.read_bytes()
        finally:
            server.stop()


def test_fail_kill_9_mid_put_leaves_no_part_after_restart(site: Path, tmp_path: Path) -> None:
    body = tmp_path / "boot.log"
    body.write_bytes(b"bootrom log line\n" * 12_000)  # 200 KB, sent at 20 KB/s
    logs = site / "boot" / "logs"
    server = start_server(site)
    upload = subprocess.Popen(
        ["curl", "-sS", *PUBLIC, *CODE, "--limit-rate", "20K", "-T", str(body),
         f"{server.http}/logs/{LOG}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: any(p.stat().st_size for p in parts(logs)), "a partial upload")
        server.stop(signal.SIGKILL)
    finally:
        upload.kill()
        upload.wait()
    assert parts(logs), "kill -9 mid-PUT leaves the partial file"
    restarted = start_server(site)
    try:
        assert parts(logs) == []
        assert any("partial upload" in line for line in restarted.output)
    finally:
        restarted.stop()


def test_fail_security_events_survive_a_full_log_disk(site: Path) -> None:
    """Failed logins while the log disk is full are written once it has room, with a line
    saying how many were late; the old code lost them."""
    with small_disk(site / "log", "1m") as log_dir:
        server = start_server(site)
        try:
            filler = fill(log_dir)
            for n in range(60):
                result = curl(
                    "--digest", "-u", f"probe-{n}:wrong", *CODE, f"{server.http}/initial.cfg"
                )
                assert status_of(result) == 401
            filler.unlink()
            curl("--digest", "-u", "probe-last:wrong", *CODE, f"{server.http}/initial.cfg")
            text = server.wait_for_log("security", "phoneprov-security log-delayed")
            wait_for(lambda: "identity=user:probe-last" in server.security_log(), "last line")
            text = server.security_log()
            missing = [n for n in range(60) if f"identity=user:probe-{n} " not in text]
            assert missing == []
            report = next(line for line in text.splitlines() if " log-delayed " in line)
            assert "file=security.log" in report and "dropped=0" in report
            late = re.search(r" lines=(\d+) ", report)
            assert late is not None and int(late.group(1)) > 0, report
        finally:
            server.stop()
