"""Phone CSR enrolment: a phone uploads ``<MAC>.csr`` over its own mutual-TLS session.

With ``[policy] csr_policy = "auto"`` the CSR is signed at once by the site CA
for the platform slot in ``csr_slot``; the certificate reaches the phone through
its per-device config (``device_cert_settings``). With ``"manual"`` the CSR
waits in the certificates folder for ``phoneprov ca sign-csr``. Either way the
outcome is an event on the device record (``phoneprov device show MAC``). The
certificate is recorded in the site database, so a phone whose CSR one node
signed gets its certificate from any node.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from phoneprov.config import Settings
from phoneprov.errors import PhoneprovError
from phoneprov.model import MacAddress
from phoneprov.pki.devicecfg import device_cert_config
from phoneprov.pki.enrolment import sign_csr
from phoneprov.pki.profiles import check_slot
from phoneprov.provisioning.authority import root_index, site_authority
from phoneprov.records import Event
from phoneprov.store import Store


@dataclass(frozen=True, slots=True)
class Outcome:
    event: Event
    serial: str = ""


def handle_csr(settings: Settings, mac: MacAddress, csr_file: Path) -> Outcome:
    """Sign or queue a CSR a phone uploaded; never raises for a bad CSR (it is an event)."""
    now = time.time()
    if settings.policy.csr_policy != "auto":
        return Outcome(
            Event(
                now,
                mac.value,
                "csr-queued",
                f"{csr_file.name}: sign with `phoneprov ca sign-csr {csr_file}`",
            )
        )
    try:
        with site_authority(settings, settings.pki_dir) as ca:
            issued = sign_csr(
                ca,
                csr_file.read_bytes(),
                expected_mac=mac,
                slot=check_slot(settings.policy.csr_slot),
            )
    except PhoneprovError as error:
        return Outcome(Event(now, mac.value, "csr-refused", str(error)))
    serial = format(issued.cert.serial_number, "X")
    return Outcome(
        Event(now, mac.value, "csr-signed", f"serial {serial} for slot {settings.policy.csr_slot}"),
        serial,
    )


def latest_device_cert(
    store: Store, pki_dir: Path, mac: MacAddress
) -> tuple[x509.Certificate, str] | None:
    """The newest unrevoked certificate signed from this phone's CSR, and its slot."""
    index = root_index(store, pki_dir)
    if index is None:
        return None
    records = [r for r in index.for_mac(mac.value) if r.kind == "csr" and not r.revoked and r.slot]
    if not records:
        return None
    newest = max(records, key=lambda record: record.issued_at)
    pem = index.pem(newest.serial)
    if not pem:
        return None
    return x509.load_pem_x509_certificate(pem), str(newest.slot)


def device_cert_settings(store: Store, pki_dir: Path, mac: MacAddress) -> dict[str, str]:
    """Config parameters that install the phone's signed certificate (empty when none)."""
    found = latest_device_cert(store, pki_dir, mac)
    if found is None:
        return {}
    cert, slot = found
    return device_cert_config(cert.public_bytes(Encoding.PEM), None, slot).as_dict()
