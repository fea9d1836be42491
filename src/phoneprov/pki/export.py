"""The CA chain for other systems and phones: PEM, DER, and PKCS#7 (``certnew.p7b``).

Microsoft's CA web enrolment pages serve the chain at ``/certsrv/certnew.p7b``
(PKCS#7, certificates only) and the root at ``/certsrv/certnew.cer``; CX700
phones and IIS-era guides use those URLs, so the web server serves these bytes.
"""

from __future__ import annotations

from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

ExportFormat = Literal["pem", "der", "p7b", "p7b-pem"]


def export_chain(chain: list[x509.Certificate], fmt: ExportFormat) -> bytes:
    """Return ``chain`` (root first) encoded as ``fmt``.

    ``pem``: concatenated PEM; ``der``: the root alone in DER (one certificate
    per DER file, like ``certnew.cer``); ``p7b``: DER PKCS#7 certificates-only
    (``certnew.p7b``); ``p7b-pem``: the same with the ``-----BEGIN PKCS7-----`` wrapper.
    """
    if fmt == "pem":
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    if fmt == "der":
        return chain[0].public_bytes(serialization.Encoding.DER)
    encoding = serialization.Encoding.DER if fmt == "p7b" else serialization.Encoding.PEM
    return pkcs7.serialize_certificates(chain, encoding)
