"""Certificate profiles: server names, lifetimes, slots (pure)."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import pytest

from phoneprov.errors import InputError
from phoneprov.pki.profiles import (
    CertSpec,
    Usage,
    check_days,
    check_key_type,
    check_slot,
    server_names,
    validity,
)


@pytest.mark.parametrize(
    ("names", "cn", "dns", "ips"),
    [
        (["prov.example.com"], "prov.example.com", ("prov.example.com",), ()),
        (["PROV.Example.com."], "prov.example.com", ("prov.example.com",), ()),
        (["prov", "192.0.2.10", "prov"], "prov", ("prov",), ("192.0.2.10",)),
        (
            ["2001:db8::1", "prov.example.com"],
            "2001:db8::1",
            ("prov.example.com",),
            ("2001:db8::1",),
        ),
    ],
    ids=["ok/fqdn", "ok/case-and-trailing-dot", "ok/duplicates-dropped", "ok/ipv6-first"],
)
def test_server_names_ok(
    names: list[str], cn: str, dns: tuple[str, ...], ips: tuple[str, ...]
) -> None:
    common_name, sans = server_names(names)
    assert common_name == cn
    assert sans.dns == dns
    assert sans.ips == tuple(ipaddress.ip_address(ip) for ip in ips)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("*.example.com", "wildcard"),
        ("prov_1.example.com", "not a DNS name"),
        ("-prov.example.com", "not a DNS name"),
        ("prov..example.com", "not a DNS name"),
        ("999.1.1.1", "neither an IP address nor a DNS name"),
        ("a" * 64 + ".example.com", "not a DNS name"),
        ("", "empty"),
    ],
    ids=[
        "fail/wildcard",
        "fail/underscore",
        "fail/leading-hyphen",
        "fail/empty-label",
        "fail/bad-ipv4",
        "fail/label-over-63",
        "fail/empty",
    ],
)
def test_server_names_refused_with_reason(name: str, words: str) -> None:
    with pytest.raises(InputError) as caught:
        server_names([name])
    assert words in str(caught.value)
    assert name in str(caught.value) or not name


def test_fail_no_names() -> None:
    with pytest.raises(InputError, match="no server name"):
        server_names([])


def test_fail_cn_over_64_characters_names_the_limit() -> None:
    long_name = ".".join(["a" * 30] * 3)
    with pytest.raises(InputError, match="allows 1 to 64"):
        CertSpec(Usage.SERVER, long_name, 1, *validity(datetime.now(UTC), 10))


def test_validity_backdates_and_checks_days() -> None:
    now = datetime(2030, 1, 1, 12, 0, 0, 123, tzinfo=UTC)
    start, end = validity(now, 10)
    assert start == datetime(2030, 1, 1, 11, 0, 0, tzinfo=UTC)
    assert end == datetime(2030, 1, 11, 12, 0, 0, tzinfo=UTC)
    for bad in (0, -1, 36501):
        with pytest.raises(InputError, match="out of range"):
            check_days(bad)


def test_key_types_and_slots() -> None:
    assert check_key_type("rsa-3072") == "rsa-3072"
    with pytest.raises(InputError, match="dsa-1024") as caught:
        check_key_type("dsa-1024")
    assert "ec-p256" in caught.value.hint
    assert check_slot("app6") == "app6"
    with pytest.raises(InputError, match="platform3") as caught:
        check_slot("platform3")
    assert "platform1" in caught.value.hint
