"""Shared pieces of the benchmarks: a site on free ports, phoneprov pinned to a core,
and CPU / memory readings of a process tree from /proc (stack_perf.md §2 method)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.nginx import free_port
from phoneprov.provisioning.site import init_site

PHONEPROV = str(Path(sys.executable).with_name("phoneprov"))
TICK = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    found = [pid]
    for current in found:
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                found += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process tree (utime+stime, /proc/PID/stat)."""
    total = 0
    for member in tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def rss_mib(pid: int) -> float:
    """Resident memory of a process tree in MiB (VmRSS)."""
    total = 0
    for member in tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def make_site(root: Path) -> tuple[Path, dict[str, int]]:
    """A demo site for 127.0.0.1 with free ports in its settings."""
    ports = {f"{name}_port": free_port() for name in ("http", "https", "ftp", "tftp")}
    init_site(root, ["127.0.0.1"], demo=True, ports=ports)
    return root, ports


def rsa_only_copy(site: Path, target: Path) -> Path:
    """The same site with only the RSA-2048 server certificate (OpenSSL then must use it)."""
    shutil.copytree(site, target)
    for suffix in (".pem", ".key"):
        (target / "pki" / f"server-ec{suffix}").unlink()
    return target


@dataclass
class Phoneprov:
    process: subprocess.Popen[bytes]
    https_port: int
    http_port: int

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}/"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=45)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_phoneprov(
    site: Path, ports: dict[str, int], *, workers: int = 1, cpus: str | None = "0"
) -> Phoneprov:
    """``phoneprov serve`` pinned to ``cpus``; returns once HTTPS accepts connections."""
    command = [PHONEPROV, "serve", "--site", str(site), "--quiet", "--workers", str(workers)]
    if cpus is not None:
        command = ["taskset", "-c", cpus, *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"phoneprov serve exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", ports["https_port"]), timeout=0.2):
                time.sleep(0.5 if workers > 1 else 0.1)
                return Phoneprov(process, ports["https_port"], ports["http_port"])
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("phoneprov did not listen within 30 s")
