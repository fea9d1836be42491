"""Firmware rollouts that protect the fleet (``phoneprov rollout``, the admin API, ``serve``).

A rollout moves the phones of a plan (``protocols/rollout_plan.py``) to a
target version wave by wave. Moving a phone means the server offers it the
target (``FirmwareCatalog`` asks ``Store.fleet_actions.rollout_pins``) and asks
it to restart through its REST API (``fleet_actions.act``); a phone that cannot
be reached moves at its next boot or poll. ``check`` judges the wave in
progress (``rollout_health``) and halts the rollout on a breach, holding the
phones of later waves on their old version, or starts the next wave once the
wave is healthy and the time window open. ``serve`` runs ``check`` every
``[fleet] poll_interval`` (``RolloutTicker``); ``phoneprov rollout check`` runs
it once. Two processes checking at once start a wave once (``claim_wave``).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass

from phoneprov.config import Settings
from phoneprov.errors import InputError
from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.protocols.phonemodels import find_model
from phoneprov.protocols.phonerest import Action
from phoneprov.protocols.rollout_plan import (
    PhoneState,
    Plan,
    RolloutState,
    Step,
    Window,
    check_rollout_name,
    check_waves,
    judge,
    next_step,
    split_waves,
)
from phoneprov.provisioning import fleet_actions, rollout_health, trail
from phoneprov.provisioning.firmware import LOOP_THRESHOLD, FirmwareCatalog, check_version
from phoneprov.provisioning.inventory import check_name
from phoneprov.records import Event, InventoryEntry, RolloutPhone, RolloutRecord
from phoneprov.store import Store, open_store

log = logging.getLogger("phoneprov.rollout")
SHOWN_FAILURES = 10  # failed phones named in a halt reason; the rest are counted


@dataclass(frozen=True, slots=True)
class RolloutView:
    """A rollout, its plan and its phones, as the CLI and the API show them."""

    record: RolloutRecord
    plan: Plan
    phones: tuple[RolloutPhone, ...]

    @property
    def waves(self) -> int:
        return max((p.wave for p in self.phones), default=0)

    def counts(self, wave: int) -> dict[str, int]:
        """Phones of ``wave`` per state (every state, zeros included)."""
        found = {state.value: 0 for state in PhoneState}
        for phone in self.phones:
            if phone.wave == wave:
                found[phone.state] += 1
        return found

    def to_json(self) -> dict[str, object]:
        r = self.record
        return {
            "name": r.name,
            "version": r.version,
            "state": r.state,
            "wave": r.wave,
            "waves": self.waves,
            "wave_started": r.wave_started,
            "reason": r.reason,
            "created": r.created,
            "finished": r.finished,
            "checked": r.checked,
            "plan": {
                "models": list(self.plan.models),
                "groups": list(self.plan.groups),
                "sites": list(self.plan.sites),
                "canary_group": self.plan.canary_group,
                "waves": list(self.plan.waves),
                "window": self.plan.window,
                "deadline": self.plan.deadline,
                "max_failures": self.plan.max_failures,
            },
            "progress": [
                {"wave": n, **self.counts(n)} for n in range(1, self.waves + 1)
            ],
            "phones": [
                {"mac": p.mac, "wave": p.wave, "previous": p.previous, "state": p.state,
                 "detail": p.detail}
                for p in self.phones
            ],
        }  # fmt: skip


def model_token(model: str) -> str:
    """The model as master files name it (VVX410); an unknown one as written."""
    try:
        return find_model(model).token
    except InputError:
        return model


class Rollouts:
    """Rollout operations on an open store (one process may share it with its listeners)."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.rows = store.fleet_actions
        self.catalog = FirmwareCatalog(
            settings.site_dir / "firmware", store.firmware, store.inventory
        )

    def view(self, name: str) -> RolloutView:
        record = self.rows.rollout(name)
        if record is None:
            raise InputError(
                f"no rollout named {name!r}", "List them with `phoneprov rollout status`."
            )
        return RolloutView(
            record, Plan.from_json(record.plan), tuple(self.rows.rollout_phones(name))
        )

    def views(self) -> list[RolloutView]:
        return [self.view(r.name) for r in self.rows.rollouts()]

    # planning
    def _phones(self, plan: Plan) -> list[InventoryEntry]:
        refused = {
            d.mac.value
            for d in self.store.list_devices()
            if d.status in (DeviceStatus.BLOCKED, DeviceStatus.DENIED)
        }
        models = {model_token(m) for m in plan.models}
        return sorted(
            (
                e
                for e in self.store.inventory.entries()
                if e.mac.value not in refused
                and (not plan.groups or e.group in plan.groups)
                and (not plan.sites or e.site in plan.sites)
                and (not models or model_token(e.model) in models)
            ),
            key=lambda e: e.mac.value,
        )

    def _check_images(self, version: str, entries: Sequence[InventoryEntry]) -> None:
        images = self.catalog.rows.images(version)
        if not images:
            raise InputError(
                f"version {version} is not in the firmware catalog",
                f"Add it first: phoneprov firmware add FILE --version {version} --models ...",
            )
        lacking: dict[str, int] = {}
        for entry in entries:
            token = model_token(entry.model)
            if not any(not i.models or token in i.models for i in images):
                lacking[token or "no model"] = lacking.get(token or "no model", 0) + 1
        if lacking:
            named = ", ".join(f"{model} ({n} phones)" for model, n in sorted(lacking.items()))
            raise InputError(
                f"version {version} has no image for {named}",
                "Add one (phoneprov firmware add FILE --version ... --models ...), or leave "
                "those phones out with --model.",
            )

    def plan(self, name: str, plan: Plan) -> RolloutView:
        check_rollout_name(name)
        check_version(plan.version)
        check_waves(plan.waves)
        Window.parse(plan.window)
        for group in (*plan.groups, plan.canary_group):
            check_name(group, "group")
        entries = self._phones(plan)
        if not entries:
            raise InputError(
                "no phone of the inventory matches the plan",
                "Check --models, --groups and --sites against `phoneprov device list`.",
            )
        self._check_images(plan.version, entries)
        busy = self.rows.active_rollout_of([e.mac.value for e in entries])
        if busy:
            other = sorted(set(busy.values()))[0]
            raise InputError(
                f"{len(busy)} of these phones are in rollout {other!r}, which has not ended",
                f"Let it complete, or end it with `phoneprov rollout abort {other}`.",
            )
        canary = [e.mac.value for e in entries if e.group == plan.canary_group]
        if plan.canary_group and not canary:
            raise InputError(
                f"no phone of the plan is in the canary group {plan.canary_group!r}",
                "Name a group of the plan's phones with --canary-group, or leave it out.",
            )
        waves = split_waves([e.mac.value for e in entries], plan.waves, canary)
        by_mac = {e.mac.value: e for e in entries}
        phones = [
            RolloutPhone(name, mac, number, self._previous(by_mac[mac]), PhoneState.WAITING)
            for number, macs in enumerate(waves, start=1)
            for mac in macs
        ]
        record = RolloutRecord(
            name, plan.version, RolloutState.PLANNED, plan.to_json(), time.time()
        )
        if not self.rows.put_rollout(record, phones):
            raise InputError(
                f"a rollout named {name!r} exists already",
                "Choose another name; `phoneprov rollout status` lists them.",
            )
        return self.view(name)

    def _previous(self, entry: InventoryEntry) -> str:
        return self.catalog.version_for(model_token(entry.model), entry.group) or ""

    # the administrator's commands
    def _expect(self, view: RolloutView, *states: RolloutState) -> None:
        if view.record.state not in states:
            wanted = " or ".join(s.value for s in states)
            raise InputError(
                f"rollout {view.record.name} is {view.record.state}, not {wanted}",
                "See `phoneprov rollout status NAME` for where it stands.",
            )

    def start(self, name: str) -> RolloutView:
        view = self.view(name)
        self._expect(view, RolloutState.PLANNED)
        entries = self.store.inventory.entries_by_mac([MacAddress(p.mac) for p in view.phones])
        # What each phone is offered now, in case assignments changed since the plan.
        offered = {p.mac: self._previous(entries[p.mac]) for p in view.phones if p.mac in entries}
        before = {p.mac: p.previous for p in view.phones}
        self.rows.set_previous(name, {m: v for m, v in offered.items() if v != before[m]})
        self.rows.update_rollout(name, state=RolloutState.RUNNING.value, wave=0, reason="")
        self._event(view, "started")
        return self.check(name)

    def halt(self, name: str, reason: str = "") -> RolloutView:
        view = self.view(name)
        self._expect(view, RolloutState.RUNNING)
        self._halt(view, f"halted by {trail.current_actor()}" + (f": {reason}" if reason else ""))
        return self.view(name)

    def resume(self, name: str) -> RolloutView:
        """Continue a halted rollout: the wave in progress is judged again from now, its
        failed phones are offered the target again and restarted."""
        view = self.view(name)
        self._expect(view, RolloutState.HALTED)
        now = time.time()
        again = [
            p.mac
            for p in view.phones
            if p.wave == view.record.wave and p.state == PhoneState.FAILED
        ]
        held = [p.mac for p in view.phones if p.state == PhoneState.HELD]
        self.rows.set_phone_states(name, {mac: (PhoneState.WAITING.value, "") for mac in held})
        self.rows.update_rollout(
            name, state=RolloutState.RUNNING.value, reason="", wave_started=now
        )
        self._event(view, "resumed")
        if again:
            self._move(view, again, now, "offered again after resume")
        return self.check(name)

    def abort(self, name: str, reason: str = "") -> RolloutView:
        """End the rollout: every phone is offered its group's or model's version again."""
        view = self.view(name)
        self._expect(view, RolloutState.PLANNED, RolloutState.RUNNING, RolloutState.HALTED)
        why = f"aborted by {trail.current_actor()}" + (f": {reason}" if reason else "")
        self.rows.update_rollout(
            name, state=RolloutState.ABORTED.value, reason=why, finished=time.time()
        )
        self._event(view, why)
        return self.view(name)

    # the checks
    def check(self, name: str) -> RolloutView:
        """Judge the wave in progress and act on it (a running rollout only)."""
        view = self.view(name)
        if view.record.state != RolloutState.RUNNING:
            return view
        now = time.time()
        record, plan = view.record, view.plan
        current = [p for p in view.phones if p.wave == record.wave]
        states = {p.mac: PhoneState(p.state) for p in current}
        moved = [p for p in current if p.state == PhoneState.MOVED]
        if moved and record.wave_started is not None:
            started = record.wave_started
            bases = {p.mac: rollout_health.Baseline.from_json(p.baseline) for p in moved}
            seen = rollout_health.observe(
                self.store, self.settings, [p.mac for p in moved], record.version, started, bases
            )
            deadline = plan.deadline or self.settings.fleet.report_deadline
            changed: dict[str, tuple[str, str]] = {}
            for phone in moved:
                verdict = judge(
                    seen[phone.mac],
                    record.version,
                    started=started,
                    deadline=deadline,
                    now=now,
                    loop_threshold=LOOP_THRESHOLD,
                )
                states[phone.mac] = verdict.state
                if verdict.state != phone.state:
                    changed[phone.mac] = (verdict.state.value, verdict.detail)
            self.rows.set_phone_states(name, changed)
        window = Window.parse(plan.window).is_open(dt.datetime.fromtimestamp(now))
        decision = next_step(
            states,
            wave=record.wave,
            waves=view.waves,
            max_failures=plan.max_failures,
            window_open=window,
        )
        self.rows.update_rollout(name, checked=now)
        view = self.view(name)
        if decision.step is Step.HALT:
            self._halt(view, self._breach(view, decision.failed))
            log.warning(
                "rollout %s halted in wave %d: %d phone(s) failed: %s",
                name,
                record.wave,
                len(decision.failed),
                " ".join(decision.failed[:SHOWN_FAILURES]),
            )
        elif decision.step is Step.COMPLETE:
            self.rows.update_rollout(name, state=RolloutState.COMPLETED.value, finished=now)
            self._event(view, "completed")
        elif decision.step is Step.NEXT:
            wave = record.wave + 1
            if self.rows.claim_wave(name, wave, now):
                macs = [p.mac for p in view.phones if p.wave == wave]
                self._move(view, macs, now, f"offered in wave {wave}")
        return self.view(name)

    def _breach(self, view: RolloutView, failed: Sequence[str]) -> str:
        details = {p.mac: p.detail for p in view.phones}
        wave = [p for p in view.phones if p.wave == view.record.wave]
        named = "; ".join(f"{mac}: {details[mac]}" for mac in failed[:SHOWN_FAILURES])
        more = f"; and {len(failed) - SHOWN_FAILURES} more" if len(failed) > SHOWN_FAILURES else ""
        return (
            f"wave {view.record.wave}: {len(failed)} of {len(wave)} phones failed "
            f"({view.plan.max_failures} allowed): {named}{more}"
        )

    def _halt(self, view: RolloutView, reason: str) -> None:
        name = view.record.name
        self.rows.update_rollout(name, state=RolloutState.HALTED.value, reason=reason)
        held = {
            p.mac: (PhoneState.HELD.value, f"held on {p.previous or 'its current firmware'}")
            for p in view.phones
            if p.state == PhoneState.WAITING
        }
        self.rows.set_phone_states(name, held)
        self._event(view, f"halted: {reason}")

    def _move(self, view: RolloutView, macs: Sequence[str], now: float, why: str) -> None:
        """Offer the target to ``macs`` (baseline first), then ask them to restart."""
        name, target = view.record.name, view.record.version
        bases = rollout_health.baselines(self.store, self.settings, macs)
        self.rows.set_baselines(name, {mac: base.to_json() for mac, base in bases.items()})
        self.rows.set_phone_states(
            name, {mac: (PhoneState.MOVED.value, f"{why}: {target}") for mac in macs}
        )
        reached = self._restart(macs)
        details = {
            mac: (PhoneState.MOVED.value, f"{why}: {target}; {reached[mac]}") for mac in macs
        }
        self.rows.set_phone_states(name, details)
        self.store.record(
            [], [Event(now, mac, "rollout", f"{name}: {details[mac][1]}") for mac in macs]
        )

    def _restart(self, macs: Sequence[str]) -> dict[str, str]:
        """Ask the phones to restart; what came of it for each, in words."""
        later = "moves at its next boot or poll"
        if not self.settings.fleet.rest_api:
            return {mac: f"{later} ([fleet] rest_api is off)" for mac in macs}
        try:
            trust = fleet_actions.site_trust(self.settings)
        except InputError as error:
            return {mac: f"{later} (not restarted: {error})" for mac in macs}
        results = fleet_actions.act(
            self.store, self.settings, trust, Action.RESTART, [MacAddress(m) for m in macs]
        )
        return {
            r.mac.value: "restarted" if r.ok else f"{later} (restart {r.outcome.value})"
            for r in results
        }

    def _event(self, view: RolloutView, what: str) -> None:
        self.store.record([], [Event(time.time(), "", "rollout", f"{view.record.name}: {what}")])


