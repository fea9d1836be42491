"""RFC 7616/2617 digest, server side, with the clock and randomness passed in."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoneprov.protocols.digest import (
    Credentials,
    DigestAuthority,
    NonceCounts,
    Verdict,
    ha1,
    parse_authorization,
)

SECRET = b"0123456789abcdef0123456789abcdef"
MASTER = "/000000000000.cfg"


def test_ok_rfc2617_example_vector() -> None:
    """RFC 2617 §3.5: Mufasa / "Circle Of Life" gives response 6629fae4..."""
    stored = ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    ha2 = hashlib.md5(b"GET:/dir/index.html").hexdigest()
    nonce = "dcd98b7102dd2f0e8b11d0f600bfb0c093"
    material = f"{stored}:{nonce}:00000001:0a4f113b:auth:{ha2}"
    assert hashlib.md5(material.encode()).hexdigest() == "6629fae49393a05397450978507c4ef1"


def _answer(
    authority: DigestAuthority,
    nonce: str,
    *,
    password: str = "PlcmSpIp",
    nc: str = "00000001",
    method: str = "GET",
    uri: str = "/000000000000.cfg",
) -> Credentials:
    stored = ha1("PlcmSpIp", authority.realm, password)
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    response = hashlib.md5(f"{stored}:{nonce}:{nc}:cn:auth:{ha2}".encode()).hexdigest()
    header = (
        f'Digest username="PlcmSpIp", realm="{authority.realm}", nonce="{nonce}", '
        f'uri="{uri}", qop=auth, nc={nc}, cnonce="cn", response="{response}", algorithm=MD5'
    )
    creds = parse_authorization(header)
    assert creds is not None
    return creds


@pytest.fixture
def authority() -> DigestAuthority:
    return DigestAuthority(SECRET, "phoneprov", lifetime=300)


STORED = ha1("PlcmSpIp", "phoneprov", "PlcmSpIp")


def test_ok_fresh_nonce(authority: DigestAuthority) -> None:
    nonce = authority.make_nonce(1000.0, b"salt-salt-12")
    assert authority.verify(_answer(authority, nonce), "GET", MASTER, STORED, 1001.0) is Verdict.OK


def test_fail_wrong_password(authority: DigestAuthority) -> None:
    nonce = authority.make_nonce(1000.0, b"s" * 12)
    creds = _answer(authority, nonce, password="nope")
    assert authority.verify(creds, "GET", MASTER, STORED, 1001.0) is Verdict.BAD_RESPONSE


def test_fail_method_swapped(authority: DigestAuthority) -> None:
    nonce = authority.make_nonce(1000.0, b"s" * 12)
    creds = _answer(authority, nonce, method="GET")
    assert authority.verify(creds, "PUT", MASTER, STORED, 1001.0) is Verdict.BAD_RESPONSE


def test_fail_expired_nonce_is_stale(authority: DigestAuthority) -> None:
    nonce = authority.make_nonce(1000.0, b"s" * 12)
    assert (
        authority.verify(_answer(authority, nonce), "GET", MASTER, STORED, 1301.0) is Verdict.STALE
    )


def test_fail_replayed_nc(authority: DigestAuthority) -> None:
    nonce = authority.make_nonce(1000.0, b"s" * 12)
    assert authority.verify(_answer(authority, nonce), "GET", MASTER, STORED, 1001.0) is Verdict.OK
    assert (
        authority.verify(_answer(authority, nonce), "GET", MASTER, STORED, 1002.0) is Verdict.REPLAY
    )
    later = _answer(authority, nonce, nc="00000002")
    assert authority.verify(later, "GET", MASTER, STORED, 1003.0) is Verdict.OK


def test_fail_nonce_from_another_secret(authority: DigestAuthority) -> None:
    other = DigestAuthority(b"x" * 32, "phoneprov")
    nonce = other.make_nonce(1000.0, b"s" * 12)
    assert (
        authority.verify(_answer(authority, nonce), "GET", MASTER, STORED, 1001.0)
        is Verdict.BAD_NONCE
    )


def test_fail_tampered_nonce(authority: DigestAuthority) -> None:
    nonce = authority.make_nonce(1000.0, b"s" * 12)
    tampered = ("A" if nonce[0] != "A" else "B") + nonce[1:]
    assert (
        authority.verify(_answer(authority, tampered), "GET", MASTER, STORED, 1001.0)
        is Verdict.BAD_NONCE
    )


def test_ok_challenge_has_stale_flag(authority: DigestAuthority) -> None:
    challenge = authority.challenge(5.0, b"s" * 12, stale=True)
    assert challenge.startswith('Digest realm="phoneprov", qop="auth", algorithm=MD5, nonce="')
    assert challenge.endswith("stale=true")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic dXNlcjpwYXNz",
        'Digest username="a"',
        'Digest username="a", realm="r", nonce="n", uri="/", response="x", qop=auth',
    ],
    ids=["fail/none", "fail/empty", "fail/basic", "fail/incomplete", "fail/qop-without-nc"],
)
def test_fail_unparseable_headers(header: str | None) -> None:
    assert parse_authorization(header) is None


@given(st.text(max_size=300))
def test_ok_parser_never_raises(text: str) -> None:
    parse_authorization("Digest " + text)


def test_ok_nonce_counts_are_bounded() -> None:
    counts = NonceCounts(capacity=3)
    for n in range(10):
        assert counts.accept(f"n{n}", 1)
    assert counts.accept("n0", 1)  # forgotten: the nonce's own expiry still bounds replay
    assert not counts.accept("n9", 1)


def _answer_without_qop(authority: DigestAuthority, nonce: str, uri: str = MASTER) -> Credentials:
    """An RFC 2069 style response: no qop, nc or cnonce."""
    ha2 = hashlib.md5(f"GET:{uri}".encode()).hexdigest()
    response = hashlib.md5(f"{STORED}:{nonce}:{ha2}".encode()).hexdigest()
    header = (
        f'Digest username="PlcmSpIp", realm="{authority.realm}", nonce="{nonce}", '
        f'uri="{uri}", response="{response}"'
    )
    creds = parse_authorization(header)
    assert creds is not None
    return creds


@pytest.mark.parametrize(
    "target",
    ["/0004f2000001-phone-secrets.cfg", "/000000000000.cfg?x=1", "/000000000000.CFG", "/"],
    ids=["fail/other-file", "fail/query-added", "fail/case", "fail/root"],
)
def test_fail_uri_other_than_request_target(authority: DigestAuthority, target: str) -> None:
    """RFC 7616 §3.4.6: the response names the resource; it opens only that one."""
    nonce = authority.make_nonce(1000.0, b"s" * 12)
    creds = _answer(authority, nonce)
    assert authority.verify(creds, "GET", target, STORED, 1001.0) is Verdict.URI_MISMATCH
    # The mismatch used nothing up: the same response still works where it belongs.
    assert authority.verify(creds, "GET", MASTER, STORED, 1002.0) is Verdict.OK


def test_ok_uri_with_query_matches_exactly(authority: DigestAuthority) -> None:
    nonce = authority.make_nonce(1000.0, b"s" * 12)
    creds = _answer(authority, nonce, uri="/initial.cfg?boot=1")
    assert authority.verify(creds, "GET", "/initial.cfg?boot=1", STORED, 1001.0) is Verdict.OK


def test_fail_no_qop_by_default(authority: DigestAuthority) -> None:
    nonce = authority.make_nonce(1000.0, b"s" * 12)
    creds = _answer_without_qop(authority, nonce)
    assert authority.verify(creds, "GET", MASTER, STORED, 1001.0) is Verdict.NO_QOP


def test_ok_no_qop_allowed_once_per_nonce() -> None:
    """Legacy mode: without a nonce count each nonce is good for one response only."""
    legacy = DigestAuthority(SECRET, "phoneprov", allow_without_qop=True)
    nonce = legacy.make_nonce(1000.0, b"s" * 12)
    creds = _answer_without_qop(legacy, nonce)
    assert legacy.verify(creds, "GET", MASTER, STORED, 1001.0) is Verdict.OK
    assert legacy.verify(creds, "GET", MASTER, STORED, 1002.0) is Verdict.REPLAY
    other = _answer_without_qop(legacy, nonce, uri="/initial.cfg")
    assert legacy.verify(other, "GET", "/initial.cfg", STORED, 1003.0) is Verdict.REPLAY
    # nor can the spent nonce be answered with qop afterwards
    with_qop = _answer(legacy, nonce, nc="00000001")
    assert legacy.verify(with_qop, "GET", MASTER, STORED, 1004.0) is Verdict.REPLAY


def test_fail_no_qop_on_a_nonce_already_counted() -> None:
    legacy = DigestAuthority(SECRET, "phoneprov", allow_without_qop=True)
    nonce = legacy.make_nonce(1000.0, b"s" * 12)
    assert legacy.verify(_answer(legacy, nonce), "GET", MASTER, STORED, 1001.0) is Verdict.OK
    creds = _answer_without_qop(legacy, nonce)
    assert legacy.verify(creds, "GET", MASTER, STORED, 1002.0) is Verdict.REPLAY


@pytest.mark.parametrize("nc", ["1", "0x000001", "-0000001", "000000001"])
def test_fail_nonce_count_not_8_hex_digits(authority: DigestAuthority, nc: str) -> None:
    """RFC 7616 §3.4: nc-value = 8LHEX."""
    nonce = authority.make_nonce(1000.0, b"s" * 12)
    creds = _answer(authority, nonce, nc=nc)
    assert authority.verify(creds, "GET", MASTER, STORED, 1001.0) is Verdict.MALFORMED
