"""The HTTPS listener's TLS context: mutual TLS against the site's trust anchors.

Both an ECDSA P-256 and an RSA-2048 server certificate are loaded into one
context; OpenSSL picks per client (old phones only do RSA).
"""

from __future__ import annotations

import ssl
from pathlib import Path

from phoneprov.config import Settings
from phoneprov.errors import ConfigError

# OpenSSL's X509_V_FLAG_NO_CHECK_TIME: accept expired (and not-yet-valid) chains.
# The stdlib has no name for it; the setter passes the bits to OpenSSL as they are.
X509_V_FLAG_NO_CHECK_TIME = 0x200000

SERVER_CERT_STEMS = ("server-ec", "server-rsa")


def trust_bundle(trust_dir: Path) -> str:
    """All PEM certificates in the trust directory, concatenated."""
    pems = sorted(trust_dir.glob("*.pem")) if trust_dir.is_dir() else []
    if not pems:
        raise ConfigError(
            f"no trust anchors (*.pem) in {trust_dir}",
            "Run `phoneprov init` or `phoneprov trust add FILE.pem` to add device CAs.",
        )
    return "\n".join(path.read_text() for path in pems)


def server_context(settings: Settings) -> ssl.SSLContext:
    """The SSLContext for the HTTPS listener; ConfigError names a missing file."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if settings.https.legacy_tls:
        # 2009-era SoundPoint firmware speaks TLS 1.0 with old suites and SHA-1
        # chains; OpenSSL 3 refuses those below security level 0.
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # Phones open a new connection per file without resuming sessions (libcurl
    # per transfer); TLS 1.3 session tickets would be encrypted and never used.
    ctx.num_tickets = 0
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=trust_bundle(settings.trust_dir))
    if settings.https.tolerate_expired_device_certs:
        ctx.verify_flags |= X509_V_FLAG_NO_CHECK_TIME
    loaded = 0
    for stem in SERVER_CERT_STEMS:
        cert = settings.pki_dir / f"{stem}.pem"
        key = settings.pki_dir / f"{stem}.key"
        if cert.is_file() and key.is_file():
            ctx.load_cert_chain(cert, key)
            loaded += 1
    if not loaded:
        raise ConfigError(
            f"no server certificate in {settings.pki_dir} "
            "(server-ec.pem/.key or server-rsa.pem/.key)",
            "Run `phoneprov ca issue-server --fqdn <name>` or `phoneprov init`.",
        )
    return ctx
