"""Device certificates for simulated phones, issued by a site's CA and kept for reuse.

Kept in ``<site>/sim/`` (``<mac>.pem`` + ``<mac>.key``, key 0600) so repeated
simulations and storms do not issue again; the demo phone's pair in
``<site>/demo/`` is used as it is.
"""

from __future__ import annotations

from pathlib import Path

from phoneprov.model import MacAddress
from phoneprov.provisioning.certificates import DeviceCertIssuer

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
    site_dir: Path, mac: MacAddress, issuer: DeviceCertIssuer | None = None
) -> tuple[Path, Path]:
    """Return a (cert, key) for ``mac``, issuing one from the site's CA when none exists.

    ``issuer`` is the site's CA already loaded (a storm issues many). Raises
    ConfigError when the site has no CA.
    """
    found = existing_pair(site_dir, mac)
    if found is not None:
        return found
    if issuer is None:
        issuer = DeviceCertIssuer.for_phone(site_dir / "pki", mac)
    made = issuer.write_pair(mac, site_dir / SIM_FOLDER)
    return made.cert, made.key
