"""What the store keeps and hands back: frozen records, shared by services and edges.

The ``Store`` protocol (``store/base.py``) takes and returns these; edges read
them from services without importing ``store/``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from phoneprov.model import DeviceStatus, MacAddress


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    mac: MacAddress
    status: DeviceStatus
    model: str = ""
    family: str = ""
    firmware: str = ""
    updater_version: str = ""
    stage: str = ""
    ip: str = ""
    protocol: str = ""
    cert_kind: str = ""
    user_agent: str = ""
    site: str = ""
    group_name: str = ""
    label: str = ""
    first_seen: float | None = None
    last_seen: float | None = None
    requests: int = 0
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Sighting:
    """What one request tells about a device (queued, written in batches)."""

    mac: MacAddress
    time: float
    ip: str
    protocol: str
    status_if_new: DeviceStatus
    model: str = ""
    family: str = ""
    firmware: str = ""
    updater_version: str = ""
    stage: str = ""
    cert_kind: str = ""
    user_agent: str = ""
    own_identity: bool = False  # the phone proved who it is (its certificate or device account)


OWN_IDENTITY_FLAG = "own-identity"  # in DeviceRecord.flags once a phone proved who it is


@dataclass(frozen=True, slots=True)
class Event:
    time: float
    mac: str
    kind: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    kind: str
    mac: str
    realm: str
    ha1: str
    password_hash: str


@dataclass(frozen=True, slots=True)
class Line:
    """One SIP registration of a phone (``reg.<index>.*`` in its config)."""

    index: int
    ext: str
    user: str = ""
    password: str = ""
    server: str = ""


@dataclass(frozen=True, slots=True)
class InventoryEntry:
    """What the administrator says about a phone; the boot server adds what it sees."""

    mac: MacAddress
    model: str = ""
    site: str = ""
    group: str = ""
    label: str = ""
    lines: tuple[Line, ...] = ()


@dataclass(frozen=True, slots=True)
class SaveCount:
    created: int
    updated: int


@dataclass(frozen=True, slots=True)
class ImageRecord:
    version: str
    part: str  # "" for the combined sip.ld
    models: tuple[str, ...]
    sha256: str
    size: int
    filename: str
    added: float


@dataclass(frozen=True, slots=True)
class Assignment:
    scope: str  # model | group
    target: str
    version: str


@dataclass(frozen=True, slots=True)
class RequestRow:
    """One ``ucdevice.upx`` request: who, what it reported, what it was offered, the body."""

    time: float
    mac: str
    ip: str
    side: str
    package: str  # UCPhone/Polycom/CX700/A/ENU, as the device sent it
    reported: str  # module=version pairs, e.g. "CPE=1.0.522.73"
    offered: str  # module=version pairs offered with a URL; "" when none
    outcome: str  # update | up-to-date | newer | unknown | refused
    body: str


def merge_sightings(old: Sighting | None, new: Sighting) -> Sighting:
    """One sighting standing for both: ``new``'s time and address, fields it lacks from ``old``."""
    if old is None:
        return new
    keep = {
        key: getattr(new, key) or getattr(old, key)
        for key in (
            "model",
            "family",
            "firmware",
            "updater_version",
            "stage",
            "cert_kind",
            "user_agent",
        )
    }
    return Sighting(
        mac=new.mac,
        time=new.time,
        ip=new.ip,
        protocol=new.protocol,
        status_if_new=old.status_if_new,
        own_identity=old.own_identity or new.own_identity,
        **keep,
    )


# Set on a device record the anonymous Lync/SfB update endpoint created; cleared once a
# phone listener (HTTP, HTTPS, FTP, TFTP) sees the phone. Until then the endpoint may
# update the record's model and firmware, and nothing else may count it as verified.
UNVERIFIED_FLAG = "unverified"


class Sighted(enum.StrEnum):
    """What an unverified sighting (a Lync/SfB update request) did to the device records."""

    CREATED = "created"  # a new record, flagged unverified
    UPDATED = "updated"  # an unverified record: model, firmware, address, last seen
    UNTOUCHED = "untouched"  # a record a phone listener or the administrator wrote: left as is
    OVER_RATE = "over-rate"  # unknown, past [policy] lync_new_devices_per_minute: no record
    OVER_CAP = "over-cap"  # unknown, [policy] lync_unverified_devices reached: no record

    @property
    def recorded(self) -> bool:
        """True when the device has a record (its requests are logged)."""
        return self in (Sighted.CREATED, Sighted.UPDATED, Sighted.UNTOUCHED)
