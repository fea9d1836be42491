"""The rollout plan as values: wave sizes, the time window, the health rules, the pins.

The firmware-loop rule is SPEC §9's: a phone that fetches the same image again
and again without ever reporting that version in its Application-stage
User-Agent is fighting another update source. The stuck-boot rule reads the
boot stage from the User-Agent (``Type/Updater`` vs ``Type/Application``,
SPEC §2).
"""

from __future__ import annotations

import datetime as dt

import pytest

from phoneprov.errors import InputError
from phoneprov.protocols.rollout_plan import (
    Observed,
    PhoneState,
    Plan,
    RolloutState,
    Step,
    Window,
    check_rollout_name,
    check_waves,
    judge,
    next_step,
    pinned_version,
    split_waves,
)

PHONES = [f"0004f2{i:06x}" for i in range(20)]


def test_ok_waves_are_cumulative_counts_and_shares() -> None:
    assert check_waves(["1", "10%", "100%"]) == ("1", "10%", "100%")
    waves = split_waves(PHONES, ("1", "10%", "50%", "100%"))
    assert [len(w) for w in waves] == [1, 1, 8, 10]
    assert [p for w in waves for p in w] == PHONES


def test_ok_canary_group_is_the_first_wave_and_sizes_count_the_rest() -> None:
    canary = PHONES[5:7]
    waves = split_waves(PHONES, ("50%", "100%"), canary)
    assert waves[0] == canary
    assert [len(w) for w in waves[1:]] == [9, 9]
    assert not set(canary) & {p for w in waves[1:] for p in w}


def test_ok_a_size_that_adds_no_phone_adds_no_wave() -> None:
    assert [len(w) for w in split_waves(PHONES[:3], ("1", "10%", "100%"))] == [1, 2]


@pytest.mark.parametrize(
    ("waves", "problem"),
    [
        (["1", "10%"], "does not reach every phone"),
        (["50%", "25%", "100%"], "do not grow"),
        (["0", "100%"], "neither a count nor a percentage"),
        (["ten", "100%"], "neither a count nor a percentage"),
        (["100%", "5"], "does not reach every phone"),
        ([], "no waves"),
    ],
)
def test_fail_bad_wave_sizes_are_named(waves: list[str], problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        check_waves(waves)


def test_ok_window_may_cross_midnight() -> None:
    night = Window.parse("22:00-05:00")
    assert night.is_open(dt.datetime(2025, 1, 1, 23, 30))
    assert night.is_open(dt.datetime(2025, 1, 1, 4, 59))
    assert not night.is_open(dt.datetime(2025, 1, 1, 5, 0))
    assert not night.is_open(dt.datetime(2025, 1, 1, 12, 0))
    assert Window.parse("09:00-17:00").is_open(dt.datetime(2025, 1, 1, 9, 0))
    assert Window.parse("").is_open(dt.datetime(2025, 1, 1, 3, 0))
    with pytest.raises(InputError, match="HH:MM-HH:MM"):
        Window.parse("25:00-01:00")


def test_fail_rollout_names_are_plain() -> None:
    assert check_rollout_name("hq-6.4_a") == "hq-6.4_a"
    with pytest.raises(InputError, match="plain name"):
        check_rollout_name("../x")


def test_ok_plan_survives_json() -> None:
    plan = Plan("6.4.0.1", models=("VVX410",), canary_group="c", waves=("2", "100%"), deadline=9)
    assert Plan.from_json(plan.to_json()) == plan


def _judge(seen: Observed, *, now: float = 150.0) -> tuple[PhoneState, str]:
    verdict = judge(seen, "6.4", started=100.0, deadline=60.0, now=now, loop_threshold=3)
    return verdict.state, verdict.detail


def test_ok_a_phone_reporting_the_target_is_healthy() -> None:
    assert _judge(Observed(reported="6.4", stage="Application", last_seen=140)) == (
        PhoneState.HEALTHY,
        "runs 6.4",
    )


def test_fail_a_loop_fails_before_the_deadline() -> None:
    state, detail = _judge(Observed(reported="5.9", loop_fetches=3, last_seen=140))
    assert state is PhoneState.FAILED
    assert detail == "firmware loop: fetched the 6.4 image 3 times without running it"
    assert _judge(Observed(reported="5.9", loop_fetches=2))[0] is PhoneState.MOVED


def test_fail_new_log_errors_fail_even_a_phone_on_the_target() -> None:
    state, detail = _judge(Observed(reported="6.4", new_errors=("tls-handshake-failed",)))
    assert state is PhoneState.FAILED and "tls-handshake-failed" in detail


def test_fail_the_deadline_says_why() -> None:
    late = 170.0
    assert "not seen since its wave started" in _judge(Observed(last_seen=90), now=late)[1]
    stuck = _judge(Observed(reported="5.9", stage="Updater", last_seen=120), now=late)
    assert stuck[0] is PhoneState.FAILED and "stuck before the application" in stuck[1]
    assert "still runs 5.9" in _judge(Observed(reported="5.9", stage="Application",
                                               last_seen=120), now=late)[1]  # fmt: skip


def test_ok_next_step() -> None:
    ok, moved, failed = PhoneState.HEALTHY, PhoneState.MOVED, PhoneState.FAILED
    step = next_step({}, wave=0, waves=3, max_failures=0, window_open=True)
    assert step.step is Step.NEXT
    step = next_step({"a": ok, "b": moved}, wave=1, waves=3, max_failures=0, window_open=True)
    assert step.step is Step.WAIT
    step = next_step({"a": failed, "b": moved}, wave=1, waves=3, max_failures=0, window_open=True)
    assert step.step is Step.HALT and step.failed == ("a",)
    step = next_step({"a": failed, "b": ok}, wave=1, waves=3, max_failures=1, window_open=False)
    assert step.step is Step.WINDOW
    step = next_step({"a": ok}, wave=3, waves=3, max_failures=0, window_open=False)
    assert step.step is Step.COMPLETE


def test_ok_pins_hold_later_waves_and_end_when_superseded_or_aborted() -> None:
    running, halted = RolloutState.RUNNING, RolloutState.HALTED
    assert pinned_version(running, PhoneState.MOVED, "6.4", "5.9") == "6.4"
    assert pinned_version(running, PhoneState.WAITING, "6.4", "5.9") == "5.9"
    assert pinned_version(halted, PhoneState.HELD, "6.4", "") == ""
    assert pinned_version(halted, PhoneState.FAILED, "6.4", "5.9") == "6.4"
    assert pinned_version(RolloutState.COMPLETED, PhoneState.HEALTHY, "6.4", "5.9") == "6.4"
    assert (
        pinned_version(RolloutState.COMPLETED, PhoneState.HEALTHY, "6.4", "5.9", superseded=True)
        is None
    )
    assert pinned_version(RolloutState.ABORTED, PhoneState.MOVED, "6.4", "5.9") is None
    assert pinned_version(RolloutState.PLANNED, PhoneState.WAITING, "6.4", "5.9") is None
