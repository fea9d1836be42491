"""Compatibility lint: what each phone family can parse."""

from __future__ import annotations

import datetime as dt

import pytest
from tests.pkitools import FactoryPki, make_ca, make_device

from phoneprov.pki.chain import order_chain
from phoneprov.pki.lint import FAMILIES, lint_chain
from phoneprov.pki.trust import polycom_chain

NOW = dt.datetime.now(dt.UTC)


def test_fail_cx700_cannot_read_rsa4096_sha256_root() -> None:
    """The real Polycom root is RSA-4096/SHA-256: exactly what a CX700 cannot parse."""
    root = polycom_chain()[0]
    problems = lint_chain([root], ["cx700"], now=NOW)
    assert len(problems) == 1
    problem = problems[0]
    assert problem.device == "cx700"
    assert "root Polycom Root CA is RSA-4096/SHA-256: a CX700 (Windows CE) cannot read it" in (
        problem.problem
    )
    assert "phoneprov ca init --profile legacy" in problem.fix


@pytest.mark.parametrize("family", ["soundpoint", "vvx", "trio"])
def test_ok_polycom_root_for_polycom_phones(family: str) -> None:
    assert lint_chain([polycom_chain()[0]], [family], now=NOW) == []


def test_fail_ec_root_for_soundpoint_only() -> None:
    root = make_ca("EC Root", kind="ec")
    assert [p.device for p in lint_chain([root.cert], FAMILIES, now=NOW)] == ["cx700", "soundpoint"]


def test_fail_expired_and_broken_chain(factory: FactoryPki) -> None:
    old = make_ca("Old Root", kind="rsa", not_before=NOW - dt.timedelta(days=30), days=10)
    stranger = make_ca("Stranger", kind="rsa")
    leaf = make_device(old, "prov.example.com", kind="rsa")
    problems = lint_chain([leaf.cert, stranger.cert], ["vvx"], now=NOW)
    texts = " | ".join(p.problem for p in problems)
    assert "is not issued by the next certificate" in texts
    assert "expired on" not in texts  # the leaf itself is still valid
    problems = lint_chain([old.cert], ["vvx"], now=NOW)
    assert [p.problem.split(" expired")[0] for p in problems] == ["root Old Root"]


def test_fail_wildcard_and_cn_not_in_san(factory: FactoryPki) -> None:
    leaf = make_device(factory.issuing, "*.example.com", kind="rsa")
    problems = lint_chain([leaf.cert], ["trio"], now=NOW)
    assert any("wildcard" in p.problem for p in problems)


def test_fail_chain_longer_than_polycom_chain(factory: FactoryPki) -> None:
    extra = make_ca("Extra CA", factory.issuing, kind="rsa")
    leaf = make_device(extra, "prov.example.com", kind="rsa")
    chain = order_chain(
        [factory.root.cert, leaf.cert, factory.policy.cert, extra.cert, factory.issuing.cert]
    )
    assert chain[0] == leaf.cert and chain[-1] == factory.root.cert
    problems = lint_chain(chain, ["vvx"], now=NOW)
    assert [p.problem for p in problems] == [
        "the chain has 5 certificates; phones are known to handle 4 (Polycom's own chain)"
    ]


def test_ok_clean_modern_rsa_chain(factory: FactoryPki) -> None:
    leaf = make_device(factory.issuing, "prov.example.com", kind="rsa")
    chain = [leaf.cert, factory.issuing.cert, factory.policy.cert, factory.root.cert]
    assert lint_chain(chain, ["soundpoint", "vvx", "trio"], now=NOW) == []