def _run(settings: Settings, work: str, name: str, *args: object) -> RolloutView:
    with closing(open_store(settings)) as store:
        rollouts = Rollouts(settings, store)
        method = getattr(rollouts, work)
        view: RolloutView = method(name, *args)
        return view


@trail.audited("rollout.plan", target="name")
def plan_rollout(settings: Settings, name: str, plan: Plan) -> RolloutView:
    """Store a rollout of ``plan`` (nothing is offered yet); InputError says what is wrong."""
    return _run(settings, "plan", name, plan)


@trail.audited("rollout.start", target="name")
def start_rollout(settings: Settings, name: str) -> RolloutView:
    """Start a planned rollout: its first wave starts when the time window is open."""
    return _run(settings, "start", name)


@trail.audited("rollout.halt", target="name")
def halt_rollout(settings: Settings, name: str, reason: str = "") -> RolloutView:
    """Stop a running rollout; the phones of waves not started stay on their old version."""
    return _run(settings, "halt", name, reason)


@trail.audited("rollout.resume", target="name")
def resume_rollout(settings: Settings, name: str) -> RolloutView:
    """Continue a halted rollout (its failed phones are offered the target again)."""
    return _run(settings, "resume", name)


@trail.audited("rollout.abort", target="name")
def abort_rollout(settings: Settings, name: str, reason: str = "") -> RolloutView:
    """End a rollout; every phone is offered its group's or model's version again."""
    return _run(settings, "abort", name, reason)


def check_rollout(settings: Settings, name: str) -> RolloutView:
    """Judge a running rollout now, as ``serve`` does every ``[fleet] poll_interval``."""
    return _run(settings, "check", name)


def rollout_status(settings: Settings, name: str) -> RolloutView:
    """The rollout as its last check left it (nothing is judged or sent)."""
    return _run(settings, "view", name)


def list_rollouts(settings: Settings) -> list[RolloutView]:
    with closing(open_store(settings)) as store:
        return Rollouts(settings, store).views()


class RolloutTicker:
    """Checks the running rollouts every ``[fleet] poll_interval`` from a thread (``serve``)."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.rollouts = Rollouts(settings, store)
        self.interval = settings.fleet.poll_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> RolloutTicker:
        self._thread = threading.Thread(target=self._run, name="rollout-ticker", daemon=True)
        self._thread.start()
        return self

    def tick(self) -> None:
        for record in self.rollouts.rows.rollouts():
            if record.state == RolloutState.RUNNING:
                self.rollouts.check(record.name)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception as error:  # the next tick tries again; the database may be back
                log.error("rollout check failed: %s", error.__class__.__name__)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
