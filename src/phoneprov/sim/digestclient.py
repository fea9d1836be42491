"""HTTP Digest, client side (RFC 7616 §3.4), as libcurl does it for the phone.

Pure: the caller passes the cnonce. The client keeps the server's nonce for
the whole boot and counts ``nc`` up, so only the first request of a boot pays
the 401 round trip (a stale nonce costs one more).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.request import parse_http_list, parse_keqv_list

_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


@dataclass(frozen=True, slots=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str  # MD5 or SHA-256
    qop: str | None  # "auth" or None (RFC 2069 style)
    opaque: str | None
    stale: bool


def parse_challenges(headers: list[str]) -> Challenge | None:
    """Return the first Digest challenge we can answer (MD5 or SHA-256), else None."""
    for header in headers:
        scheme, _, rest = header.strip().partition(" ")
        if scheme.lower() != "digest":
            continue
        fields = {
            key.lower(): value for key, value in parse_keqv_list(parse_http_list(rest)).items()
        }
        algorithm = fields.get("algorithm", "MD5").upper()
        if algorithm not in _HASHES or "nonce" not in fields:
            continue
        qops = [item.strip() for item in fields.get("qop", "").split(",") if item.strip()]
        if qops and "auth" not in qops:
            continue
        return Challenge(
            realm=fields.get("realm", ""),
            nonce=fields["nonce"],
            algorithm=algorithm,
            qop="auth" if qops else None,
            opaque=fields.get("opaque"),
            stale=fields.get("stale", "").lower() == "true",
        )
    return None


def authorization(
    challenge: Challenge, username: str, password: str, method: str, uri: str, nc: int, cnonce: str
) -> str:
    """Return the ``Authorization`` header value answering ``challenge``."""
    digest = _HASHES[challenge.algorithm]

    def h(text: str) -> str:
        return digest(text.encode()).hexdigest()

    ha1 = h(f"{username}:{challenge.realm}:{password}")
    ha2 = h(f"{method}:{uri}")
    parts = [
        f'username="{username}"',
        f'realm="{challenge.realm}"',
        f'nonce="{challenge.nonce}"',
        f'uri="{uri}"',
        f"algorithm={challenge.algorithm}",
    ]
    if challenge.qop:
        count = f"{nc:08x}"
        response = h(f"{ha1}:{challenge.nonce}:{count}:{cnonce}:auth:{ha2}")
        parts += [f'response="{response}"', "qop=auth", f"nc={count}", f'cnonce="{cnonce}"']
    else:
        parts.append(f'response="{h(f"{ha1}:{challenge.nonce}:{ha2}")}"')
    if challenge.opaque is not None:
        parts.append(f'opaque="{challenge.opaque}"')
    return "Digest " + ", ".join(parts)
