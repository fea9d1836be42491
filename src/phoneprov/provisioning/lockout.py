"""The brake on password guessing: back-off per (client address, account).

Wrong passwords (HTTP digest responses, FTP logins) are counted per pair of
client address and account. After ``failures`` of them within ``window``
seconds the pair is refused for ``backoff`` seconds; each further lock that
starts within ``max_backoff`` seconds of the end of the one before lasts twice
as long, up to ``max_backoff``. A persistent guesser gets about ``failures``
guesses per ``max_backoff`` seconds per pair. The edges answer a refused pair
with HTTP 429 and ``Retry-After`` (RFC 6585 §4) or FTP 421 (RFC 959 §4.2:
service not available, closing the control connection).

What is counted, and what is not, is the design:

- only wrong passwords of accounts that exist: a success never counts and
  never clears anything, so a boot storm with the right password is never
  refused for its volume; an unknown user name has no password to guess (and
  a lock on it would tell which names exist);
- the key is the pair, never the address or the account alone: the public
  account is shared by every phone, so failures from one address never slow
  phones at another, and failures for one account never refuse another
  account at the same address (phones behind one NAT address).

``Attempts`` is the pure core: the clock is passed in and memory is bounded
(the least recently touched pairs are forgotten first). ``Lockout`` is the
service the edges call: thread-safe (FTP logins run in the FTP thread), with
the clock, and it writes the security lines.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from phoneprov.config import LockoutSettings
from phoneprov.policy import Reason
from phoneprov.provisioning.audit import Audit

# Pairs remembered at once: about 100 bytes each, so a few MiB at most. Forgetting
# the oldest first keeps the pairs being guessed at now.
CAPACITY = 50_000

_MAX_DOUBLINGS = 32  # past this the lock is max_backoff anyway; keeps 2**locks small
Key = tuple[str, str]  # (client address, account user name)


class _Pair:
    """Failures of one (address, account) in the current window, and its lock."""

    __slots__ = ("count", "first", "locks", "until")

    def __init__(self, now: float) -> None:
        self.first = now  # when the current window of failures began
        self.count = 0  # failures since ``first``
        self.locks = 0  # locks in a row, each within max_backoff of the one before
        self.until = 0.0  # refused until then


class Attempts:
    """Counts wrong passwords per key and says how long a key must wait. Pure: time is
    passed in as ``now`` (seconds, any monotonic origin); no I/O."""

    def __init__(self, limits: LockoutSettings, capacity: int = CAPACITY) -> None:
        self.limits = limits
        self._pairs: OrderedDict[Key, _Pair] = OrderedDict()
        self._capacity = capacity

    def wait(self, key: Key, now: float) -> float:
        """Seconds ``key`` is still refused for; 0.0 when it may try."""
        pair = self._pairs.get(key)
        if pair is None or not self.limits.enabled:
            return 0.0
        return max(0.0, pair.until - now)

    def fail(self, key: Key, now: float) -> float:
        """Count one wrong password; return the lock it starts in seconds, else 0.0.

        A failure while the key is locked is not counted (the edges refuse before
        checking the password, so it only happens to a request already under way).
        """
        if not self.limits.enabled:
            return 0.0
        limits = self.limits
        pair = self._pairs.get(key)
        if pair is None:
            pair = self._pairs[key] = _Pair(now)
            while len(self._pairs) > self._capacity:
                self._pairs.popitem(last=False)
        self._pairs.move_to_end(key)
        if pair.until > now:
            return 0.0
        if now - max(pair.first, pair.until) > limits.window:
            # A new window: typos of an hour ago do not count towards today's.
            pair.first, pair.count = now, 0
        pair.count += 1
        if pair.count < limits.failures:
            return 0.0
        if pair.until and now - pair.until > limits.max_backoff:
            pair.locks = 0  # the last lock is long over: start again from ``backoff``
        lock = float(min(limits.backoff * 2**pair.locks, limits.max_backoff))
        pair.locks = min(pair.locks + 1, _MAX_DOUBLINGS)
        pair.until = now + lock
        pair.first, pair.count = pair.until, 0
        return lock


@dataclass(frozen=True, slots=True)
class Login:
    """One login attempt, as the security log names it: who, from where, for what."""

    protocol: str
    ip: str
    account: str  # the account's user name as stored (the key, with ``ip``)
    identity: str  # as the edge writes it in the security log
    path: str = ""


class Lockout:
    """The service: the edges ask ``refused`` before checking a password and call
    ``failed`` after a wrong one. Both write their security line."""

    def __init__(
        self,
        limits: LockoutSettings,
        audit: Audit,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.audit = audit
        self._attempts = Attempts(limits)
        self._clock = clock
        self._lock = threading.Lock()

    def refused(self, login: Login) -> int | None:
        """Whole seconds the client must wait (logged as ``locked-out``), or None."""
        with self._lock:
            wait = self._attempts.wait((login.ip, login.account), self._clock())
        if not wait:
            return None
        seconds = max(1, math.ceil(wait))
        self._log(login, Reason.LOCKED_OUT, f"retry-after:{seconds}s")
        return seconds

    def failed(self, login: Login) -> int | None:
        """Count a wrong password. Whole seconds of the lock it starts (logged as
        ``too-many-failures``), or None when the client may try again at once."""
        with self._lock:
            lock = self._attempts.fail((login.ip, login.account), self._clock())
        if not lock:
            return None
        seconds = max(1, math.ceil(lock))
        limits = self.limits
        self._log(
            login,
            Reason.TOO_MANY_FAILURES,
            f"locked:{seconds}s,after:{limits.failures}-failures-in-{limits.window}s",
        )
        return seconds

    def _log(self, login: Login, reason: Reason, detail: str) -> None:
        # The detail has no spaces: the audit writes a quoted value's spaces as \x20.
        self.audit.refused(
            protocol=login.protocol,
            ip=login.ip,
            identity=login.identity,
            reason=reason.value,
            path=login.path,
            detail=detail,
        )
