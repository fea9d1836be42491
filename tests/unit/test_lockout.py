"""The brake on password guessing, in memory: the clock is a number the test moves."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneprov.config import LockoutSettings, load_settings, settings_from_mapping
from phoneprov.errors import ConfigError
from phoneprov.provisioning.audit import SECURITY_LOGGER, Audit
from phoneprov.provisioning.lockout import Attempts, Lockout, Login
from phoneprov.provisioning.site import init_site

LIMITS = LockoutSettings(failures=3, window=60, backoff=10, max_backoff=40)
GUESSER = ("192.0.2.7", "backup")


def _fail(attempts: Attempts, key: tuple[str, str], times: int, now: float) -> list[float]:
    return [attempts.fail(key, now) for _ in range(times)]


def test_ok_a_few_typos_never_lock() -> None:
    attempts = Attempts(LIMITS)
    assert _fail(attempts, GUESSER, 2, 100.0) == [0.0, 0.0]
    assert attempts.wait(GUESSER, 100.0) == 0.0


def test_fail_nth_failure_locks_for_backoff() -> None:
    attempts = Attempts(LIMITS)
    assert _fail(attempts, GUESSER, 3, 100.0) == [0.0, 0.0, 10.0]
    assert attempts.wait(GUESSER, 100.0) == 10.0
    assert attempts.wait(GUESSER, 104.0) == 6.0
    assert attempts.wait(GUESSER, 110.0) == 0.0


def test_fail_failures_while_locked_are_not_counted() -> None:
    attempts = Attempts(LIMITS)
    _fail(attempts, GUESSER, 3, 100.0)
    assert _fail(attempts, GUESSER, 5, 105.0) == [0.0] * 5
    assert attempts.wait(GUESSER, 110.0) == 0.0


def test_fail_locks_in_a_row_double_up_to_max() -> None:
    attempts = Attempts(LIMITS)
    now = 100.0
    locks = []
    for _ in range(5):
        locks.append(_fail(attempts, GUESSER, 3, now)[-1])
        now += locks[-1]  # the guesser comes back the moment the lock ends
    assert locks == [10.0, 20.0, 40.0, 40.0, 40.0]


def test_ok_failures_spread_wider_than_the_window_never_lock() -> None:
    attempts = Attempts(LIMITS)
    for step in range(10):
        assert _fail(attempts, GUESSER, 2, 100.0 + step * 61) == [0.0, 0.0]


def test_ok_doubling_starts_over_after_a_quiet_max_backoff() -> None:
    attempts = Attempts(LIMITS)
    assert _fail(attempts, GUESSER, 3, 100.0)[-1] == 10.0
    assert _fail(attempts, GUESSER, 3, 110.0)[-1] == 20.0
    assert _fail(attempts, GUESSER, 3, 130.0 + 41)[-1] == 10.0


@pytest.mark.parametrize(
    "other",
    [("192.0.2.8", "backup"), ("192.0.2.7", "PlcmSpIp")],
    ids=["ok/other-address-same-account", "ok/same-address-other-account"],
)
def test_ok_a_lock_holds_one_pair_only(other: tuple[str, str]) -> None:
    attempts = Attempts(LIMITS)
    _fail(attempts, GUESSER, 3, 100.0)
    assert attempts.wait(other, 100.0) == 0.0


def test_ok_disabled_never_locks() -> None:
    attempts = Attempts(LockoutSettings(enabled=False, failures=1))
    assert _fail(attempts, GUESSER, 50, 100.0) == [0.0] * 50
    assert attempts.wait(GUESSER, 100.0) == 0.0


def test_ok_memory_is_bounded_oldest_pairs_first() -> None:
    attempts = Attempts(LIMITS, capacity=4)
    _fail(attempts, GUESSER, 3, 100.0)
    for n in range(3):
        attempts.fail((f"198.51.100.{n}", "backup"), 101.0)
    assert attempts.wait(GUESSER, 102.0) == 8.0  # still one of the 4 kept
    attempts.fail(("198.51.100.9", "backup"), 102.0)
    assert attempts.wait(GUESSER, 102.0) == 0.0  # the least recently touched went first


@pytest.fixture
def security_lines() -> Iterator[list[str]]:
    """The security log's lines, caught at its logger (no files)."""
    lines: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger(SECURITY_LOGGER)
    handler = Catch()
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


def test_ok_service_logs_the_lock_and_each_refusal(security_lines: list[str]) -> None:
    clock = [1000.0]
    lockout = Lockout(LIMITS, Audit(), clock=lambda: clock[0])
    login = Login("http", "192.0.2.7", "backup", "user:backup", "/initial.cfg")
    assert [lockout.failed(login) for _ in range(3)] == [None, None, 10]
    clock[0] += 2.5
    assert lockout.refused(login) == 8  # whole seconds, rounded up
    assert lockout.refused(Login("http", "192.0.2.8", "backup", "user:backup")) is None
    assert len(security_lines) == 2
    assert "reason=too-many-failures" in security_lines[0]
    assert 'detail="locked:10s,after:3-failures-in-60s"' in security_lines[0]
    assert "reason=locked-out" in security_lines[1]
    assert 'detail="retry-after:8s"' in security_lines[1]
    assert all("ip=192.0.2.7" in line for line in security_lines)


def test_ok_the_file_init_writes_has_the_defaults(tmp_path: Path) -> None:
    """The generated phoneprov.toml shows [lockout] and the digest setting at their defaults."""
    init_site(tmp_path, ["prov.example.com"])
    settings = load_settings(tmp_path)
    assert settings.lockout == LockoutSettings()
    assert settings.http.allow_digest_without_qop is False
    text = (tmp_path / "phoneprov.toml").read_text()
    assert "[lockout]" in text and "allow_digest_without_qop = false" in text


@pytest.mark.parametrize(
    ("lockout", "needle"),
    [
        ({"failures": 0}, "[lockout] failures = 0 is out of range"),
        ({"backoff": 600, "max_backoff": 60}, "max_backoff = 60 is shorter than backoff = 600"),
        ({"window": "5m"}, "[lockout] window = '5m' is not a whole number"),
        ({"enable": True}, "[lockout] has unknown keys: enable"),
    ],
    ids=["fail/no-failures", "fail/max-below-backoff", "fail/window-type", "fail/unknown-key"],
)
def test_fail_bad_lockout_settings(lockout: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings_from_mapping(Path("/s"), {"lockout": lockout}, Path("phoneprov.toml"))
    assert needle in str(error.value)
    assert error.value.hint
