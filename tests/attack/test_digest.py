"""Issue 13, finding 3: digest responses were not tied to the URL.

A digest header computed for ``/000000000000.cfg`` fetched the phone's
``<MAC>-phone-secrets.cfg`` (the server hashed the header's own ``uri`` and
never compared it with the request), and responses without ``qop`` skipped the
nonce-count replay guard, so one captured header worked again and again.

Now (RFC 7616 §3.4.6) the ``uri`` must be the request-target exactly as sent,
query included, or the answer is 400 with ``reason=digest-uri-mismatch``;
responses without ``qop`` are refused (``digest-no-qop``) unless
``[http] allow_digest_without_qop`` is on, and then each nonce answers once.

Which Polycom bootROMs, if any, send digest without ``qop`` is not established
from a source: the stored Polycom guides we searched do not say. The phones'
HTTP client is libcurl (the UC Software 3.3.0 Administrator's Guide,
1725-11530-330 Rev. A, lists Daniel Stenberg's copyright among its open-source
notices), and libcurl answers ``qop="auth"`` with ``qop=auth``, as curl does
here. Each ``fail/`` test below failed on the code before the fix.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serverkit import DEMO_MAC, Server, curl, edit_settings, run_cli, start_server

MASTER = "/000000000000.cfg"
SECRETS = f"/{DEMO_MAC}-phone-secrets.cfg"
DEVICE_PASSWORD = "device-account-pw"  # the demo phone's own digest account (user = MAC)
REALM = "phoneprov"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def fetch(server: Server, target: str, *headers: str) -> tuple[int, str, str]:
    """GET ``target`` with curl and exactly these headers: (status, headers, body)."""
    args = [arg for header in headers for arg in ("-H", header)]
    result = curl("-D", "-", *args, f"{server.http}{target}")
    head, _, body = result.stdout.partition("\n\n")  # text mode: CRLF read as LF
    status = re.match(r"HTTP/1\.1 (\d{3})", head)
    assert status, result.stdout + result.stderr
    return int(status.group(1)), head, body


def nonce(server: Server) -> str:
    """A fresh nonce from the server's 401 challenge."""
    status, head, _ = fetch(server, MASTER)
    found = re.search(r'nonce="([^"]+)"', head)
    assert status == 401 and found, head
    return found.group(1)


def authorization(
    user: str, password: str, nonce: str, uri: str, *, qop: bool = True, nc: str = "00000001"
) -> str:
    """The header a client that knows the password sends for ``GET uri`` (RFC 7616 §3.4.1)."""
    ha1 = md5(f"{user}:{REALM}:{password}")
    ha2 = md5(f"GET:{uri}")
    fields = f'username="{user}", realm="{REALM}", nonce="{nonce}", uri="{uri}", algorithm=MD5'
    if not qop:  # RFC 2069 style
        return f'Authorization: Digest {fields}, response="{md5(f"{ha1}:{nonce}:{ha2}")}"'
    response = md5(f"{ha1}:{nonce}:{nc}:phone-cnonce:auth:{ha2}")
    return (
        f"Authorization: Digest {fields}, qop=auth, nc={nc}, "
        f'cnonce="phone-cnonce", response="{response}"'
    )


@pytest.fixture
def device_server(site: Path) -> Iterator[Server]:
    """The demo site with a digest account for the demo phone, which may read its secrets."""
    run_cli(
        "account", "set", DEMO_MAC, "--kind", "device", "--password", DEVICE_PASSWORD,
        "--site", str(site), check=True,
    )  # fmt: skip
    running = start_server(site)
    yield running
    running.stop()


@pytest.fixture
def legacy_server(site: Path) -> Iterator[Server]:
    """The demo site accepting digest without qop (the setting did not exist before)."""
    edit_settings(site, http={"allow_digest_without_qop": True})
    running = start_server(site)
    yield running
    running.stop()


