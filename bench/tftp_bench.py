"""TFTP benchmark: phoneprov against tftpd-hpa on the same machine, in the same run.

Run by hand (not by the tests)::

    .venv/bin/python bench/tftp_bench.py            # prints a Markdown table
    .venv/bin/python bench/tftp_bench.py --repeat 5

Measured, for each server: a 20 MB file with blksize 1428 at windowsize 16 and 1
(tftpd-hpa 5.2 does not implement RFC 7440, so it answers without windowsize and
the transfer runs at 1), the same with the C clients atftp and tftp-hpa, and 200
concurrent small transfers. Wall time is the client's; server CPU is the
server process's user + system time from /proc, the figure that does not
depend on the client. Each server runs in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

FIRMWARE = 20 * 1024 * 1024
SMALL = 3 * 1024  # about the size of a phone's bootstrap config
CONCURRENT = 200
T = TypeVar("T")


@dataclass
class Result:
    size: int
    sha256: str


class _Reader(asyncio.DatagramProtocol):
    """One RRQ with blksize/windowsize, acknowledged the RFC 7440 way."""

    def __init__(self, request: bytes, server: tuple[str, int], done: asyncio.Future[Result],
                 blksize: int) -> None:  # fmt: skip
        self.request = request
        self.server = server
        self.done = done
        self.blksize = 512  # until the OACK says otherwise
        self.window = 1
        self.asked_blksize = blksize
        self.expected = 1
        self.since_ack = 0
        self.size = 0
        self.digest = hashlib.sha256()
        self.peer: tuple[str, int] | None = None
        self.last = request
        self.tries = 0
        self.transport: asyncio.DatagramTransport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send(self.request, self.server)

    def _send(self, datagram: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.last = datagram
        self.transport.sendto(datagram, addr)
        if self.timer is not None:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(1.0, self._timeout)

    def _timeout(self) -> None:
        self.tries += 1
        if self.tries > 5:
            self._end(TimeoutError("no answer"))
            return
        self._send(self.last, self.peer or self.server)

    def _end(self, outcome: Result | Exception) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.transport is not None:
            self.transport.close()
        if not self.done.done():
            if isinstance(outcome, Exception):
                self.done.set_exception(outcome)
            else:
                self.done.set_result(outcome)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.peer = self.peer or addr
        opcode, block = struct.unpack("!HH", data[:4])
        if opcode == 5:
            self._end(RuntimeError(f"TFTP error {block}: {data[4:-1].decode()}"))
        elif opcode == 6:
            fields = data[2:-1].decode().split("\0")
            options = dict(zip(fields[::2], fields[1::2], strict=True))
            self.blksize = int(options.get("blksize", 512))
            self.window = int(options.get("windowsize", 1))
            self._send(struct.pack("!HH", 4, 0), addr)
        elif opcode == 3:
            self.tries = 0
            if block != self.expected & 0xFFFF:
                self._send(struct.pack("!HH", 4, (self.expected - 1) & 0xFFFF), addr)
                self.since_ack = 0
                return
            payload = data[4:]
            self.digest.update(payload)
            self.size += len(payload)
            self.expected += 1
            self.since_ack += 1
            last = len(payload) < self.blksize
            if last or self.since_ack == self.window:
                self.since_ack = 0
                self._send(struct.pack("!HH", 4, block), addr)
            if last:
                self._end(Result(self.size, self.digest.hexdigest()))


async def fetch(port: int, name: str, blksize: int, window: int) -> Result:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Result] = loop.create_future()
    fields = [name, "octet", "blksize", str(blksize), "tsize", "0"]
    if window > 1:
        fields += ["windowsize", str(window)]
    request = b"\0\x01" + b"".join(f.encode() + b"\0" for f in fields)
    await loop.create_datagram_endpoint(
        lambda: _Reader(request, ("127.0.0.1", port), done, blksize), local_addr=("127.0.0.1", 0)
    )
    return await done


def _ticks(pid: int) -> int:
    """User + system clock ticks of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime


