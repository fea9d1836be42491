"""The wiring: which store, which caches, which services, built once from Settings.

Every edge is handed a ``PhoneServices`` (the phone listeners) and calls its
members only; nothing above this module opens a store or loads a CA. One
process builds one container: its caches are shared by all its listeners.
"""

from __future__ import annotations

from dataclasses import dataclass

from phoneprov.config import Settings
from phoneprov.provisioning.accounts import Accounts
from phoneprov.provisioning.audit import Audit
from phoneprov.provisioning.client_certs import CertIdentifier
from phoneprov.provisioning.gate import Gate
from phoneprov.provisioning.identity import Identity
from phoneprov.provisioning.listings import Listings
from phoneprov.provisioning.lockout import Lockout
from phoneprov.provisioning.lync.service import LyncUpdates
from phoneprov.provisioning.reads import Reads
from phoneprov.provisioning.render import SiteRenderer
from phoneprov.provisioning.site import NONCE_SECRET
from phoneprov.provisioning.uploads import UploadFolder, Uploads
from phoneprov.store import Recorder, Store, open_store


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

    def digest_secret(self) -> bytes:
        """The site's digest nonce key (shared by every worker, so any may verify a nonce)."""
        return (self.settings.pki_dir / NONCE_SECRET).read_bytes()

    def cert_identifier(self) -> CertIdentifier:
        """Classifies phones' client certificates against the site's CAs."""
        return CertIdentifier.for_site(self.settings)

    def close(self) -> None:
        """Flush queued sightings and events, then close the store."""
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
    )
