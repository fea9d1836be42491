"""The audit trail: who changed what, when, through the CLI or the admin API.

Every service call that changes the site is decorated with ``@audited``: after it
succeeds, one row goes to the ``audit_log`` table with the actor, the action,
the target and the changed fields as ``[before, after]``, secrets masked. The
actor is ``cli:<unix user>`` unless the admin API named the administrator or
token for the call (``acting_as``). The trail is append-only: nothing in
phoneprov updates or deletes its rows.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import getpass
import inspect
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from typing import Any, ParamSpec, TypeVar

from phoneprov.config import Settings
from phoneprov.records import AuditEntry
from phoneprov.store import Store, open_store

P = ParamSpec("P")
R = TypeVar("R")
MASK = "********"
# A field whose name says it holds a secret is masked whatever its value.
_SECRET_NAME = re.compile(r"password|secret|token|ha1|passphrase|key_pem", re.IGNORECASE)
# Secrets inside a value: "password=..." in line specs and the like.
_SECRET_VALUE = re.compile(r"(password\s*[=:]\s*)[^,;\s]*", re.IGNORECASE)

_actor: contextvars.ContextVar[str | None] = contextvars.ContextVar("phoneprov_actor", default=None)

Snapshot = Callable[[Settings, str], Mapping[str, object]]


def current_actor() -> str:
    """Who is acting: the API's administrator or token, else ``cli:<unix user>``."""
    named = _actor.get()
    if named:
        return named
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}"


@contextlib.contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Record the changes made inside the block as done by ``actor`` (``token:NAME``...)."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


def mask(name: str, value: object) -> object:
    """``value`` with secrets replaced by ``MASK`` (by field name, and inside texts)."""
    if _SECRET_NAME.search(name):
        return MASK if value not in (None, "", [], ()) else value
    if isinstance(value, str):
        return _SECRET_VALUE.sub(lambda m: m.group(1) + MASK, value)
    if isinstance(value, list | tuple):
        return [mask(name, item) for item in value]
    if isinstance(value, dict):
        return {str(k): mask(str(k), v) for k, v in value.items()}
    return value


def _plain(value: object) -> object:
    """A JSON-friendly form of a call argument (paths, enums and MACs as text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def diff(before: Mapping[str, object], after: Mapping[str, object]) -> dict[str, list[object]]:
    """The fields that changed, as ``[before, after]``, masked."""
    changes: dict[str, list[object]] = {}
    for key in sorted(set(before) | set(after)):
        old, new = _plain(before.get(key)), _plain(after.get(key))
        if old != new:
            changes[key] = [mask(key, old), mask(key, new)]
    return changes


def append(store: Store, action: str, target: str, changes: dict[str, list[object]]) -> int:
    """Write one audit row through an open store; returns its id."""
    entry = AuditEntry(time.time(), current_actor(), action, target, changes)
    return store.admin.append_audit(entry)


def record(settings: Settings, action: str, target: str, changes: dict[str, list[object]]) -> int:
    """Write one audit row to the site's database; returns its id."""
    with closing(open_store(settings)) as store:
        return append(store, action, target, changes)


def audited(
    action: str, *, target: str = "", snapshot: Snapshot | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Record a successful call of a service function as an audit event.

    The function's first parameter is ``settings``. ``target`` names the parameter
    that says what was changed (a MAC, an account name). With ``snapshot``, the
    changes are what it reads before and after the call; without, the call's
    other arguments (``[null, value]``). A call that raises records nothing.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments: dict[str, Any] = dict(bound.arguments)
            settings: Settings = arguments.pop("settings")
            what = str(arguments.get(target, "")) if target else ""
            before = snapshot(settings, what) if snapshot is not None else {}
            result = func(*args, **kwargs)
            if snapshot is not None:
                changes = diff(before, snapshot(settings, what))
            else:
                given = {k: v for k, v in arguments.items() if k != target and _given(v)}
                changes = diff({}, given)
            record(settings, action, what, changes)
            return result

        return wrapper

    return decorate


def _given(value: object) -> bool:
    """An argument worth recording: not a stream, a callback or left at nothing."""
    if value is None or value == () or value == [] or callable(value):
        return False
    return not hasattr(value, "read")