class CpuMeter:
    """CPU seconds used by a server process and the children it forks meanwhile.

    tftpd-hpa forks a child per transfer and ignores SIGCHLD, so the kernel never
    adds the children's time to the parent's: the children are sampled every 5 ms
    instead. A child that lives less than that is missed, so for many short
    transfers the tftpd-hpa figure is a lower bound.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.children: dict[int, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        while not self.stop.is_set():
            for child in path.read_text().split():
                ticks = _ticks(int(child))
                if ticks:
                    self.children[int(child)] = max(ticks, self.children.get(int(child), 0))
            time.sleep(0.005)

    def __enter__(self) -> CpuMeter:
        self.start = _ticks(self.pid)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.ticks = _ticks(self.pid) - self.start + sum(self.children.values())

    @property
    def seconds(self) -> float:
        return self.ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_phoneprov(site: Path) -> Server:
    port_file = site / "port"
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(site)])
    deadline = time.monotonic() + 20
    while not port_file.exists() or not port_file.read_text().strip():
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("phoneprov TFTP server did not start")
        time.sleep(0.05)
    return Server("phoneprov", process, int(port_file.read_text()))


def start_tftpd_hpa(root: Path) -> Server:
    binary = shutil.which("in.tftpd") or "/usr/sbin/in.tftpd"
    port = free_port()
    process = subprocess.Popen([binary, "-L", "-s", str(root), "-a", f"127.0.0.1:{port}"])
    time.sleep(0.3)
    if process.poll() is not None:
        raise RuntimeError("tftpd-hpa did not start")
    return Server("tftpd-hpa", process, port)


def serve_forever(site: Path) -> None:
    """The phoneprov side, in its own process: the real server over a real site."""
    from phoneprov.config import Settings, TftpSettings
    from phoneprov.provisioning.services import open_phone_services
    from phoneprov.servers.tftp import start_tftp

    async def run() -> None:
        settings = Settings(
            site_dir=site, tftp=TftpSettings(bind="127.0.0.1", port=0, max_transfers=1000)
        )
        server = await start_tftp(settings.tftp, open_phone_services(settings))
        (site / "port").write_text(str(server.port))
        await asyncio.Event().wait()

    asyncio.run(run())


def timed(server: Server, action: Callable[[], T]) -> tuple[float, float, T]:
    """Return (wall seconds, server CPU seconds, result) of ``action``."""
    with CpuMeter(server.process.pid) as meter:
        started = time.perf_counter()
        result = action()
        wall = time.perf_counter() - started
    return wall, meter.seconds, result


def one_transfer(server: Server, blksize: int, window: int, expected: str) -> None:
    result = asyncio.run(fetch(server.port, "sip.ld", blksize, window))
    if result.sha256 != expected:
        raise RuntimeError(f"{server.name}: sha256 mismatch at windowsize {window}")


def c_client(server: Server, command: list[str], target: Path, expected: str) -> None:
    target.unlink(missing_ok=True)
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    if hashlib.sha256(target.read_bytes()).hexdigest() != expected:
        raise RuntimeError(f"{server.name}: {command[0]} got a different file")


def concurrent(server: Server, expected: str) -> int:
    """200 transfers at once; return the number that failed or came back different."""

    async def run() -> list[Result | BaseException]:
        return await asyncio.gather(
            *(fetch(server.port, "initial.cfg", 1428, 1) for _ in range(CONCURRENT)),
            return_exceptions=True,
        )

    results = asyncio.run(run())
    return sum(1 for r in results if not isinstance(r, Result) or r.sha256 != expected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_forever(args.serve)
        return
    with tempfile.TemporaryDirectory(prefix="tftp-bench-") as temp:
        site = Path(temp) / "site"
        boot = site / "boot"
        boot.mkdir(parents=True)
        (site / "phoneprov.toml").write_text("[site]\n")
        firmware, small = os.urandom(FIRMWARE), os.urandom(SMALL)
        (boot / "sip.ld").write_bytes(firmware)
        (boot / "initial.cfg").write_bytes(small)  # a bootstrap name: public over TFTP
        # tftpd-hpa drops to the "tftp" user: let it read the boot directory.
        for path in (Path(temp), site, boot):
            path.chmod(0o755)
        for path in boot.iterdir():
            path.chmod(0o644)
        firmware_sha = hashlib.sha256(firmware).hexdigest()
        small_sha = hashlib.sha256(small).hexdigest()
        servers = [start_phoneprov(site), start_tftpd_hpa(boot)]
        try:
            rows = measure(servers, firmware_sha, small_sha, args.repeat, Path(temp))
        finally:
            for server in servers:
                server.stop()
    print("| case | phoneprov wall s | phoneprov CPU s | tftpd-hpa wall s | tftpd-hpa CPU s |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(row)


def cases(out: Path, firmware_sha: str) -> dict[str, Callable[[Server], None]]:
    """Each case takes a server and runs one measured transfer."""

    def python_ws16(server: Server) -> None:
        one_transfer(server, 1428, 16, firmware_sha)

    def python_ws1(server: Server) -> None:
        one_transfer(server, 1428, 1, firmware_sha)

    def atftp_ws16(server: Server) -> None:
        command = ["atftp", "--option", "blksize 1428", "--option", "windowsize 16", "-g",
                   "-r", "sip.ld", "-l", str(out), "127.0.0.1", str(server.port)]  # fmt: skip
        c_client(server, command, out, firmware_sha)

    def hpa_client(server: Server) -> None:
        command = ["tftp", "-m", "binary", "127.0.0.1", str(server.port), "-c", "get",
                   "sip.ld", str(out)]  # fmt: skip
        c_client(server, command, out, firmware_sha)

    return {
        "20 MB, Python client, blksize 1428, windowsize 16": python_ws16,
        "20 MB, Python client, blksize 1428, windowsize 1": python_ws1,
        "20 MB, atftp, blksize 1428, windowsize 16": atftp_ws16,
        "20 MB, tftp-hpa client, blksize 512 (RFC 1350)": hpa_client,
    }


def measure(servers: list[Server], firmware_sha: str, small_sha: str, repeat: int,
            temp: Path) -> list[str]:  # fmt: skip
    """Return one Markdown row per case: median wall and CPU seconds per server."""
    rows = []
    for label, case in cases(temp / "out.ld", firmware_sha).items():
        cells = []
        for server in servers:
            runs = [timed(server, partial(case, server)) for _ in range(repeat)]
            cells.append(f"{statistics.median(r[0] for r in runs):.2f}")
            cells.append(f"{statistics.median(r[1] for r in runs):.2f}")
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = []
    for server in servers:
        failed, walls, cpus = 0, [], []
        for _ in range(repeat):
            wall, cpu, failures = timed(server, partial(concurrent, server, small_sha))
            failed += failures
            walls.append(wall)
            cpus.append(cpu)
        cells.append(f"{statistics.median(walls):.2f} ({failed} failed)")
        cells.append(f"{statistics.median(cpus):.2f}")
    rows.append(f"| {CONCURRENT} concurrent 3 KB transfers | " + " | ".join(cells) + " |")
    return rows


if __name__ == "__main__":
    main()
