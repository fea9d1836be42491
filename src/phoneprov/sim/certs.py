"""Device certificates for simulated phones, issued by a site's CA and kept for reuse.

Kept in ``<site>/sim/`` (``<mac>.pem`` + ``<mac>.key``, key 0600) so repeated
simulations and storms do not issue again; the demo phone's pair in
``<site>/demo/`` is used as it is.
"""

from __future__ import annotations

from pathlib import Path

from phoneprov.errors import ConfigError
from phoneprov.model import MacAddress
from phoneprov.pki.authority import CertificateAuthority
from phoneprov.pki.files import write_private

SIM_FOLDER = "sim"


def existing_pair(site_dir: Path, mac: MacAddress) -> tuple[Path, Path] | None:
    """Return the (cert, key) a site already has for ``mac``, or None."""
    for folder in ("demo", SIM_FOLDER):
        cert = site_dir / folder / f"{mac.value}.pem"
        key = site_dir / folder / f"{mac.value}.key"
        if cert.is_file() and key.is_file():
            return cert, key
    return None


def device_pair(
    site_dir: Path, mac: MacAddress, ca: CertificateAuthority | None = None
) -> tuple[Path, Path]:
    """Return a (cert, key) for ``mac``, issuing one from the site's CA when none exists.

    Raises ConfigError when the site has no CA.
    """
    found = existing_pair(site_dir, mac)
    if found is not None:
        return found
    pki = site_dir / "pki"
    if ca is None:
        if not CertificateAuthority.exists(pki):
            raise ConfigError(
                f"no CA in {pki} to issue a device certificate for {mac}",
                "Run `phoneprov init --site DIR` first, or pass --cert and --key.",
            )
        ca = CertificateAuthority.load(pki)
    issued = ca.issue_device(mac)
    folder = site_dir / SIM_FOLDER
    folder.mkdir(exist_ok=True)
    cert = folder / f"{mac.value}.pem"
    key = folder / f"{mac.value}.key"
    write_private(key, issued.key_pem)
    cert.write_bytes(issued.cert_pem)
    return cert, key
