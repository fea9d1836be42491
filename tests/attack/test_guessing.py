"""Issue 13, finding 7: no brake on password guessing.

300 wrong digest passwords went by in 0.4 s and then the right one worked; FTP
took 6.6 guesses a second over 20 connections. Now wrong passwords are counted
per (client address, account) (provisioning/lockout.py): after ``[lockout]
failures`` of them (10) within ``window`` seconds (300) that pair is refused,
HTTP with 429 and ``Retry-After`` (RFC 6585 §4), FTP with 421 (RFC 959 §4.2),
even with the right password, and the security log says ``too-many-failures``
once and ``locked-out`` per refused attempt.

What must not happen is tested too: the public account is shared by every
phone, so a lock at one address never slows another address, and phones with
the right password behind one NAT address are never refused for their number.
Loopback gives two addresses, 127.0.0.1 and 127.0.0.2 (curl ``--interface``,
ftplib ``source_address``). Each ``fail/`` test failed on the code before.
"""

from __future__ import annotations

import ftplib
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.serverkit import Server, curl, run_cli, start_server

ACCOUNT, PASSWORD = "backup", "backup-right-pw"  # a site account (an administrator's tools)
FAILURES = 10  # [lockout] failures, the default
OTHER_ADDRESS = "127.0.0.2"


@pytest.fixture
def guarded(site: Path) -> Iterator[Server]:
    """The demo site, default settings, a site account, all four listeners."""
    run_cli(
        "account", "set", ACCOUNT, "--kind", "site", "--password", PASSWORD,
        "--site", str(site), check=True,
    )  # fmt: skip
    running = start_server(site, protocols=("http", "https", "ftp"))
    yield running
    running.stop()


def digest_get(
    server: Server, user: str, password: str, *paths: str, source: str = "127.0.0.1"
) -> list[tuple[int, str]]:
    """One curl (as the phone: libcurl) fetching ``paths`` with digest from ``source``:
    (status, Retry-After or "") of each final response."""
    args: list[str] = []
    for path in paths:
        args += ["-o", "/dev/null", f"{server.http}{path}"]
    result = curl(
        "--interface", source, "--digest", "-u", f"{user}:{password}",
        "-w", "%{http_code} %header{retry-after}\n", *args, timeout=120,
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert len(lines) == len(paths), result.stdout + result.stderr
    return [(int(line[:3]), line[4:].strip()) for line in lines]


def guess(server: Server, user: str, count: int, source: str = "127.0.0.1") -> list[int]:
    """``count`` wrong passwords for ``user``, one curl each, from ``source``."""
    return [
        digest_get(server, user, f"wrong-{n}", "/initial.cfg", source=source)[0][0]
        for n in range(count)
    ]


def test_fail_http_guessing_is_braked(guarded: Server) -> None:
    """Ten wrong passwords, then even the right one gets 429 with Retry-After."""
    assert guess(guarded, ACCOUNT, FAILURES) == [401] * (FAILURES - 1) + [429]
    [(status, retry_after)] = digest_get(guarded, ACCOUNT, PASSWORD, "/initial.cfg")
    assert status == 429
    assert 1 <= int(retry_after) <= 60  # [lockout] backoff, the first lock
    log = guarded.wait_for_log("security", "reason=locked-out")
    assert log.count("reason=too-many-failures") == 1
    assert re.search(r"refused ip=127\.0\.0\.1 proto=http identity=user:backup ", log)
    assert "wrong-" not in log and PASSWORD not in log  # no password reaches the log


def test_ok_boot_storm_passes_at_an_address_locked_for_another_account(
    guarded: Server,
) -> None:
    """300 requests with the right public password from the address that is locked out
    for the site account: successes never count, so volume alone refuses nothing."""
    assert guess(guarded, ACCOUNT, FAILURES)[-1] == 429
    for _ in range(3):  # three phones, 100 requests each, over one address
        answers = digest_get(
            guarded, "PlcmSpIp", "PlcmSpIp", *["/000000000000.cfg", "/initial.cfg"] * 50
        )
        assert [status for status, _ in answers] == [200] * 100
    assert digest_get(guarded, ACCOUNT, PASSWORD, "/initial.cfg")[0][0] == 429


def test_ok_wrong_password_storm_at_one_address_does_not_block_another(
    guarded: Server,
) -> None:
    """A storm of wrong public passwords from 127.0.0.1 locks 127.0.0.1 out of the public
    account, and only it: phones at 127.0.0.2 keep booting."""
    answers = digest_get(guarded, "PlcmSpIp", "wrong", *["/initial.cfg"] * 30)
    assert [status for status, _ in answers] == [401] * (FAILURES - 1) + [429] * 21
    assert digest_get(guarded, "PlcmSpIp", "PlcmSpIp", "/initial.cfg")[0][0] == 429
    other = digest_get(guarded, "PlcmSpIp", "PlcmSpIp", "/initial.cfg", source=OTHER_ADDRESS)
    assert other == [(200, "")]
    log = guarded.security_log()
    assert "ip=127.0.0.2" not in log


def ftp_login(server: Server, user: str, password: str, source: str = "127.0.0.1") -> str:
    """Log in with ftplib; return the server's reply to PASS (or the error it raised)."""
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", server.ports["ftp"], timeout=20, source_address=(source, 0))
        try:
            return ftp.login(user, password)
        except (ftplib.error_perm, ftplib.error_temp) as error:
            return str(error)


def test_fail_ftp_guessing_gets_421(guarded: Server) -> None:
    """Ten wrong FTP passwords over ten connections at once, then the right one: 421 and
    the connection closed. The same login from another address works."""
    with ThreadPoolExecutor(max_workers=FAILURES) as pool:
        replies = list(
            pool.map(lambda n: ftp_login(guarded, ACCOUNT, f"wrong-{n}"), range(FAILURES))
        )
    assert all(reply.startswith("530") for reply in replies), replies
    assert ftp_login(guarded, ACCOUNT, PASSWORD).startswith("421")
    assert ftp_login(guarded, ACCOUNT, PASSWORD, source=OTHER_ADDRESS).startswith("230")
    log = guarded.wait_for_log("security", "reason=locked-out")
    assert re.search(r"refused ip=127\.0\.0\.1 proto=ftp identity=user:backup ", log)
    assert log.count("reason=too-many-failures") == 1
    assert "wrong-" not in log and PASSWORD not in log
