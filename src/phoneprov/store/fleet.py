"""The console's fleet queries: one page of phones with their state, counts, activity.

Every phone is in exactly one state (``FleetState``), computed in SQL from its
row, so filtering by state, counting per state and paging stay one query each
on 50,000 phones. Assigned firmware is the phone's group assignment, else its
model's (``FirmwareCatalog.version_for`` also checks that the group's version
has an image for the model; the console shows what was assigned).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from phoneprov.model import DeviceStatus
from phoneprov.records import (
    OWN_IDENTITY_FLAG,
    Activity,
    DeviceRecord,
    FleetFilter,
    FleetPage,
    FleetRow,
    FleetState,
)
from phoneprov.store import schema

# Event kinds that are a failure the administrator should look at.
FAILURE_KINDS = ("refused", "csr-refused", "firmware-loop", "ucupdate-malformed")
BOOT_LOG_SUFFIX = "-boot.log"  # a phone uploads <mac>-boot.log once per boot (SPEC §2)

_d = schema.devices
_a = schema.firmware_assignments


def _assigned() -> sa.ColumnElement[Any]:
    """The version assigned to the row's group, else to its model ('' when none)."""
    by_group = (
        sa.select(_a.c.version)
        .where(_a.c.scope == "group", _a.c.target == _d.c.group_name)
        .scalar_subquery()
    )
    by_model = (
        sa.select(_a.c.version)
        .where(_a.c.scope == "model", _a.c.target == _d.c.model)
        .scalar_subquery()
    )
    return sa.func.coalesce(by_group, by_model, "")


def _reached() -> sa.ColumnElement[Any]:
    """How far the last boot got: config (phase 2, own identity), application, updater."""
    own = (sa.literal(",") + _d.c.flags + ",").contains(f",{OWN_IDENTITY_FLAG},")
    return sa.case(
        (own, "config"),
        (_d.c.stage == "Application", "application"),
        (_d.c.stage == "Updater", "updater"),
        else_="none",
    )


def _state(now: float, stale_after: float) -> sa.ColumnElement[Any]:
    refused = (DeviceStatus.DENIED.value, DeviceStatus.BLOCKED.value)
    assigned = _assigned()
    return sa.case(
        (_d.c.status.in_(refused), FleetState.REFUSED.value),
        (
            sa.or_(_d.c.last_seen.is_(None), _d.c.last_seen < now - stale_after),
            FleetState.STALE.value,
        ),
        (
            sa.or_(_d.c.status == DeviceStatus.PENDING.value, _reached() != "config"),
            FleetState.STUCK.value,
        ),
        (sa.and_(assigned != "", assigned != _d.c.firmware), FleetState.MISMATCH.value),
        else_=FleetState.OK.value,
    )


# Sort names the console offers, and the column of the inner query each sorts by.
SORTS = {
    "mac": "mac",
    "label": "label",
    "model": "model",
    "group": "group_name",
    "firmware": "firmware",
    "stage": "reached",
    "cert": "cert_kind",
    "ip": "ip",
    "last_seen": "last_seen",
    "status": "status",
    "state": "state",
}


