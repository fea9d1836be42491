"""Fleet action rows: where each phone can be reached, its REST admin password, actions, rollouts.

A phone's address is the one it last proved who it is from (mutual TLS or its
device account): ``note_addresses`` runs inside ``SqlStore.record``'s
transaction for the sightings that carry one, and confirms there the resync and
restart requests the phone accepted before (it fetched its files since). Admin
passwords are sealed with the site key (``store/secrets.py``), as SIP passwords
are. ``rollout_pins`` says which firmware a rollout makes the server offer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from phoneprov.model import MacAddress
from phoneprov.protocols.rollout_plan import PhoneState, RolloutState, pinned_version
from phoneprov.records import (
    ActionRecord,
    PhoneAccess,
    RolloutPhone,
    RolloutPin,
    RolloutRecord,
    Sighting,
)
from phoneprov.store import schema
from phoneprov.store.secrets import SecretBox

ACCEPTED = "accepted"  # provisioning.fleet_actions.Outcome.ACCEPTED
CONFIRMED = "confirmed: the phone fetched its files again"
_PIN_STATES = (RolloutState.RUNNING, RolloutState.HALTED, RolloutState.COMPLETED)


class FleetActionStore:
    """Fleet reads and writes on an engine shared with ``SqlStore``."""

    def __init__(self, engine: sa.Engine, box: SecretBox | None = None) -> None:
        self.engine = engine
        self.box = box

    def _insert(self, table: sa.Table) -> Any:
        if self.engine.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    @staticmethod
    def note_addresses(conn: sa.Connection, sightings: Iterable[Sighting]) -> None:
        """Record the address each phone proved who it is from, and confirm the resync and
        restart requests it accepted before that (in the caller's transaction)."""
        proved = [s for s in sightings if s.authenticated_ip]
        if not proved:
            return
        _confirm(conn, {s.mac.value: s.time for s in proved})
        rows = [{"mac": s.mac.value, "address": s.authenticated_ip, "seen": s.time} for s in proved]
        table = schema.phone_access
        insert = (
            postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
        )
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=[table.c.mac],
                set_={"address": insert.excluded.address, "seen": insert.excluded.seen},
            ),
            rows,
        )

    # access
    def access(self, macs: Sequence[MacAddress]) -> dict[str, PhoneAccess]:
        """What is known to reach each of ``macs`` (phones never seen are left out)."""
        table = schema.phone_access
        found: dict[str, PhoneAccess] = {}
        values = [mac.value for mac in macs]
        with self.engine.connect() as conn:
            for start in range(0, len(values), 500):
                query = sa.select(table).where(table.c.mac.in_(values[start : start + 500]))
                for row in conn.execute(query):
                    found[row.mac] = PhoneAccess(
                        MacAddress(row.mac),
                        row.address,
                        row.seen,
                        bool(row.admin_password),
                        row.rest_port,
                    )
        return found

    def set_rest_port(self, mac: MacAddress, port: int | None) -> None:
        """The port of the phone's web server (None: ``[fleet] rest_port``)."""
        table = schema.phone_access
        insert = self._insert(table).values(mac=mac.value, rest_port=port)
        with self.engine.begin() as conn:
            conn.execute(
                insert.on_conflict_do_update(index_elements=[table.c.mac], set_={"rest_port": port})
            )

    def sharing(self, address: str) -> int:
        """How many phones last proved who they are from ``address``."""
        table = schema.phone_access
        with self.engine.connect() as conn:
            query = sa.select(sa.func.count()).where(table.c.address == address)
            return int(conn.execute(query).scalar() or 0)

    def admin_password(self, mac: MacAddress) -> str:
        """The phone's REST admin password, opened ("" when it has none)."""
        table = schema.phone_access
        with self.engine.connect() as conn:
            stored = conn.execute(
                sa.select(table.c.admin_password).where(table.c.mac == mac.value)
            ).scalar()
        if not stored:
            return ""
        return self.box.open(stored) if self.box is not None else str(stored)

    def keep_admin_password(self, mac: MacAddress, password: str) -> str:
        """Store ``password`` unless the phone has one; return the one stored.

        One statement, so two workers rendering the same phone agree on one password.
        """
        table = schema.phone_access
        sealed = self.box.seal(password) if self.box is not None else password
        insert = self._insert(table).values(mac=mac.value, admin_password=sealed)
        with self.engine.begin() as conn:
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[table.c.mac],
                    set_={"admin_password": sealed},
                    where=table.c.admin_password == "",
                )
            )
        return self.admin_password(mac)

    def set_admin_password(self, mac: MacAddress, password: str) -> None:
        """Replace the phone's admin password (sealed)."""
        table = schema.phone_access
        sealed = self.box.seal(password) if self.box is not None else password
        insert = self._insert(table).values(mac=mac.value, admin_password=sealed)
        with self.engine.begin() as conn:
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[table.c.mac], set_={"admin_password": sealed}
                )
            )

    # actions
    def add_actions(self, actions: Sequence[ActionRecord]) -> None:
        if not actions:
            return
        rows = [
            {
                "time": a.time,
                "mac": a.mac,
                "action": a.action,
                "outcome": a.outcome,
                "detail": a.detail,
                "confirmed": a.confirmed,
            }
            for a in actions
        ]
        with self.engine.begin() as conn:
            conn.execute(schema.fleet_actions.insert(), rows)

    def actions(self, mac: MacAddress, *, limit: int = 100) -> list[ActionRecord]:
        """The phone's resync and restart requests, newest first."""
        table = schema.fleet_actions
        query = (
            sa.select(table)
            .where(table.c.mac == mac.value)
            .order_by(table.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                ActionRecord(r.id, r.time, r.mac, r.action, r.outcome, r.detail, r.confirmed)
                for r in conn.execute(query)
            ]

    # rollouts
    def put_rollout(self, rollout: RolloutRecord, phones: Sequence[RolloutPhone]) -> bool:
        """Store a new rollout and its phones; False when the name is taken."""
        with self.engine.begin() as conn:
            taken = conn.execute(
                sa.select(schema.rollouts.c.name).where(schema.rollouts.c.name == rollout.name)
            ).first()
            if taken:
                return False
            conn.execute(
                schema.rollouts.insert().values(
                    name=rollout.name,
                    version=rollout.version,
                    state=rollout.state,
                    plan=rollout.plan,
                    created=rollout.created,
                    wave=rollout.wave,
                    wave_started=rollout.wave_started,
                    reason=rollout.reason,
                    finished=rollout.finished,
                    checked=rollout.checked,
                )
            )
            if phones:
                conn.execute(
                    schema.rollout_phones.insert(),
                    [
                        {
                            "rollout": p.rollout,
                            "mac": p.mac,
                            "wave": p.wave,
                            "previous": p.previous,
                            "state": p.state,
                            "detail": p.detail,
                            "baseline": p.baseline,
                        }
                        for p in phones
                    ],
                )
        return True

    def rollout(self, name: str) -> RolloutRecord | None:
        table = schema.rollouts
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.name == name)).first()
        return _rollout(row) if row is not None else None

    def rollouts(self) -> list[RolloutRecord]:
        table = schema.rollouts
        with self.engine.connect() as conn:
            return [_rollout(r) for r in conn.execute(sa.select(table).order_by(table.c.created))]

    def update_rollout(self, name: str, **fields: object) -> None:
        table = schema.rollouts
        with self.engine.begin() as conn:
            conn.execute(table.update().where(table.c.name == name).values(**fields))

    def rollout_phones(self, name: str) -> list[RolloutPhone]:
        table = schema.rollout_phones
        query = sa.select(table).where(table.c.rollout == name).order_by(table.c.wave, table.c.mac)
        with self.engine.connect() as conn:
            return [
                RolloutPhone(r.rollout, r.mac, r.wave, r.previous, r.state, r.detail, r.baseline)
                for r in conn.execute(query)
            ]

    def active_rollout_of(self, macs: Sequence[str]) -> dict[str, str]:
        """The planned, running or halted rollout each of ``macs`` belongs to, if any."""
        phones, rollouts = schema.rollout_phones, schema.rollouts
        active = (RolloutState.PLANNED, RolloutState.RUNNING, RolloutState.HALTED)
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(macs), 500):
                query = (
                    sa.select(phones.c.mac, phones.c.rollout)
                    .join(rollouts, rollouts.c.name == phones.c.rollout)
                    .where(phones.c.mac.in_(list(macs[start : start + 500])))
                    .where(rollouts.c.state.in_([s.value for s in active]))
                )
                found.update({row.mac: row.rollout for row in conn.execute(query)})
        return found

    def claim_wave(self, name: str, wave: int, started: float) -> bool:
        """Move a running rollout from wave ``wave - 1`` to ``wave``; False when another
        process (a second node, a `rollout check`) did it first."""
        table = schema.rollouts
        with self.engine.begin() as conn:
            done = conn.execute(
                table.update()
                .where(
                    table.c.name == name,
                    table.c.wave == wave - 1,
                    table.c.state == RolloutState.RUNNING.value,
                )
                .values(wave=wave, wave_started=started)
            )
        return bool(done.rowcount)

    def set_previous(self, name: str, previous: dict[str, str]) -> None:
        """Set the version the rollout's phones named by MAC were offered before it."""
        table = schema.rollout_phones
        with self.engine.begin() as conn:
            for mac, version in previous.items():
                conn.execute(
                    table.update()
                    .where(table.c.rollout == name, table.c.mac == mac)
                    .values(previous=version)
                )

    def set_baselines(self, name: str, baselines: dict[str, str]) -> None:
        """Set the baseline (JSON) of the rollout's phones named by MAC."""
        table = schema.rollout_phones
        with self.engine.begin() as conn:
            for mac, baseline in baselines.items():
                conn.execute(
                    table.update()
                    .where(table.c.rollout == name, table.c.mac == mac)
                    .values(baseline=baseline)
                )

    def rollout_pins(self, phones: Sequence[tuple[str, str, str]]) -> dict[str, RolloutPin]:
        """What a rollout makes the server offer each (MAC, model, group): see
        ``rollout_plan.pinned_version``. Phones no rollout speaks for are left out."""
        rp, ro, fa = schema.rollout_phones, schema.rollouts, schema.firmware_assignments
        macs = [mac for mac, _, _ in phones]
        query = (
            sa.select(rp.c.mac, rp.c.state, rp.c.previous, ro.c.name, ro.c.state.label("rs"))
            .add_columns(ro.c.version, ro.c.finished, ro.c.created)
            .join(ro, ro.c.name == rp.c.rollout)
            .where(ro.c.state.in_([s.value for s in _PIN_STATES]))
            .order_by(ro.c.created)
        )
        if len(macs) <= 500:
            query = query.where(rp.c.mac.in_(macs))
        with self.engine.connect() as conn:
            latest = {row.mac: row for row in conn.execute(query)}  # the newest rollout wins
            assigned = (
                {
                    (r.scope, r.target): float(r.assigned)
                    for r in conn.execute(sa.select(fa.c.scope, fa.c.target, fa.c.assigned))
                }
                if any(row.rs == RolloutState.COMPLETED for row in latest.values())
                else {}
            )
        pins: dict[str, RolloutPin] = {}
        for mac, model, group in phones:
            row = latest.get(mac)
            if row is None:
                continue
            newer = max(
                assigned.get(("group", group), 0.0) if group else 0.0,
                assigned.get(("model", model), 0.0) if model else 0.0,
            )
            version = pinned_version(
                RolloutState(row.rs),
                PhoneState(row.state),
                row.version,
                row.previous,
                superseded=row.finished is not None and newer > row.finished,
            )
            if version is not None:
                pins[mac] = RolloutPin(row.name, version)
        return pins

    def download_counts(self, macs: Sequence[str]) -> dict[str, tuple[str, int, float]]:
        """(version, fetches, first fetch) of the image each phone fetched last."""
        table = schema.firmware_downloads
        found: dict[str, tuple[str, int, float]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(macs), 500):
                query = sa.select(table).where(table.c.mac.in_(list(macs[start : start + 500])))
                for row in conn.execute(query):
                    m = row._mapping
                    found[str(m["mac"])] = (str(m["version"]), int(m["count"]), float(m["first"]))
        return found

    def set_phone_states(self, name: str, states: dict[str, tuple[str, str]]) -> None:
        """Set (state, detail) of the rollout's phones named by MAC."""
        if not states:
            return
        table = schema.rollout_phones
        with self.engine.begin() as conn:
            for mac, (state, detail) in states.items():
                conn.execute(
                    table.update()
                    .where(table.c.rollout == name, table.c.mac == mac)
                    .values(state=state, detail=detail)
                )


