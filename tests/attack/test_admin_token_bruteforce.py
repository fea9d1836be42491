"""Guessing admin API tokens and console passwords (issue 14: "Login failures and token
misuse go to the security log with the same back-off as phone accounts").

A client that sends ``[lockout] failures`` wrong bearer tokens is answered 429
with Retry-After, and while the lock lasts even a valid token from that address
is refused. Every failure is one security-log line naming the reason, never the
token guessed. A console login name carrying a newline and a forged log line is
written escaped on its one line, so log readers (fail2ban, SIEMs) cannot be fed
a fake entry.
"""

from __future__ import annotations

import re
import secrets
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneprov.config import load_settings
from tests.integration.adminkit import Api, live_api

FORGED = "phoneprov-security refused ip=203.0.113.9 proto=admin-api reason=ok"


@pytest.fixture
def api(site: Path) -> Iterator[Api]:
    with live_api(site) as running:
        yield running


def test_attack_token_guessing_is_locked_out_and_logged(api: Api) -> None:
    failures = load_settings(api.server.site).lockout.failures
    guesses = [secrets.token_urlsafe(32) for _ in range(failures)]
    for guess in guesses:
        status, _, _ = api.call("GET", "/api/v1/devices", token=guess)
        assert status == 401
    status, headers, body = api.call("GET", "/api/v1/devices", token=secrets.token_urlsafe(32))
    assert status == 429 and int(headers["Retry-After"]) >= 1, body
    # The lock is on the address: the guesser cannot slip a stolen token in meanwhile.
    status, _, _ = api.call("GET", "/api/v1/devices", "admin")
    assert status == 429
    log = api.server.wait_for_log("security", "reason=locked-out")
    refused = [line for line in log.splitlines() if "proto=admin-api" in line]
    assert sum("reason=bad-token" in line for line in refused) == failures
    assert any("reason=too-many-failures" in line for line in refused)
    assert all(guess not in log for guess in guesses)
    assert api.tokens["admin"] not in log


def test_attack_console_login_name_cannot_forge_log_lines(api: Api) -> None:
    hostile = f"mallory\n{FORGED}\x1b[2J"
    form = urllib.parse.urlencode({"name": hostile, "password": "wrong password"}).encode()
    status, _, _ = api.call(
        "POST",
        "/console/login",
        body=form,
        content_type="application/x-www-form-urlencoded",
    )
    assert status == 401
    log = api.server.wait_for_log("security", "reason=bad-password")
    # Every line is one the server wrote: a time stamp first, nothing injected.
    assert all(re.match(r"\d{4}-\d\d-\d\dT\S+Z phoneprov-", ln) for ln in log.splitlines())
    line = next(line for line in log.splitlines() if "reason=bad-password" in line)
    assert "\x1b" not in log and "\\x0a" in line and "\\x1b" in line
    assert re.search(r"identity=\S*mallory\\x0aphoneprov-security", line), line
    assert "wrong password" not in log
