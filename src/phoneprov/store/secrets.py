"""Secrets at rest in the database: SIP passwords and digest HA1 values are
encrypted with a site key.

phoneprov must render a phone's SIP password into its config, so it keeps the
password, not a hash; a digest HA1 is not a hash either but a password
equivalent (anyone holding it can answer digest challenges: RFC 7616 §5.2).
The key (``<site>/pki/store-secret.key``, 0600) stays out of the database, so
a copied or leaked database gives neither away. Nodes sharing one database
share the key by copying the site folder. Fernet (AES-128-CBC + HMAC-SHA256,
from ``cryptography``) authenticates what it decrypts. Values written before a
key existed have no prefix and read as is.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from phoneprov.errors import StoreError

KEY_FILE = "store-secret.key"
PREFIX = "enc1:"


class SecretBox:
    """Encrypts and decrypts short text values for the database."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, value: str) -> str:
        """Encrypted form of ``value`` ("" stays "": no password is no secret)."""
        return PREFIX + self._fernet.encrypt(value.encode()).decode() if value else ""

    def open(self, stored: str) -> str:
        """The clear value; StoreError when the key does not match the database."""
        if not stored.startswith(PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise StoreError(
                "a secret stored in the database (a SIP password or digest HA1) cannot be "
                "decrypted with this site's key",
                f"Copy {KEY_FILE} from the node that wrote it into <site>/pki/ "
                "(nodes sharing a database share the key), or set the passwords again.",
            ) from None


def site_box(pki_dir: Path) -> SecretBox:
    """The site's box; creates the key (0600) on first use."""
    path = pki_dir / KEY_FILE
    if not path.exists():
        pki_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
    return SecretBox(path.read_bytes().strip())
