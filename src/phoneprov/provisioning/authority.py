"""The site's CAs with their index in the site database.

``CertificateAuthority`` keeps what it issued and revoked in a ``CertIndex``;
here that index is the database's (``Store.certificates``), keyed by the
SHA-256 of the CA's root, so every node sharing the database signs, lists and
revokes against one record. A site made by an older phoneprov has
``<pki>/index.json`` and ``issued/``: the first time its CA is used through the
database they are adopted into it (one transaction), and the file is renamed
``index.json.adopted`` so nobody edits a copy that is no longer read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from phoneprov.config import Settings
from phoneprov.errors import CertificateError
from phoneprov.pki.authority import CA_CERT, CertificateAuthority, IndexFactory
from phoneprov.pki.index import INDEX_FILE, CertIndex, FileIndex, read_index
from phoneprov.store import Store, open_store
from phoneprov.store.base import CaIndexRepo

ADOPTED_SUFFIX = ".adopted"
log = logging.getLogger("phoneprov.ca")


def ca_id(cert: x509.Certificate) -> str:
    """How the database names a CA: the SHA-256 of its root certificate, in hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def database_index(store: Store, pki_dir: Path, cert: x509.Certificate) -> CaIndexRepo:
    """The index of the CA in ``pki_dir`` in ``store``, after adopting its index.json."""
    index = store.certificates.index(ca_id(cert))
    legacy = pki_dir / INDEX_FILE
    if legacy.is_file():
        # The workers of one `serve --workers N` start together and all find the file:
        # the database takes one copy of the records (adopt() does nothing once the CA
        # has its row) and whichever renames the file first wins; the others find it gone.
        try:
            state = read_index(pki_dir)
        except FileNotFoundError:
            return index
        files = FileIndex(pki_dir)
        pems = {r.serial: pem for r in state.records if (pem := files.pem(r.serial)) is not None}
        adopted = index.adopt(state, pems)
        with suppress(FileNotFoundError):
            legacy.rename(legacy.with_name(INDEX_FILE + ADOPTED_SUFFIX))
        if adopted:
            log.info("moved %d certificate record(s) of %s into the database", adopted, pki_dir)
    return index


def index_factory(store: Store) -> IndexFactory:
    """What ``CertificateAuthority.load`` and ``create`` call to get the database index."""

    def make(pki_dir: Path, cert: x509.Certificate) -> CertIndex:
        return database_index(store, pki_dir, cert)

    return make


def root_index(store: Store, pki_dir: Path) -> CaIndexRepo | None:
    """The database index of the CA in ``pki_dir`` without reading its key (None: no CA)."""
    path = pki_dir / CA_CERT
    if not path.is_file():
        return None
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError as exc:
        raise CertificateError(
            f"{path} is not a PEM certificate ({exc})",
            "restore the site CA from a backup (phoneprov restore) or check the file",
        ) from exc
    return database_index(store, pki_dir, cert)


@contextmanager
def site_authority(settings: Settings, pki_dir: Path) -> Iterator[CertificateAuthority]:
    """The CA in ``pki_dir`` on the site database, for one action; the store closes after.

    Raises CertificateError when there is no CA, StoreError when the database
    cannot be opened.
    """
    store = open_store(settings)
    try:
        yield CertificateAuthority.load(pki_dir, index_factory(store))
    finally:
        store.close()
