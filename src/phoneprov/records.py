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
    proved_ip: str = ""  # set by merging: the address of the last request that proved it

    @property
    def authenticated_ip(self) -> str:
        """The address the phone last proved who it is from ("" if it did not)."""
        return self.proved_ip or (self.ip if self.own_identity else "")


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
        proved_ip=new.authenticated_ip or old.authenticated_ip,
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


# The admin side (issue 14): administrators, API tokens, the audit trail, fleet pages.


@dataclass(frozen=True, slots=True)
class AdminRecord:
    """An administrator: name, role (viewer, operator, admin) and argon2id password hash."""

    name: str
    role: str
    password_hash: str
    created: float


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An API token as stored: its SHA-256, never the token itself."""

    name: str
    role: str
    sha256: str
    created: float
    expires: float | None = None
    revoked: float | None = None
    created_by: str = ""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change made through the CLI or the API; ``changes`` maps a field to
    ``[before, after]``, secrets already masked."""

    time: float
    actor: str
    action: str
    target: str
    changes: dict[str, list[object]]
    id: int = 0


@dataclass(frozen=True, slots=True)
class DeviceQuery:
    """One page of the fleet: filters (exact, or ``text`` as a substring of MAC, label,
    model, IP), the sort column, and the keyset cursor (sort value and MAC of the last
    row of the previous page)."""

    status: str | None = None
    model: str | None = None
    group: str | None = None
    site: str | None = None
    firmware: str | None = None
    text: str | None = None
    sort: str = "mac"
    descending: bool = False
    after: tuple[str, str] | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class FleetCounts:
    """Phones counted at scrape time (``/metrics``)."""

    by_model: dict[str, int]
    by_firmware: dict[str, int]
    by_stage: dict[str, int]
    by_status: dict[str, int]
    not_seen: int  # phones last seen before the cut-off (or never)


# The web console (issue 15): the fleet page's filter, rows and counts, and the charts' data.


class FleetState(enum.StrEnum):
    """Where a phone stands, one state each, first match wins (the fleet page's counts)."""

    REFUSED = "refused"  # denied or blocked: the server refuses it
    STALE = "stale"  # not seen for the cut-off (or never)
    STUCK = "stuck"  # held for approval, or never reached phase 2 (its own identity)
    MISMATCH = "mismatch"  # runs another firmware than the one assigned
    OK = "ok"


@dataclass(frozen=True, slots=True)
class FleetFilter:
    """One fleet page: exact filters, free ``text`` (substring of MAC, label, model, group,
    IP, firmware), the sort column, the page (from 1); ``now`` and ``stale_after`` (seconds)
    place the stale cut-off."""

    now: float
    stale_after: float
    state: str = ""
    status: str = ""
    model: str = ""
    group: str = ""
    firmware: str = ""
    stage: str = ""  # none | updater | application | config
    cert: str = ""
    text: str = ""
    sort: str = "mac"
    descending: bool = False
    page: int = 1
    per_page: int = 50


@dataclass(frozen=True, slots=True)
class FleetRow:
    record: DeviceRecord
    state: FleetState
    assigned: str  # firmware version assigned to its group or model ("" none)
    reached: str  # none | updater | application | config
    findings: int  # failure events over the last 24 hours


@dataclass(frozen=True, slots=True)
class FleetPage:
    rows: tuple[FleetRow, ...]
    total: int  # phones matching the filter
    counts: dict[str, int]  # phones per FleetState over the whole fleet


@dataclass(frozen=True, slots=True)
class Activity:
    """What the charts draw: boots per minute (boot-log uploads) from ``since``, failure
    events by reason over the same span, phones per firmware version and per stage."""

    since: float
    boots_per_minute: tuple[int, ...]
    failures: dict[str, int]
    firmware: dict[str, int]
    stages: dict[str, int]
    groups: dict[tuple[str, str], int]  # phones per (group, firmware running)


# Fleet actions and rollouts (issue 18).


@dataclass(frozen=True, slots=True)
class PhoneAccess:
    """How phoneprov may reach a phone: the address it last proved who it is from."""

    mac: MacAddress
    address: str = ""
    seen: float | None = None
    has_admin_password: bool = False
    rest_port: int | None = None  # its web server's port when not [fleet] rest_port


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One resync or restart asked of one phone, and what came of it."""

    id: int
    time: float
    mac: str
    action: str  # resync | restart
    outcome: str  # fleet_actions.Outcome
    detail: str
    confirmed: float | None = None  # when the phone next fetched its files


@dataclass(frozen=True, slots=True)
class RolloutRecord:
    """A firmware rollout as stored; ``plan`` is the JSON of ``rollout_plan.Plan``."""

    name: str
    version: str
    state: str
    plan: str
    created: float
    wave: int = 0  # the wave in progress (0: none started)
    wave_started: float | None = None
    reason: str = ""  # why it halted or was aborted
    finished: float | None = None  # when it completed or was aborted
    checked: float | None = None  # when its phones were last judged


@dataclass(frozen=True, slots=True)
class RolloutPhone:
    """One phone of a rollout: its wave, the version it ran before, where it stands."""

    rollout: str
    mac: str
    wave: int
    previous: str
    state: str = "waiting"  # waiting | moved | healthy | failed | held
    detail: str = ""
    baseline: str = ""  # JSON: its image fetches and log error counts when its wave started


@dataclass(frozen=True, slots=True)
class RolloutPin:
    """The firmware a rollout makes the server offer one phone ("" for none)."""

    rollout: str
    version: str


@dataclass(frozen=True, slots=True)
class NodeRow:
    """A ``phoneprov serve`` node as the database knows it (``phoneprov cluster status``)."""

    node_id: str  # made when the node starts
    name: str  # --node-name, else the host name
    host: str
    pid: int
    version: str
    site_dir: str
    listeners: tuple[tuple[str, str], ...]  # (name, url), sorted
    started: float
    last_seen: float  # the last heartbeat
    stopped: float | None  # when it stopped cleanly
    last_error: str  # the last error it logged, escaped
    last_error_at: float | None