@pytest.mark.parametrize(
    "target",
    [SECRETS, f"{MASTER}?x=1"],
    ids=["fail/master-header-on-secrets", "fail/master-header-with-query"],
)
def test_fail_header_for_one_url_opens_no_other(device_server: Server, target: str) -> None:
    """A header computed for the master file, sent first on another target, is refused
    with 400 (RFC 7616 §3.4.6) and logged; it still works where it was computed for."""
    header = authorization(DEMO_MAC, DEVICE_PASSWORD, nonce(device_server), MASTER)
    status, _, body = fetch(device_server, target, header)
    assert status == 400
    assert "reg.1.auth.password" not in body and "demo-sip-password" not in body
    log = device_server.wait_for_log("security", "reason=digest-uri-mismatch")
    assert DEVICE_PASSWORD not in log
    assert fetch(device_server, MASTER, header)[0] == 200


def test_ok_device_account_reads_its_secrets_with_a_header_for_them(
    device_server: Server,
) -> None:
    """The bound header is no obstacle to the phone itself."""
    header = authorization(DEMO_MAC, DEVICE_PASSWORD, nonce(device_server), SECRETS)
    status, _, body = fetch(device_server, SECRETS, header)
    assert status == 200 and "demo-sip-password" in body


def test_fail_no_qop_refused_by_default(server: Server) -> None:
    """Without qop there is no nonce count to stop a replay: refused unless allowed
    (before, one captured header worked every time)."""
    header = authorization("PlcmSpIp", "PlcmSpIp", nonce(server), "/initial.cfg", qop=False)
    for _ in range(5):
        status, head, _ = fetch(server, "/initial.cfg", header)
        assert status == 401
        assert 'qop="auth"' in head  # the challenge says what to send instead
    log = server.wait_for_log("security", "reason=digest-no-qop")
    assert log.count("reason=digest-no-qop") == 5


def test_fail_no_qop_header_answers_once_when_allowed(legacy_server: Server) -> None:
    """Legacy mode: a response without qop uses its nonce up; a copy gets a stale
    challenge (a real legacy client retries with the new nonce) and a log line."""
    header = authorization("PlcmSpIp", "PlcmSpIp", nonce(legacy_server), "/initial.cfg", qop=False)
    assert fetch(legacy_server, "/initial.cfg", header)[0] == 200
    for _ in range(3):
        status, head, _ = fetch(legacy_server, "/initial.cfg", header)
        assert status == 401 and "stale=true" in head
    log = legacy_server.wait_for_log("security", "reason=digest-replay")
    assert log.count("reason=digest-replay") == 3


@pytest.mark.parametrize(
    ("legacy", "on_master"),
    [(False, 401), (True, 200)],
    ids=["fail/default", "fail/legacy-mode"],
)
def test_fail_captured_no_qop_header_never_reaches_secrets(
    site: Path, legacy: bool, on_master: int
) -> None:
    """The attack as found: a no-qop header the phone sent for its master file, replayed
    five times on its secrets file (before: five 200s with the SIP passwords)."""
    run_cli(
        "account", "set", DEMO_MAC, "--kind", "device", "--password", DEVICE_PASSWORD,
        "--site", str(site), check=True,
    )  # fmt: skip
    if legacy:
        edit_settings(site, http={"allow_digest_without_qop": True})
    server = start_server(site)
    try:
        header = authorization(DEMO_MAC, DEVICE_PASSWORD, nonce(server), MASTER, qop=False)
        assert fetch(server, MASTER, header)[0] == on_master
        answers = [fetch(server, SECRETS, header) for _ in range(5)]
        assert [status for status, _, _ in answers] == [400] * 5
        assert not any("demo-sip-password" in body for _, _, body in answers)
    finally:
        server.stop()


def test_fail_replayed_nonce_count_refused(server: Server) -> None:
    """With qop: the same (nonce, nc) twice; the copy is refused (RFC 7616 §3.4)."""
    header = authorization("PlcmSpIp", "PlcmSpIp", nonce(server), "/initial.cfg")
    assert fetch(server, "/initial.cfg", header)[0] == 200
    assert fetch(server, "/initial.cfg", header)[0] == 401
    server.wait_for_log("security", "reason=digest-replay")


def test_ok_curl_as_the_phone_with_a_query(server: Server) -> None:
    """curl (libcurl, as in the phones) puts the query in uri and sends qop=auth."""
    result = curl(
        "--digest", "-u", "PlcmSpIp:PlcmSpIp", "-o", "/dev/null", "-w", "%{http_code}",
        f"{server.http}/initial.cfg?boot=1",
    )  # fmt: skip
    assert result.stdout == "200", result.stderr
