"""Certificate compatibility lint: can each phone family parse this chain?

The rules come from SPEC §7 and the research notes: a CX700 / Windows CE phone
reads only SHA-1 signatures and RSA keys up to 2048 bits, anywhere in the
chain; old SoundPoint IP firmware wants RSA keys and SHA-1/SHA-256 (what the
provisioning projects report old firmware accepts); every family compares the
provisioning host name exactly when ``strictCertCommonNameValidation`` is on,
so wildcards fail; Polycom's own chain is four certificates deep, the deepest
the phones are known to handle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from phoneprov.pki.chain import common_name, is_self_issued, signed_by
from phoneprov.pki.keys import describe_public_key

Family = Literal["cx700", "soundpoint", "vvx", "trio"]
FAMILIES: tuple[str, ...] = get_args(Family)
MAX_CHAIN = 4
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class FamilyRules:
    """What one phone family can parse."""

    title: str
    hashes: frozenset[str]
    max_rsa_bits: int
    ec_keys: bool
    fix: str


RULES: dict[str, FamilyRules] = {
    "cx700": FamilyRules(
        "CX700 (Windows CE)",
        frozenset({"sha1"}),
        2048,
        False,
        "issue a legacy chain with `phoneprov ca init --profile legacy` for those phones only",
    ),
    "soundpoint": FamilyRules(
        "SoundPoint IP",
        frozenset({"sha1", "sha256"}),
        4096,
        False,
        "issue the chain with RSA keys and SHA-256: "
        "`phoneprov ca init --key rsa-2048 --hash sha256 --force`",
    ),
    "vvx": FamilyRules(
        "VVX",
        frozenset({"sha1", "sha256", "sha384", "sha512"}),
        4096,
        True,
        "issue the chain with `phoneprov ca init --key rsa-2048 --force`",
    ),
    "trio": FamilyRules(
        "Trio",
        frozenset({"sha1", "sha256", "sha384", "sha512"}),
        4096,
        True,
        "issue the chain with `phoneprov ca init --key rsa-2048 --force`",
    ),
}


@dataclass(frozen=True)
class Problem:
    """One thing a device family cannot use, and the fix."""

    device: str  # a family name, or "all" for problems every family has
    certificate: str
    problem: str
    fix: str

    def to_json(self) -> dict[str, str]:
        return {
            "device": self.device,
            "certificate": self.certificate,
            "problem": self.problem,
            "fix": self.fix,
        }


def _role(cert: x509.Certificate, index: int) -> str:
    if is_self_issued(cert):
        return "root"
    return "leaf" if index == 0 else "intermediate"


def _label(cert: x509.Certificate, index: int) -> str:
    return f"{_role(cert, index)} {common_name(cert) or cert.subject.rfc4514_string()}"


def _hash_name(cert: x509.Certificate) -> str:
    algorithm = cert.signature_hash_algorithm
    return algorithm.name if algorithm is not None else "none"


def hash_label(name: str) -> str:
    """Return ``sha256`` as administrators write it: ``SHA-256``."""
    return name.upper().replace("SHA", "SHA-", 1) if name.startswith("sha") else name.upper()


def _family_problems(family: str, chain: Sequence[x509.Certificate]) -> list[Problem]:
    rules = RULES[family]
    problems: list[Problem] = []
    for index, cert in enumerate(chain):
        key = cert.public_key()
        hash_name = _hash_name(cert)
        reasons: list[str] = []
        if hash_name not in rules.hashes:
            allowed = "/".join(hash_label(h) for h in sorted(rules.hashes))
            reasons.append(f"it reads only {allowed} signatures")
        if isinstance(key, rsa.RSAPublicKey) and key.key_size > rules.max_rsa_bits:
            reasons.append(f"it reads RSA keys up to {rules.max_rsa_bits} bits")
        elif not isinstance(key, rsa.RSAPublicKey) and not (
            rules.ec_keys and isinstance(key, ec.EllipticCurvePublicKey)
        ):
            reasons.append("it reads RSA keys only")
        if reasons:
            label = _label(cert, index)
            problems.append(
                Problem(
                    family,
                    label,
                    f"{label} is {describe_public_key(key)}/{hash_label(hash_name)}: "
                    f"a {rules.title} cannot read it ({'; '.join(reasons)})",
                    rules.fix,
                )
            )
    return problems


def _common_problems(chain: Sequence[x509.Certificate], now: datetime) -> list[Problem]:
    problems: list[Problem] = []
    if len(chain) > MAX_CHAIN:
        problems.append(
            Problem(
                "all",
                "chain",
                f"the chain has {len(chain)} certificates; phones are known to handle "
                f"{MAX_CHAIN} (Polycom's own chain)",
                "Issue the server certificate from a root directly (`phoneprov ca issue-server`).",
            )
        )
    for index, cert in enumerate(chain):
        label = _label(cert, index)
        if index + 1 < len(chain) and not signed_by(cert, chain[index + 1]):
            problems.append(
                Problem(
                    "all",
                    label,
                    f"{label} is not issued by the next certificate, "
                    f"{common_name(chain[index + 1])}: the chain is broken or out of order",
                    "List the certificates leaf first, then each issuer, with none missing.",
                )
            )
        if now > cert.not_valid_after_utc:
            problems.append(
                Problem(
                    "all",
                    label,
                    f"{label} expired on {cert.not_valid_after_utc.date().isoformat()}",
                    "Issue a new certificate (`phoneprov ca issue-server` or `phoneprov ca init`).",
                )
            )
        elif now < cert.not_valid_before_utc:
            problems.append(
                Problem(
                    "all",
                    label,
                    f"{label} is not valid before {cert.not_valid_before_utc.isoformat()}",
                    "Check the clock of the machine that issued it, and the phones' NTP.",
                )
            )
        public_key = cert.public_key()
        if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < MIN_RSA_BITS:
            problems.append(
                Problem(
                    "all",
                    label,
                    f"{label} has an RSA-{public_key.key_size} key; "
                    f"below {MIN_RSA_BITS} bits is breakable",
                    "Reissue it with --key rsa-2048.",
                )
            )
    if chain and not is_self_issued(chain[0]):
        problems += _leaf_name_problems(chain[0])
    return problems


def _leaf_name_problems(leaf: x509.Certificate) -> list[Problem]:
    label = _label(leaf, 0)
    cn = common_name(leaf)
    fix = "Issue it with `phoneprov ca issue-server --fqdn NAME` (CN and SAN set, no wildcard)."
    if cn is None:
        return [Problem("all", label, f"{label} has no common name (CN)", fix)]
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    problems: list[Problem] = []
    if any("*" in n for n in [cn, *names]):
        problems.append(
            Problem(
                "all",
                label,
                f"{label} uses a wildcard name; phones with "
                "strictCertCommonNameValidation reject it",
                fix,
            )
        )
    if names and cn.lower() not in (n.lower() for n in names):
        problems.append(Problem("all", label, f"{label}: the CN {cn!r} is not in the SAN", fix))
    return problems


def lint_chain(
    chain: Sequence[x509.Certificate], families: Sequence[str], *, now: datetime
) -> list[Problem]:
    """Return every problem ``chain`` (leaf first) has for ``families``; empty when clean."""
    problems = _common_problems(chain, now)
    for family in families:
        problems += _family_problems(family, chain)
    return problems
