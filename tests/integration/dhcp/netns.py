"""Two private network namespaces joined by a veth pair, always torn down.

The server side gets 10.99.0.1/24; the client side has no address until DHCP
gives one. Names carry a random token so concurrent test runs never collide,
and nothing touches the host's own interfaces or addresses.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

SERVER_IP = "10.99.0.1"
SUBNET = "10.99.0.0"
POOL = ("10.99.0.50", "10.99.0.99")


@dataclass(frozen=True)
class Pair:
    server_ns: str
    client_ns: str
    server_if: str
    client_if: str


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here (None when they can): probe by making one."""
    if shutil.which("ip") is None:
        return "iproute2 'ip' is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); run the suite as root, as CI does"
    probe = f"ppdprobe{secrets.token_hex(3)}"
    result = subprocess.run(["ip", "netns", "add", probe], capture_output=True, timeout=10)
    if result.returncode != 0:
        return f"ip netns add failed: {result.stderr.decode(errors='replace').strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10)
    return None


@contextmanager
def namespace_pair() -> Iterator[Pair]:
    """Create the pair, yield its names, delete both namespaces (and so the veth) on exit."""
    token = secrets.token_hex(3)
    pair = Pair(f"ppd{token}s", f"ppd{token}c", f"ppd{token}a", f"ppd{token}b")
    try:
        _ip("netns", "add", pair.server_ns)
        _ip("netns", "add", pair.client_ns)
        _ip("link", "add", pair.server_if, "type", "veth", "peer", "name", pair.client_if)
        _ip("link", "set", pair.server_if, "netns", pair.server_ns)
        _ip("link", "set", pair.client_if, "netns", pair.client_ns)
        _ip("-n", pair.server_ns, "addr", "add", f"{SERVER_IP}/24", "dev", pair.server_if)
        for ns, dev in ((pair.server_ns, pair.server_if), (pair.client_ns, pair.client_if)):
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", dev, "up")
        yield pair
    finally:
        for ns in (pair.server_ns, pair.client_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        # Only left in the root namespace when setup failed before the move.
        subprocess.run(["ip", "link", "del", pair.server_if], capture_output=True, timeout=10)


class Process:
    """A program started inside a namespace; ``ip netns exec`` execs it, so pid is its own."""

    def __init__(self, ns: str, argv: Sequence[str], log: Path, env: dict[str, str]) -> None:
        self.log = log
        self._out: IO[bytes] = log.open("wb")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._out.close()


def wait_until(check: object, what: str, timeout: float = 10.0) -> None:
    """Poll ``check()`` every 50 ms; raise AssertionError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def udp_listening(ns: str, port: int) -> bool:
    """True when something in ``ns`` has bound UDP ``port``."""
    result = subprocess.run(
        ["ip", "netns", "exec", ns, "ss", "-Huln", f"sport = :{port}"],
        capture_output=True,
        text=True,
        timeout=5,
    )
    return bool(result.stdout.strip())
