"""Digest state every node shares: the nonce key, and the nonce counts seen.

The nonce key is made once, by whichever node asks first (INSERT ... ON
CONFLICT DO NOTHING, then read back), so a nonce one node issues verifies on
any other. A count is accepted by one UPDATE that only succeeds when it grows
(RFC 7616 §3.4), so two nodes given one (nonce, nc) accept it once between
them. Rows live until their nonce expires: the table holds at most the nonces
answered correctly within one nonce lifetime.
"""

from __future__ import annotations

import os
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from phoneprov.store.secrets import SecretBox
from phoneprov.store.tables import digest_nonces, site_secrets

PURGE_EVERY = 1000  # accepted counts between two sweeps of expired rows


def _insert(engine: sa.Engine, table: sa.Table) -> Any:
    return (postgresql if engine.dialect.name == "postgresql" else sqlite).insert(table)


class SiteSecrets:
    """Named random keys kept in the database, sealed with the site key when it is known."""

    def __init__(self, engine: sa.Engine, box: SecretBox | None) -> None:
        self.engine = engine
        self.box = box

    def get_or_create(self, name: str, initial: bytes | None = None) -> bytes:
        """The key ``name``; the first caller stores ``initial`` (or 32 random bytes)."""
        value = (initial or os.urandom(32)).hex()
        sealed = self.box.seal(value) if self.box is not None else value
        with self.engine.begin() as conn:
            conn.execute(
                _insert(self.engine, site_secrets)
                .values(name=name, value=sealed, created=time.time())
                .on_conflict_do_nothing()
            )
            stored = conn.execute(
                sa.select(site_secrets.c.value).where(site_secrets.c.name == name)
            ).scalar_one()
        opened = self.box.open(stored) if self.box is not None else stored
        return bytes.fromhex(opened)


class SharedNonceCounts:
    """``protocols.digest.NonceCounter`` over the database, for every node alike."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._accepted = 0

    def accept(self, nonce: str, nc: int, expires: float) -> bool:
        """Record ``nc`` for ``nonce``; False when it is not greater than the last one."""
        insert = _insert(self.engine, digest_nonces).values(nonce=nonce, nc=nc, expires=expires)
        upsert = insert.on_conflict_do_update(
            index_elements=[digest_nonces.c.nonce],
            set_={"nc": insert.excluded.nc},
            where=digest_nonces.c.nc < insert.excluded.nc,
        )
        with self.engine.begin() as conn:
            # RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT.
            fresh = conn.execute(upsert.returning(digest_nonces.c.nonce)).first() is not None
        self._sweep()
        return fresh

    def spend(self, nonce: str, expires: float) -> bool:
        """Use ``nonce`` up (a response without qop); False when it was used before."""
        insert = _insert(self.engine, digest_nonces).values(
            nonce=nonce, nc=1 << 32, expires=expires
        )
        with self.engine.begin() as conn:
            done = insert.on_conflict_do_nothing().returning(digest_nonces.c.nonce)
            fresh = conn.execute(done).first() is not None
        self._sweep()
        return fresh

    def _sweep(self) -> None:
        self._accepted += 1
        if self._accepted % PURGE_EVERY == 0:
            self.purge(time.time())

    def purge(self, now: float) -> int:
        """Forget the counts of nonces expired before ``now``; return how many."""
        with self.engine.begin() as conn:
            return int(
                conn.execute(digest_nonces.delete().where(digest_nonces.c.expires < now)).rowcount
            )
