"""The SHA-1 signer for the legacy chain: the system ``openssl ca`` command.

``cryptography`` 48 and later refuse SHA-1 signatures (``UnsupportedAlgorithm``),
yet CX700 / Windows CE phones cannot parse anything else (SPEC §7). This module
is the only place phoneprov runs ``openssl``; see
docs/decisions/0006-sha1-legacy-chain-via-openssl.md. Keys are still generated with
``cryptography``; openssl only signs. ``openssl ca`` is used (not ``req -x509``
or ``x509 -req``) because it is the one OpenSSL 3.0 command that takes exact
start and end dates and a given serial.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from phoneprov.errors import CertificateError
from phoneprov.pki.files import write_atomic, write_private
from phoneprov.pki.keys import PrivateKey, private_pem
from phoneprov.pki.profiles import CertSpec, Usage
from phoneprov.pki.signer import subject_name

OPENSSL_TIMEOUT = 30.0


def openssl_binary() -> str:
    """Return the path of the ``openssl`` command; raise CertificateError if it is missing."""
    path = shutil.which("openssl")
    if path is None:
        raise CertificateError(
            "the legacy SHA-1 chain needs the `openssl` command, which is not installed",
            "Install it (Debian: apt-get install openssl) and run the command again.",
        )
    return path


def _asn1_time(when: datetime) -> str:
    # RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
    when = when.astimezone(UTC)
    return when.strftime("%y%m%d%H%M%SZ" if when.year < 2050 else "%Y%m%d%H%M%SZ")


def _extensions(spec: CertSpec, self_signed: bool) -> str:
    lines = ["subjectKeyIdentifier = hash"]
    if spec.usage is Usage.ROOT:
        lines += [
            "basicConstraints = critical, CA:TRUE",
            "keyUsage = critical, digitalSignature, keyCertSign, cRLSign",
        ]
    else:
        usages = "digitalSignature, keyEncipherment" if spec.rsa_key else "digitalSignature"
        lines += ["basicConstraints = critical, CA:FALSE", f"keyUsage = critical, {usages}"]
    if not self_signed:
        lines.append("authorityKeyIdentifier = keyid")
    if spec.usage is Usage.SERVER:
        names = [f"DNS:{n}" for n in spec.sans.dns] + [f"IP:{ip}" for ip in spec.sans.ips]
        lines += [f"subjectAltName = {', '.join(names)}", "extendedKeyUsage = serverAuth"]
    elif spec.usage is Usage.DEVICE:
        lines.append("extendedKeyUsage = clientAuth")
    return "\n".join(lines)


def _config(work: Path, spec: CertSpec, self_signed: bool) -> str:
    return f"""[ca]
default_ca = legacy

[legacy]
database = {work / "index.txt"}
new_certs_dir = {work}
serial = {work / "serial"}
policy = policy_cn
unique_subject = no
email_in_dn = no
copy_extensions = none
preserve = yes

[policy_cn]
commonName = supplied

[ext]
{_extensions(spec, self_signed)}
"""


def sign_legacy(
    spec: CertSpec,
    subject_key: PrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: PrivateKey,
) -> x509.Certificate:
    """Return the certificate ``spec`` describes, signed with SHA-1 by ``issuer_key``.

    ``issuer`` None makes a self-signed root (``subject_key`` must be ``issuer_key``).
    The subject key only signs the throwaway request openssl reads the subject
    and public key from. Raises CertificateError if openssl fails.
    """
    binary = openssl_binary()
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject_name(spec.common_name))
        .sign(subject_key, hashes.SHA256())
    )
    with tempfile.TemporaryDirectory(prefix="phoneprov-legacy-") as tmp:
        work = Path(tmp)
        (work / "index.txt").write_bytes(b"")
        (work / "serial").write_text(f"{spec.serial:040X}\n")
        (work / "openssl.cnf").write_text(_config(work, spec, issuer is None))
        write_atomic(work / "req.pem", request.public_bytes(serialization.Encoding.PEM))
        write_private(work / "issuer.key", private_pem(issuer_key))
        command = [
            binary, "ca", "-batch", "-notext", "-config", str(work / "openssl.cnf"),
            "-extensions", "ext", "-md", "sha1",
            "-startdate", _asn1_time(spec.not_before), "-enddate", _asn1_time(spec.not_after),
            "-keyfile", str(work / "issuer.key"),
            "-in", str(work / "req.pem"), "-out", str(work / "cert.pem"),
        ]  # fmt: skip
        if issuer is None:
            command.append("-selfsign")
        else:
            write_atomic(work / "issuer.pem", issuer.public_bytes(serialization.Encoding.PEM))
            command += ["-cert", str(work / "issuer.pem")]
        result = subprocess.run(command, capture_output=True, timeout=OPENSSL_TIMEOUT, check=False)
        if result.returncode != 0:
            lines = result.stderr.decode(errors="replace").strip().splitlines()
            detail = lines[-1] if lines else f"exit status {result.returncode}"
            raise CertificateError(
                f"openssl could not sign the legacy certificate for {spec.common_name!r}: {detail}",
                "Check that `openssl version` is 3.0 or later and that SHA-1 signing is "
                "not disabled in the system openssl.cnf.",
            )
        return x509.load_pem_x509_certificate((work / "cert.pem").read_bytes())
