"""FTP benchmark: phoneprov against vsftpd on the same machine, in the same run.

Run by hand (not by the tests)::

    .venv/bin/python -m bench.ftp_bench             # prints a Markdown table
    .venv/bin/python -m bench.ftp_bench --repeat 9

Both servers serve the same 20 MB file and the same 3 KB file from
127.0.0.1, each pinned to CPU 0 (``taskset``); the client, curl, runs on CPU 1.
phoneprov is ``phoneprov serve`` on a demo site, logged in with a site
account (the 3 KB file is a shared file, which the public PlcmSpIp may not
read); vsftpd runs in the foreground from a generated config file in a
temporary folder, anonymous and read-only. Measured per server: the 20 MB
RETR (curl's total time, and the transfer alone: total minus pre-transfer,
i.e. without connect and login), server CPU per 20 MB RETR (user + system
of the server and its reaped children, from /proc), and the median of 100
sequential sessions (connect, login, RETR 3 KB; curl's total time).
Every download is checked by sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness import PHONEPROV, make_site, start_phoneprov, tree
from bench.nginx import free_port

BIG = 20 * 1024 * 1024
SMALL = 3 * 1024
SESSIONS = 100


@dataclass
class Figures:
    total: float
    transfer: float
    cpu: float
    sessions: float


def vsftpd_config(root: Path, empty: Path, port: int, passive: int) -> str:
    """A foreground, anonymous, read-only vsftpd on 127.0.0.1:``port``."""
    return "\n".join([
        "listen=YES", "listen_ipv6=NO", "listen_address=127.0.0.1", f"listen_port={port}",
        "background=NO", "anonymous_enable=YES", "no_anon_password=YES",
        f"anon_root={root}", "local_enable=NO", "write_enable=NO",
        # No user switch and no chroot: the benchmark runs as whoever starts it.
        "run_as_launching_user=YES", f"secure_chroot_dir={empty}",
        "pasv_enable=YES", f"pasv_min_port={passive}", f"pasv_max_port={passive + 20}",
        "xferlog_enable=NO", "seccomp_sandbox=NO", "",
    ])  # fmt: skip


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def curl(url: str, out: Path) -> tuple[float, float]:
    """(total, transfer-only) seconds for one download with curl on CPU 1."""
    result = subprocess.run(
        ["taskset", "-c", "1", "curl", "-sS", "-o", str(out),
         "-w", "%{time_total} %{time_pretransfer}", url],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    total, pretransfer = (float(value) for value in result.stdout.split())
    return total, total - pretransfer


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process tree, with children it has reaped (vsftpd forks a
    process per session that is gone before it can be sampled): /proc/PID/stat fields
    utime, stime, cutime, cstime."""
    total = 0
    for member in tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def measure(base: str, pid: int, repeat: int, expect: dict[str, str], scratch: Path) -> Figures:
    """Figures for one server; ``base`` is ftp://user:password@host:port."""
    out = scratch / "download"
    curl(f"{base}/sip.ld", out)  # warm the page cache and the server
    totals, transfers = [], []
    cpu_before = cpu_seconds(pid)
    for _ in range(repeat):
        total, transfer = curl(f"{base}/sip.ld", out)
        assert sha256(out) == expect["sip.ld"], "20 MB download differs"
        totals.append(total)
        transfers.append(transfer)
    cpu = (cpu_seconds(pid) - cpu_before) / repeat
    sessions = statistics.median(curl(f"{base}/small.cfg", out)[0] for _ in range(SESSIONS))
    assert sha256(out) == expect["small.cfg"], "3 KB download differs"
    return Figures(statistics.median(totals), statistics.median(transfers), cpu, sessions)


def run(repeat: int) -> dict[str, Figures]:
    with tempfile.TemporaryDirectory(prefix="ftp-bench-") as temp:
        scratch = Path(temp)
        site, ports = make_site(scratch / "site")
        files = {"sip.ld": os.urandom(BIG), "small.cfg": os.urandom(SMALL)}
        vs_root, empty = scratch / "vsftpd-root", scratch / "empty"
        vs_root.mkdir()
        empty.mkdir()
        for name, data in files.items():
            (site / "boot" / name).write_bytes(data)
            (vs_root / name).write_bytes(data)
        expect = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        # small.cfg is a shared file; the site account may read it, PlcmSpIp may not.
        subprocess.run(
            [PHONEPROV, "account", "set", "bench",
             "--site", str(site), "--kind", "site", "--password", "bench"],
            check=True, capture_output=True,
        )  # fmt: skip
        results: dict[str, Figures] = {}
        phoneprov = start_phoneprov(site, ports)
        try:
            wait_for_port(ports["ftp_port"], phoneprov.process)
            results["phoneprov"] = measure(
                f"ftp://bench:bench@127.0.0.1:{ports['ftp_port']}",
                phoneprov.process.pid, repeat, expect, scratch,
            )  # fmt: skip
        finally:
            phoneprov.stop()
        port = free_port()
        config = scratch / "vsftpd.conf"
        config.write_text(vsftpd_config(vs_root, empty, port, 40000 + port % 20000))
        vsftpd = subprocess.Popen(
            ["taskset", "-c", "0", "vsftpd", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, vsftpd)
            results["vsftpd"] = measure(
                f"ftp://anonymous:x@127.0.0.1:{port}", vsftpd.pid, repeat, expect, scratch
            )
        finally:
            vsftpd.terminate()
            vsftpd.wait(10)
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="20 MB downloads per server")
    args = parser.parse_args()
    results = run(args.repeat)
    print(
        "| server | 20 MB RETR total s | transfer only s | server CPU s per 20 MB "
        "| session: connect, login, 3 KB RETR, ms |"
    )
    print("|---|---|---|---|---|")
    for name, figures in results.items():
        print(
            f"| {name} | {figures.total:.3f} | {figures.transfer:.3f} | {figures.cpu:.3f} "
            f"| {figures.sessions * 1000:.1f} |"
        )
    ours, theirs = results["phoneprov"], results["vsftpd"]
    print(
        f"\nphoneprov / vsftpd, 20 MB total: {ours.total / theirs.total:.2f}x, "
        f"transfer only: {ours.transfer / theirs.transfer:.2f}x"
    )


if __name__ == "__main__":
    main()
