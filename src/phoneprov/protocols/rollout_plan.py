"""Firmware rollouts as values: the plan, its waves, its time window, and the health rules.

Pure: no clock and no store. ``provisioning/rollouts.py`` gathers what each
phone did (its reported version, boot stage, image fetches, log findings) and
asks ``judge`` and ``next_step`` what follows; ``pinned_version`` says which
firmware the server offers a phone of a rollout.

A plan names its phones (models, groups, sites of the inventory), an optional
canary group that forms the first wave, and cumulative wave sizes over the
other phones: ``1,10%,100%`` is one phone, then up to a tenth of them, then
all. Each wave starts when the previous one is healthy and the time window is
open. A phone of a wave is healthy when it reports the target version; it
fails on a firmware loop (it fetched the image ``loop_threshold`` times
without running it), on error findings in its uploaded logs that were not
there before, or when the deadline passes first (with the reason: not seen
since, stuck in the Updater, or still running another version). More than
``max_failures`` failed phones in a wave halt the rollout.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from phoneprov.errors import InputError

DEFAULT_WAVES = ("1", "10%", "100%")
ALWAYS = "always"
_WINDOW_RE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")
_STEP_RE = re.compile(r"(\d{1,6})(%?)")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


class RolloutState(enum.StrEnum):
    PLANNED = "planned"  # stored, nothing offered yet
    RUNNING = "running"  # waves move on as they become healthy
    HALTED = "halted"  # a breach or the administrator stopped it; phones held
    COMPLETED = "completed"  # every wave healthy
    ABORTED = "aborted"  # ended by the administrator: phones get their old version again


class PhoneState(enum.StrEnum):
    WAITING = "waiting"  # its wave has not started: offered its old version
    MOVED = "moved"  # offered the target; waiting for it to report it
    HEALTHY = "healthy"  # reports the target version
    FAILED = "failed"  # broke a stop condition (still offered the target)
    HELD = "held"  # the rollout halted before its wave: offered its old version


PINNING = frozenset({RolloutState.RUNNING, RolloutState.HALTED})
OFFERED_TARGET = frozenset({PhoneState.MOVED, PhoneState.HEALTHY, PhoneState.FAILED})


def check_rollout_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise InputError(
            f"rollout name {name!r} is not a plain name",
            "Use letters, digits, '_', '.' and '-' (at most 64, starting with a letter or digit).",
        )
    return name


def check_waves(waves: Sequence[str]) -> tuple[str, ...]:
    """Wave sizes, cumulative: counts (``5``) or shares of the phones (``25%``).

    Raises InputError for a malformed size, sizes that shrink, or a last wave
    that does not reach every phone.
    """
    cleaned = tuple(w.strip() for w in waves if w.strip())
    if not cleaned:
        raise InputError("no waves given", "Give wave sizes such as --waves 1,10%,100%.")
    last_percent = 0
    for wave in cleaned:
        match = _STEP_RE.fullmatch(wave)
        if match is None or int(match.group(1)) == 0:
            raise InputError(
                f"wave size {wave!r} is neither a count nor a percentage",
                "Write each wave as a number of phones (5) or a share of them (25%).",
            )
        if match.group(2):
            percent = int(match.group(1))
            if percent > 100 or percent <= last_percent:
                raise InputError(
                    f"wave sizes {','.join(cleaned)} do not grow up to 100%",
                    "Sizes are cumulative: each share above the one before, e.g. 10%,50%,100%.",
                )
            last_percent = percent
    if not cleaned[-1].endswith("%") or last_percent != 100:
        raise InputError(
            f"the last wave of {','.join(cleaned)} does not reach every phone",
            "End the list with 100%, e.g. --waves 1,10%,100%.",
        )
    return cleaned


def split_waves(
    phones: Sequence[str], waves: Sequence[str], canary: Sequence[str] = ()
) -> list[list[str]]:
    """The phones of each wave, in order: the canary phones first, then the sizes.

    Sizes count the phones outside the canary; a size that adds no phone adds
    no wave.
    """
    first = [p for p in phones if p in set(canary)]
    rest = [p for p in phones if p not in set(first)]
    result: list[list[str]] = [first] if first else []
    done = 0
    for wave in waves:
        size = int(wave.rstrip("%"))
        upto = math.ceil(len(rest) * size / 100) if wave.endswith("%") else size
        upto = min(max(upto, done), len(rest))
        if upto > done:
            result.append(rest[done:upto])
            done = upto
    return result


@dataclass(frozen=True, slots=True)
class Window:
    """When waves may start: always, or every day from ``HH:MM`` to ``HH:MM`` (local time)."""

    text: str = ALWAYS

    @classmethod
    def parse(cls, text: str) -> Window:
        text = text.strip().lower() or ALWAYS
        if text != ALWAYS and not _WINDOW_RE.fullmatch(text):
            raise InputError(
                f"time window {text!r} is not HH:MM-HH:MM",
                "Write it as 22:00-05:00 (server local time; it may cross midnight), or always.",
            )
        return cls(text)

    def is_open(self, when: dt.datetime) -> bool:
        if self.text == ALWAYS:
            return True
        match = _WINDOW_RE.fullmatch(self.text)
        assert match is not None
        start = int(match.group(1)) * 60 + int(match.group(2))
        end = int(match.group(3)) * 60 + int(match.group(4))
        now = when.hour * 60 + when.minute
        if start <= end:
            return start <= now < end
        return now >= start or now < end


@dataclass(frozen=True, slots=True)
class Plan:
    """What the administrator asked for; stored as JSON with the rollout."""

    version: str
    models: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    canary_group: str = ""
    waves: tuple[str, ...] = DEFAULT_WAVES
    window: str = ALWAYS
    deadline: float = 0.0  # seconds a wave has to report; 0: [fleet] report_deadline
    max_failures: int = 0  # failed phones a wave may have without halting the rollout

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        for key in ("models", "groups", "sites", "waves"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Observed:
    """What the server knows about one phone of the current wave."""

    reported: str = ""  # the application version it last reported ("" never)
    stage: str = ""  # the boot stage of its last request (Updater, Application)
    last_seen: float | None = None
    loop_fetches: int = 0  # fetches of the target image since its wave started
    new_errors: tuple[str, ...] = ()  # error finding kinds new in its uploaded logs


@dataclass(frozen=True, slots=True)
class Verdict:
    state: PhoneState
    detail: str


def _clock(when: float) -> str:
    return dt.datetime.fromtimestamp(when).strftime("%H:%M:%S")


def judge(
    seen: Observed,
    target: str,
    *,
    started: float,
    deadline: float,
    now: float,
    loop_threshold: int,
) -> Verdict:
    """The state of one phone of the wave in progress, with the reason in words ("" while
    it is still within the deadline)."""
    if seen.new_errors:
        return Verdict(
            PhoneState.FAILED, f"new errors in its uploaded logs: {', '.join(seen.new_errors)}"
        )
    if seen.reported == target:
        return Verdict(PhoneState.HEALTHY, f"runs {target}")
    if seen.loop_fetches >= loop_threshold:
        return Verdict(
            PhoneState.FAILED,
            f"firmware loop: fetched the {target} image {seen.loop_fetches} times "
            "without running it",
        )
    if now - started <= deadline:
        return Verdict(PhoneState.MOVED, "")  # no news: it keeps what moving it said
    late = f"no {target} by the deadline ({deadline:g} s)"
    if seen.last_seen is None or seen.last_seen < started:
        return Verdict(PhoneState.FAILED, f"{late}: not seen since its wave started")
    if seen.stage == "Updater":
        return Verdict(
            PhoneState.FAILED,
            f"{late}: boot stuck before the application (last request from the Updater "
            f"at {_clock(seen.last_seen)})",
        )
    return Verdict(PhoneState.FAILED, f"{late}: still runs {seen.reported or 'an unknown version'}")


class Step(enum.StrEnum):
    WAIT = "wait"  # the wave is not done yet
    HALT = "halt"  # too many phones of the wave failed
    NEXT = "next"  # the wave is healthy: start the next one
    WINDOW = "window"  # the next wave waits for the time window
    COMPLETE = "complete"  # the last wave is healthy


@dataclass(frozen=True, slots=True)
class Decision:
    step: Step
    failed: tuple[str, ...] = field(default=())  # MACs of the wave's failed phones


def next_step(
    states: dict[str, PhoneState], *, wave: int, waves: int, max_failures: int, window_open: bool
) -> Decision:
    """What the rollout does after judging the phones (MAC -> state) of wave ``wave``."""
    failed = tuple(sorted(mac for mac, state in states.items() if state is PhoneState.FAILED))
    if len(failed) > max_failures:
        return Decision(Step.HALT, failed)
    if wave > 0 and any(state is PhoneState.MOVED for state in states.values()):
        return Decision(Step.WAIT, failed)
    if wave >= waves:
        return Decision(Step.COMPLETE, failed)
    return Decision(Step.NEXT if window_open else Step.WINDOW, failed)


def pinned_version(
    rollout: RolloutState,
    phone: PhoneState,
    target: str,
    previous: str,
    *,
    superseded: bool = False,
) -> str | None:
    """The version a rollout makes the server offer a phone; None: the rollout has no say.

    A running or halted rollout offers its target to the phones of started
    waves and their old version (``previous``; "" for nothing) to the others.
    A completed rollout keeps its phones on the target until a later
    assignment to their group or model (``superseded``).
    """
    if rollout in PINNING:
        return target if phone in OFFERED_TARGET else previous
    if rollout is RolloutState.COMPLETED and not superseded:
        return target
    return None