def _rollout(row: sa.Row[tuple[object, ...]]) -> RolloutRecord:
    m = row._mapping
    return RolloutRecord(
        name=str(m["name"]),
        version=str(m["version"]),
        state=str(m["state"]),
        plan=str(m["plan"]),
        created=float(str(m["created"])),
        wave=int(str(m["wave"])),
        wave_started=None if m["wave_started"] is None else float(str(m["wave_started"])),
        reason=str(m["reason"]),
        finished=None if m["finished"] is None else float(str(m["finished"])),
        checked=None if m["checked"] is None else float(str(m["checked"])),
    )


def _confirm(conn: sa.Connection, seen: dict[str, float]) -> None:
    """Confirm the accepted actions of these phones that are older than their sighting,
    with an event on each phone's timeline."""
    table = schema.fleet_actions
    query = sa.select(table.c.id, table.c.mac, table.c.action, table.c.time).where(
        table.c.mac.in_(list(seen)),
        table.c.outcome == ACCEPTED,
        table.c.confirmed.is_(None),
    )
    done = [row for row in conn.execute(query) if row.time < seen[row.mac]]
    if not done:
        return
    for row in done:
        conn.execute(table.update().where(table.c.id == row.id).values(confirmed=seen[row.mac]))
    conn.execute(
        schema.events.insert(),
        [
            {
                "time": seen[row.mac],
                "mac": row.mac,
                "kind": f"fleet-{row.action}",
                "detail": CONFIRMED,
            }
            for row in done
        ],
    )
