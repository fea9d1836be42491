"""The wiring: which store, which caches, which services, built once from Settings.

Every edge is handed a ``PhoneServices`` (the phone listeners) and calls its
members only; nothing above this module opens a store or loads a CA. One
process builds one container: its caches are shared by all its listeners.
"""

from __future__ import annotations

from dataclasses import dataclass

from phoneprov.config import Settings
from phoneprov.pki.authority import LEGACY_DIR
from phoneprov.protocols.digest import DigestAuthority
from phoneprov.provisioning.accounts import Accounts
from phoneprov.provisioning.audit import Audit
from phoneprov.provisioning.authority import root_index
from phoneprov.provisioning.client_certs import CertIdentifier
from phoneprov.provisioning.cluster import NodeHeartbeat
from phoneprov.provisioning.gate import Gate
from phoneprov.provisioning.identity import Identity
from phoneprov.provisioning.listings import Listings
from phoneprov.provisioning.lockout import Lockout
from phoneprov.provisioning.lync.service import LyncUpdates
from phoneprov.provisioning.reads import Reads
from phoneprov.provisioning.render import SiteRenderer
from phoneprov.provisioning.revocations import RevocationWatch
from phoneprov.provisioning.site import NONCE_SECRET
from phoneprov.provisioning.uploads import UploadFolder, Uploads
from phoneprov.store import Recorder, Store, open_store
from phoneprov.store.base import NONCE_KEY


@dataclass(frozen=True, slots=True)
class PhoneServices:
    """What the phone-facing listeners of one process use."""

    settings: Settings
    audit: Audit
    identity: Identity
    accounts: Accounts
    reads: Reads
    uploads: Uploads
    listings: Listings
    lync: LyncUpdates
    store: Store
    recorder: Recorder
    lockout: Lockout  # the brake on password guessing (HTTP digest, FTP logins)
    revocations: RevocationWatch  # revoked serials in memory, refreshed from the database

    def digest_secret(self) -> bytes:
        """The site's digest nonce key, kept in the database so any node verifies a nonce.

        The first node to ask stores its ``pki/digest-nonce.key`` (made by init), so
        nonces issued before the upgrade stay good.
        """
        seed = self.settings.pki_dir / NONCE_SECRET
        return self.store.secrets.get_or_create(
            NONCE_KEY, seed.read_bytes() if seed.is_file() else None
        )

    def digest_authority(self) -> DigestAuthority:
        """Digest challenges and checks for the HTTP listener; nonce counts in the database,
        so a response accepted by one node is a replay on every other."""
        http = self.settings.http
        return DigestAuthority(
            self.digest_secret(),
            http.realm,
            http.nonce_lifetime,
            allow_without_qop=http.allow_digest_without_qop,
            counts=self.store.nonces,
        )

    def cert_identifier(self) -> CertIdentifier:
        """Classifies phones' client certificates against the site's CAs."""
        return CertIdentifier.for_site(self.settings, self.revocations)

    def join_cluster(self, listeners: dict[str, str]) -> NodeHeartbeat:
        """Record this node in the database and keep its heartbeat until ``stop``."""
        return NodeHeartbeat(self.settings, self.store).start(listeners)

    def close(self) -> None:
        """Flush queued sightings and events, then close the store."""
        self.revocations.stop()
        self.recorder.stop()
        self.store.close()


def open_phone_services(settings: Settings, audit: Audit | None = None) -> PhoneServices:
    """Open the site's store, start its recorder and build the services on them.

    Raises StoreError when the database cannot be opened.
    """
    audit = audit or Audit()
    store = open_store(settings)
    recorder = Recorder(store)
    recorder.start()
    identity = Identity(settings, store, recorder)
    gate = Gate(settings, audit, recorder, identity)
    folder = UploadFolder(
        gate.boot, settings.site_dir / "versions", settings.uploads, settings.policy.folders
    )
    reads = Reads(gate, identity, SiteRenderer(settings, store), folder, recorder, audit)
    return PhoneServices(
        settings=settings,
        audit=audit,
        identity=identity,
        accounts=Accounts(store, identity),
        reads=reads,
        uploads=Uploads(gate, folder, recorder),
        listings=Listings(gate, reads),
        lync=LyncUpdates(settings, store, identity, gate, recorder),
        store=store,
        recorder=recorder,
        lockout=Lockout(settings.lockout, audit),
        revocations=_revocation_watch(settings, store).start(),
    )


def _revocation_watch(settings: Settings, store: Store) -> RevocationWatch:
    """The watch over the revocations of the site's CA and its legacy CA, when present."""
    found = [root_index(store, pki) for pki in (settings.pki_dir, settings.pki_dir / LEGACY_DIR)]
    indexes = [index for index in found if index is not None]
    return RevocationWatch(indexes, settings.cluster.revocation_refresh)
