"""Our certificate authority on disk.

Layout of ``<pki_dir>``: ``ca.pem`` (root certificate), ``ca.key`` (0600),
``crl.pem`` (rewritten on every revocation, for tools that read a file). What
the CA issued and revoked is in its ``CertIndex`` (``pki/index.py``): the site
database when the CA is loaded through a store (``provisioning/authority.py``),
else ``index.json`` and ``issued/<SERIAL>.pem`` in ``<pki_dir>``. The legacy
SHA-1 chain for CX700-era devices is a second, separate CA in
``<pki_dir>/legacy/`` with the same layout, signed through :mod:`phoneprov.pki.openssl`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from phoneprov.errors import CertificateError, InputError
from phoneprov.model import MacAddress
from phoneprov.pki import openssl, revocation
from phoneprov.pki.files import write_atomic, write_private
from phoneprov.pki.index import CRL_FILE, INDEX_FILE, CertIndex, CertRecord, FileIndex, RecordKind
from phoneprov.pki.keys import PrivateKey, PublicKey, generate_key, load_private_pem, private_pem
from phoneprov.pki.profiles import (
    CertSpec,
    ChainProfile,
    HashName,
    KeyType,
    SubjectAltNames,
    Usage,
    check_key_type,
    device_common_name,
    server_names,
    validity,
)
from phoneprov.pki.signer import build_certificate

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
LEGACY_DIR = "legacy"
NO_SANS = SubjectAltNames()
# The index of a CA, given its root certificate (the database keys indexes by root).
IndexFactory = Callable[[Path, x509.Certificate], CertIndex]


def file_index(pki_dir: Path, _cert: x509.Certificate) -> CertIndex:
    """The index kept in ``<pki_dir>/index.json``, for a CA used without a database."""
    return FileIndex(pki_dir)


@dataclass(frozen=True)
class IssuedCert:
    """A certificate we issued, with its key (when we made the key) and chain."""

    cert: x509.Certificate
    key_pem: bytes  # PKCS#8 PEM, unencrypted; empty when the key stayed on the phone (CSR)
    cert_pem: bytes
    chain_pem: bytes  # leaf + intermediates as a server sends them (our root is not included)

    @property
    def serial_hex(self) -> str:
        text = f"{self.cert.serial_number:X}"
        return text if len(text) % 2 == 0 else "0" + text


def _now() -> datetime:
    return datetime.now(UTC)


def new_serial() -> int:
    """Return a random positive serial of at most 159 bits.

    Random serials (CA/B Forum practice) keep two sites from ever colliding; the
    index refuses a serial it holds already, and the signer then draws again.
    """
    while True:
        serial = x509.random_serial_number() >> 1
        if serial:
            return serial


class CertificateAuthority:
    """Our CA: <pki_dir>/ca.pem and ca.key (0600), and the index of what it issued."""

    def __init__(
        self, pki_dir: Path, cert: x509.Certificate, key: PrivateKey, index: CertIndex
    ) -> None:
        self.pki_dir = pki_dir
        self.cert = cert
        self.index = index
        self._key = key

    @property
    def profile(self) -> ChainProfile:
        """``legacy`` for a SHA-1 root (made by the openssl signer), else ``modern``."""
        algorithm = self.cert.signature_hash_algorithm
        return "legacy" if isinstance(algorithm, hashes.SHA1) else "modern"

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def cert_path(self) -> Path:
        return self.pki_dir / CA_CERT

    @classmethod
    def exists(cls, pki_dir: Path) -> bool:
        """True if ``pki_dir`` already holds a CA certificate or key."""
        return (pki_dir / CA_CERT).exists() or (pki_dir / CA_KEY).exists()

    @classmethod
    def create(
        cls,
        pki_dir: Path,
        *,
        common_name: str,
        key: KeyType = "ec-p256",
        hash_name: HashName = "sha256",
        days: int = 7300,
        force: bool = False,
        profile: ChainProfile = "modern",
        index_for: IndexFactory = file_index,
    ) -> CertificateAuthority:
        """Make a new root in ``pki_dir`` and return it.

        ``profile="legacy"`` makes an RSA-2048/SHA-1 root (``key`` and
        ``hash_name`` are ignored) for devices that cannot parse SHA-2.
        Raises CertificateError if a CA exists and ``force`` is false; with
        ``force`` the old CA, index and CRL move to ``<pki_dir>/replaced-<time>/``.
        """
        check_key_type(key)
        if cls.exists(pki_dir):
            if not force:
                raise CertificateError(
                    f"a CA already exists in {pki_dir}",
                    "Replacing it invalidates every certificate it issued; pass --force to "
                    "replace it anyway (the old files are kept in a replaced-<time> folder).",
                )
            _archive(pki_dir)
        now = _now()
        start, end = validity(now, days)
        spec = CertSpec(Usage.ROOT, common_name, new_serial(), start, end, hash_name)
        pki_dir.mkdir(parents=True, exist_ok=True)
        if profile == "legacy":
            ca_key: PrivateKey = generate_key("rsa-2048")
            cert = openssl.sign_legacy(spec, ca_key, None, ca_key)
        else:
            ca_key = generate_key(key)
            cert = build_certificate(spec, ca_key.public_key(), None, ca_key)
        write_private(pki_dir / CA_KEY, private_pem(ca_key))
        write_atomic(pki_dir / CA_CERT, cert.public_bytes(serialization.Encoding.PEM))
        ca = cls(pki_dir, cert, ca_key, index_for(pki_dir, cert))
        ca.write_crl()
        return ca

    @classmethod
    def load(cls, pki_dir: Path, index_for: IndexFactory = file_index) -> CertificateAuthority:
        """Read the CA in ``pki_dir``; raise CertificateError with the fix if missing or damaged."""
        cert_path, key_path = pki_dir / CA_CERT, pki_dir / CA_KEY
        if not cert_path.is_file() or not key_path.is_file():
            legacy = pki_dir.name == LEGACY_DIR
            raise CertificateError(
                f"no CA in {pki_dir} ({CA_CERT} and {CA_KEY} expected)",
                "Create it with `phoneprov ca init --profile legacy`."
                if legacy
                else "Create it with `phoneprov ca init` (or `phoneprov init` for a new site).",
            )
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except ValueError as error:
            raise CertificateError(f"{cert_path} is not a PEM certificate: {error}") from None
        key = load_private_pem(key_path.read_bytes(), str(key_path))
        if key.public_key() != cert.public_key():
            raise CertificateError(
                f"{key_path} does not belong to {cert_path}",
                "Restore the matching pair from a backup, or run `phoneprov ca init --force`.",
            )
        return cls(pki_dir, cert, key, index_for(pki_dir, cert))

    # Issuing

    def issue_server(
        self, names: Sequence[str], *, key: KeyType = "ec-p256", days: int = 825
    ) -> IssuedCert:
        """Issue a TLS server certificate: CN = names[0], every name in the SAN, serverAuth.

        Raises InputError for wildcards and names that are neither DNS names nor IPs.
        """
        common_name, sans = server_names(tuple(names))
        if self.profile == "legacy" and key != "rsa-2048":
            raise InputError(
                f"the legacy chain uses RSA-2048 keys only, not {key}",
                "Drop --key for the legacy chain; CX700-era devices cannot read other keys.",
            )
        return self._issue(Usage.SERVER, common_name, key, days, "server", sans=sans)

    def issue_device(
        self, mac: MacAddress, *, key: KeyType = "ec-p256", days: int = 3650
    ) -> IssuedCert:
        """Issue a device (client) certificate: CN = MAC in 12 lower-case hex digits, clientAuth."""
        return self._issue(Usage.DEVICE, device_common_name(mac), key, days, "device", mac=mac)

    def _issue(
        self,
        usage: Usage,
        common_name: str,
        key_type: KeyType,
        days: int,
        kind: RecordKind,
        *,
        sans: SubjectAltNames = NO_SANS,
        mac: MacAddress | None = None,
    ) -> IssuedCert:
        leaf_key = generate_key(key_type)
        cert = self.sign_public_key(
            usage,
            common_name,
            leaf_key.public_key(),
            days,
            kind,
            sans=sans,
            mac=mac,
            subject_key=leaf_key,
        )
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        return IssuedCert(cert, private_pem(leaf_key), cert_pem, cert_pem)

    def sign_public_key(
        self,
        usage: Usage,
        common_name: str,
        public_key: PublicKey,
        days: int,
        kind: RecordKind,
        *,
        sans: SubjectAltNames = NO_SANS,
        mac: MacAddress | None = None,
        slot: str | None = None,
        subject_key: PrivateKey | None = None,
    ) -> x509.Certificate:
        """Sign a certificate for ``public_key``, record it in the index, keep a copy; return it.

        The leaf never outlives the root (RFC 5280 §6 path validation would
        reject it). The legacy CA also needs ``subject_key`` (openssl reads the
        public key from a request it signs), so it cannot sign phone CSRs.
        Raises InputError for a bad lifetime or name, CertificateError if the
        legacy signer cannot be used.
        """
        if self.profile == "legacy" and subject_key is None:
            raise CertificateError(
                "the legacy SHA-1 chain signs only certificates phoneprov makes itself",
                "Sign phone CSRs with the modern CA: `phoneprov ca sign-csr FILE`.",
            )
        now = _now()
        start, end = validity(now, days)
        end = min(end, self.cert.not_valid_after_utc)
        rsa_key = isinstance(public_key, rsa.RSAPublicKey)

        while True:
            serial = new_serial()
            spec = CertSpec(
                usage, common_name, serial, start, end, self._hash_name(), sans, rsa_key
            )
            if subject_key is not None and self.profile == "legacy":
                cert = openssl.sign_legacy(spec, subject_key, self.cert, self._key)
            else:
                cert = build_certificate(spec, public_key, self.cert, self._key)
            entry = CertRecord(
                serial=serial,
                kind=kind,
                subject=common_name,
                not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc,
                sha256=cert.fingerprint(hashes.SHA256()).hex(),
                issued_at=now.replace(microsecond=0),
                mac=mac.value if mac is not None else None,
                slot=slot,
            )
            if self.index.add(entry, cert.public_bytes(serialization.Encoding.PEM)):
                return cert

    def _hash_name(self) -> str:
        algorithm = self.cert.signature_hash_algorithm
        return algorithm.name if algorithm is not None else "sha256"

    def write_server_pair(self, out_dir: Path, issued: IssuedCert, stem: str) -> tuple[Path, Path]:
        """Write ``<stem>.pem`` (leaf + intermediates) and ``<stem>.key`` (0600); return both."""
        cert_path = write_atomic(out_dir / f"{stem}.pem", issued.chain_pem)
        key_path = write_private(out_dir / f"{stem}.key", issued.key_pem)
        return cert_path, key_path

    # Records and revocation

    def records(self) -> tuple[CertRecord, ...]:
        """Return every certificate this CA issued, in issue order."""
        return self.index.records()

    def revoke(self, target: int | MacAddress, reason: str = "unspecified") -> list[CertRecord]:
        """Revoke one serial, or every live certificate of a MAC; rewrite crl.pem.

        Returns the records revoked (already revoked ones are returned unchanged).
        Raises InputError for an unknown reason, serial or MAC.
        """
        return revocation.revoke(self, self._key, target, reason, _now())

    def write_crl(self) -> Path:
        """Sign a fresh CRL of every revoked certificate to ``crl.pem``; return its path."""
        return revocation.write_crl(self, self._key, _now())


def _archive(pki_dir: Path) -> Path:
    """Move the CA files, index, CRL and issued copies into ``replaced-<time>/``; return it."""
    target = pki_dir / f"replaced-{_now().strftime('%Y%m%dT%H%M%S.%fZ')}"
    target.mkdir(parents=True, exist_ok=True)
    for name in (CA_CERT, CA_KEY, INDEX_FILE, CRL_FILE, "issued"):
        source = pki_dir / name
        if source.exists():
            shutil.move(str(source), str(target / name))
    return target