class FleetViews:
    """Read-only queries behind the console's fleet, phone and chart pages."""

    def __init__(self, engine: sa.Engine, to_device: Callable[[sa.Row[Any]], DeviceRecord]) -> None:
        self.engine = engine
        self.to_device = to_device

    def page(self, query: FleetFilter) -> FleetPage:
        """The rows of one page, the number of phones matching, and counts per state."""
        state = _state(query.now, query.stale_after).label("state")
        inner = sa.select(
            _d, state, _assigned().label("assigned"), _reached().label("reached")
        ).subquery()
        conditions = _conditions(inner, query)
        order = inner.c[SORTS.get(query.sort, "mac")]
        ordered = order.desc() if query.descending else order.asc()
        rows_query = (
            sa.select(inner)
            .where(*conditions)
            .order_by(ordered.nulls_last(), inner.c.mac)
            .limit(query.per_page)
            .offset((query.page - 1) * query.per_page)
        )
        counts_query = sa.select(inner.c.state, sa.func.count()).group_by(inner.c.state)
        total_query = sa.select(sa.func.count()).select_from(inner).where(*conditions)
        with self.engine.connect() as conn:
            found = list(conn.execute(rows_query))
            counts = {str(s): int(n) for s, n in conn.execute(counts_query)}
            total = int(conn.execute(total_query).scalar() or 0)
            findings = self._failures(conn, [str(r.mac) for r in found], query.now)
        rows = tuple(
            FleetRow(
                record=self.to_device(row),
                state=FleetState(str(row.state)),
                assigned=str(row.assigned),
                reached=str(row.reached),
                findings=findings.get(str(row.mac), 0),
            )
            for row in found
        )
        return FleetPage(rows, total, {s.value: counts.get(s.value, 0) for s in FleetState})

    def row(self, mac: str, now: float, stale_after: float) -> FleetRow | None:
        """One phone's row (state, assigned firmware, stage reached), or None."""
        state = _state(now, stale_after).label("state")
        query = sa.select(_d, state, _assigned().label("assigned"), _reached().label("reached"))
        with self.engine.connect() as conn:
            found = conn.execute(query.where(_d.c.mac == mac)).first()
            if found is None:
                return None
            findings = self._failures(conn, [mac], now)
        return FleetRow(
            self.to_device(found),
            FleetState(str(found.state)),
            str(found.assigned),
            str(found.reached),
            findings.get(mac, 0),
        )

    @staticmethod
    def _failures(conn: sa.Connection, macs: list[str], now: float) -> dict[str, int]:
        """Failure events per MAC over the last 24 hours."""
        if not macs:
            return {}
        e = schema.events
        query = (
            sa.select(e.c.mac, sa.func.count())
            .where(e.c.mac.in_(macs), e.c.time >= now - 86400, e.c.kind.in_(FAILURE_KINDS))
            .group_by(e.c.mac)
        )
        return {str(mac): int(n) for mac, n in conn.execute(query)}

    def activity(self, now: float, minutes: int) -> Activity:
        """Boots per minute and failures by reason since ``minutes`` ago; firmware, stages,
        and phones per (group, firmware) for rollouts."""
        e = schema.events
        since = now - minutes * 60
        minute = sa.cast((e.c.time - since) / 60, sa.Integer)
        boots = (
            sa.select(minute, sa.func.count())
            .where(e.c.time >= since, e.c.kind == "upload")
            .where(e.c.detail.like(f"%{BOOT_LOG_SUFFIX} %"))
            .group_by(minute)
        )
        if self.engine.dialect.name == "postgresql":
            first_word = sa.func.split_part(e.c.detail, " ", 1)
        else:
            first_word = sa.func.substr(e.c.detail, 1, sa.func.instr(e.c.detail + " ", " ") - 1)
        reason = sa.case((e.c.kind == "refused", first_word), else_=e.c.kind)
        failures = (
            sa.select(reason, sa.func.count())
            .where(e.c.time >= since, e.c.kind.in_(FAILURE_KINDS))
            .group_by(reason)
        )
        firmware = sa.select(_d.c.firmware, sa.func.count()).group_by(_d.c.firmware)
        stages = sa.select(_reached(), sa.func.count()).group_by(_reached())
        per_group = sa.select(_d.c.group_name, _d.c.firmware, sa.func.count()).group_by(
            _d.c.group_name, _d.c.firmware
        )
        with self.engine.connect() as conn:
            per_minute = [0] * minutes
            for index, count in conn.execute(boots):
                if 0 <= int(index) < minutes:
                    per_minute[int(index)] = int(count)
            return Activity(
                since=since,
                boots_per_minute=tuple(per_minute),
                failures={str(r): int(n) for r, n in conn.execute(failures)},
                firmware={str(v): int(n) for v, n in conn.execute(firmware)},
                stages={str(s): int(n) for s, n in conn.execute(stages)},
                groups={(str(g), str(v)): int(n) for g, v, n in conn.execute(per_group)},
            )


def _conditions(inner: sa.Subquery, query: FleetFilter) -> list[sa.ColumnElement[bool]]:
    c = inner.c
    found: list[sa.ColumnElement[bool]] = []
    exact = (
        (c.state, query.state),
        (c.status, query.status),
        (c.model, query.model),
        (c.group_name, query.group),
        (c.firmware, query.firmware),
        (c.reached, query.stage),
        (c.cert_kind, query.cert),
    )
    for column, value in exact:
        if value:
            found.append(column == value)
    if query.text:
        escaped = query.text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        columns = (c.mac, c.label, c.model, c.group_name, c.ip, c.firmware)
        found.append(sa.or_(*(sa.func.lower(col).like(pattern, escape="\\") for col in columns)))
    return found
