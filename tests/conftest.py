"""Shared fixtures: a demo site made by `init`, a running server, a factory-like PKI.

Every test also runs under ``no_leaks``: it fails a test that leaves threads or
file descriptors open after it and its function-scoped fixtures have finished
(DESIGN.md rule 7).
"""

from __future__ import annotations

import gc
import os
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pkitools import FactoryPki, factory_pki
from tests.serverkit import Server, make_site, start_server


@pytest.fixture(scope="session")
def factory() -> FactoryPki:
    """A Polycom-shaped chain (root -> policy -> issuing CA) for factory-like device certs."""
    return factory_pki()


@pytest.fixture(scope="session")
def lab_factory() -> FactoryPki:
    """A factory-shaped chain under other names, for servers that trust the real Polycom chain."""
    return factory_pki("Lab")


@pytest.fixture(scope="session")
def site_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One demo site made by `init` per session; tests get copies (key generation is slow)."""
    return make_site(tmp_path_factory.mktemp("template") / "site")


@pytest.fixture
def site(site_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the demo site (CA, server certificates, boot directory, demo phone)."""
    target = tmp_path / "site"
    shutil.copytree(site_template, target, symlinks=True)
    return target


@pytest.fixture
def server(site: Path) -> Iterator[Server]:
    """`phoneprov serve` on the demo site, HTTP and HTTPS on free ports."""
    running = start_server(site)
    yield running
    running.stop()


LEAK_GRACE = 3.0  # seconds for threads that are stopping and descriptors being closed


def open_fds() -> dict[int, str]:
    """This process's open file descriptors and what each refers to (/proc/self/fd)."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # closed since the listing, like the listing's own descriptor
    return found


def _leaks(
    threads_before: set[threading.Thread], fds_before: dict[int, str]
) -> tuple[list[threading.Thread], dict[int, str]]:
    threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    fds = {fd: target for fd, target in open_fds().items() if fds_before.get(fd) != target}
    return threads, fds


def _sockets() -> dict[str, str]:
    """``socket:[inode]`` -> protocol and ports (or unix socket path), from /proc/self/net."""
    found = {}
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        try:
            rows = Path(f"/proc/self/net/{proto}").read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, remote = (int(a.rpartition(":")[2], 16) for a in fields[1:3])
            found[f"socket:[{fields[9]}]"] = f"{proto} port {local} -> port {remote}"
    try:
        rows = Path("/proc/self/net/unix").read_text().splitlines()[1:]
    except OSError:
        rows = []
    for row in rows:
        fields = row.split()
        found[f"socket:[{fields[6]}]"] = "unix " + (fields[7] if len(fields) > 7 else "(unnamed)")
    return found


def _where(thread: threading.Thread) -> str:
    """The innermost frames of a running thread, so a leak names the code that owns it."""
    frame = sys._current_frames().get(thread.ident or -1)
    if frame is None:
        return ""
    stack = traceback.extract_stack(frame)
    return "".join(f"\n      {f.filename}:{f.lineno} in {f.name}" for f in stack[-3:])


def _describe(threads: list[threading.Thread], fds: dict[int, str]) -> str:
    sockets = _sockets() if any(t.startswith("socket:") for t in fds.values()) else {}
    lines = [f"thread {t.name!r} (daemon={t.daemon}){_where(t)}" for t in threads]
    lines += [
        f"fd {fd} -> {target} {sockets.get(target, '')}".rstrip()
        for fd, target in sorted(fds.items())
    ]
    return "\n  ".join(lines)


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail the test if it leaves threads or file descriptors open (DESIGN.md rule 7).

    The baseline is taken after the session- and module-scoped fixtures the test uses
    are set up (pytest sets wider scopes up first), so what they hold is not counted;
    the check runs after the test's own function-scoped fixtures are torn down, so a
    fixture that does not stop its server or close its socket is caught. Threads still
    stopping and descriptors being closed get ``LEAK_GRACE`` seconds; objects that only
    the garbage collector would close are collected first and not counted.
    """
    threads_before = set(threading.enumerate())
    fds_before = open_fds()
    yield
    threads, fds = _leaks(threads_before, fds_before)
    if threads or fds:
        gc.collect()
        deadline = time.monotonic() + LEAK_GRACE
        while (threads or fds) and time.monotonic() < deadline:
            time.sleep(0.05)
            threads, fds = _leaks(threads_before, fds_before)
    if threads or fds:
        pytest.fail(
            "the test left open:\n  " + _describe(threads, fds) + "\n"
            "Stop each thread and close each socket, file and pipe the test (or its "
            "fixture) opened; docs/development.md says how to find the owner.",
            pytrace=False,
        )
