"""Firmware catalog rows: images by (version, part), assignments, download counts.

The image bytes are files named by their sha256 (``provisioning.firmware``);
these tables say which file is which version for which models, which version
each model and group runs, and how often each phone fetched its image.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from phoneprov.model import MacAddress
from phoneprov.records import Assignment, ImageRecord
from phoneprov.store import schema


def _image(row: sa.Row[tuple[object, ...]]) -> ImageRecord:
    m = row._mapping
    return ImageRecord(
        str(m["version"]),
        str(m["part"]),
        tuple(x for x in str(m["models"]).split(",") if x),
        str(m["sha256"]),
        int(str(m["size"])),
        str(m["filename"]),
        float(str(m["added"])),
    )


class FirmwareStore:
    """Catalog reads and writes on an engine shared with ``SqlStore``."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def put_image(self, image: ImageRecord) -> bool:
        """Record an image, replacing the row for the same version and part.

        Returns True when a row was replaced.
        """
        table = schema.firmware_images
        key = (table.c.version == image.version) & (table.c.part == image.part)
        with self.engine.begin() as conn:
            replaced = conn.execute(table.delete().where(key)).rowcount
            conn.execute(
                table.insert().values(
                    version=image.version,
                    part=image.part,
                    models=",".join(image.models),
                    sha256=image.sha256,
                    size=image.size,
                    filename=image.filename,
                    added=image.added,
                )
            )
        return bool(replaced)

    def images(self, version: str | None = None) -> list[ImageRecord]:
        """Catalog rows (of one version when given), by version then part."""
        table = schema.firmware_images
        query = sa.select(table).order_by(table.c.version, table.c.part)
        if version is not None:
            query = query.where(table.c.version == version)
        with self.engine.connect() as conn:
            return [_image(r) for r in conn.execute(query)]

    def assign(self, scope: str, target: str, version: str) -> None:
        table = schema.firmware_assignments
        with self.engine.begin() as conn:
            conn.execute(
                table.delete().where((table.c.scope == scope) & (table.c.target == target))
            )
            conn.execute(
                table.insert().values(
                    scope=scope, target=target, version=version, assigned=time.time()
                )
            )

    def assignments(self) -> list[Assignment]:
        table = schema.firmware_assignments
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table).order_by(table.c.scope, table.c.target))
            return [Assignment(str(r.scope), str(r.target), str(r.version)) for r in rows]

    def count_download(
        self, mac: MacAddress, sha256: str, version: str, now: float, window: float
    ) -> int:
        """Count one download of an image by a phone; returns the running count.

        The count starts again when the phone fetches another image or when the
        previous fetch is older than ``window`` seconds.
        """
        table = schema.firmware_downloads
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(table).where(table.c.mac == mac.value)).first()
            if row is not None and row.sha256 == sha256 and now - float(row.last) <= window:
                count = int(row._mapping["count"]) + 1
                conn.execute(
                    table.update().where(table.c.mac == mac.value).values(count=count, last=now)
                )
                return count
            conn.execute(table.delete().where(table.c.mac == mac.value))
            conn.execute(
                table.insert().values(
                    mac=mac.value, sha256=sha256, version=version, count=1, first=now, last=now
                )
            )
            return 1

    def downloads(self, mac: MacAddress) -> tuple[str, int] | None:
        """(version, count) of the image this phone fetched last, if any."""
        table = schema.firmware_downloads
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.mac == mac.value)).first()
        return (str(row.version), int(row._mapping["count"])) if row is not None else None
