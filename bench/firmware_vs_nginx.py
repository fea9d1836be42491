"""Issue 16's firmware figure: a 40 MB ``sip.ld`` over HTTPS (mutual TLS), phoneprov
against nginx, same certificates and bytes, in one run.

phoneprov serves the image from its firmware catalog (``phoneprov firmware add`` and
``assign``, as a site does), to a VVX410 User-Agent; nginx serves the same bytes as
``sip.ld`` from its root. Each server is pinned to CPU 0, curl to CPU 1; every
download is checked by sha256. Figures: MB/s (curl's wall time, a new TLS
connection per download) and the server's CPU per MB (/proc).

Run: ``python -m bench.firmware_vs_nginx [--size-mb 40] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import PHONEPROV, cpu_seconds, make_site, start_phoneprov
from bench.nginx import start_nginx

DEMO = "0004f2000001"
VVX = "FileTransport PolycomVVX-VVX_410-UA/5.9.7.47435 Type/Updater"


def download(url: str, site: Path, out: Path) -> float:
    """One download with curl on CPU 1; returns its wall time in seconds."""
    demo = site / "demo"
    command = [
        "taskset", "-c", "1", "curl", "-sS", "--fail", "-A", VVX,
        "--cacert", str(site / "pki" / "ca.pem"),
        "--cert", str(demo / f"{DEMO}.pem"), "--key", str(demo / f"{DEMO}.key"),
        "-o", str(out), "-w", "%{time_total}", url,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    return float(result.stdout)


def measure(pid: int, url: str, site: Path, out: Path, digest: str, repeat: int) -> dict[str, Any]:
    download(url, site, out)  # warm-up: the page cache holds the file for both servers
    walls = []
    before = cpu_seconds(pid)
    for _ in range(repeat):
        walls.append(download(url, site, out))
        if hashlib.sha256(out.read_bytes()).hexdigest() != digest:
            raise RuntimeError(f"{url}: the download's sha256 differs")
    used = cpu_seconds(pid) - before
    size_mb = out.stat().st_size / 1e6
    wall = statistics.median(walls)
    return {
        "median_seconds": round(wall, 3),
        "mb_per_second": round(size_mb / wall, 1),
        "server_cpu_ms_per_mb": round(used * 1000 / (size_mb * repeat), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", type=Path, default=None, help="Write the results as JSON.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="phoneprov-firmware-") as tmp:
        work = Path(tmp)
        site, ports = make_site(work / "site")
        image = work / "sip.ld"
        image.write_bytes(os.urandom(args.size_mb * 1_000_000))
        digest = hashlib.sha256(image.read_bytes()).hexdigest()
        for step in (
            ["add", str(image), "--version", "5.9.8.5760", "--models", "VVX410"],
            ["assign", "--version", "5.9.8.5760"],
        ):
            subprocess.run([PHONEPROV, "firmware", *step, "--site", str(site)], check=True,
                           capture_output=True, timeout=120)  # fmt: skip
        root = work / "nginx-root"
        root.mkdir()
        os.link(image, root / "sip.ld")
        out = work / "download.bin"
        server = start_phoneprov(site, ports)
        try:
            ours = measure(
                server.process.pid, server.url + "sip.ld", site, out, digest, args.repeat
            )
        finally:
            server.stop()
        time.sleep(0.5)
        nginx = start_nginx(site, work / "nginx", root, cpus="0")
        try:
            theirs = measure(
                nginx.process.pid, nginx.url + "sip.ld", site, out, digest, args.repeat
            )
        finally:
            nginx.stop()
    result = {
        "size_mb": args.size_mb,
        "repeat": args.repeat,
        "phoneprov": ours,
        "nginx": theirs,
        "throughput_ratio_phoneprov_over_nginx": round(
            ours["mb_per_second"] / max(theirs["mb_per_second"], 1e-9), 3
        ),
    }
    print(json.dumps(result), flush=True)
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
