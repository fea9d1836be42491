"""Issue 2's figure: mutual-TLS requests with a new TLS connection per request,
phoneprov against nginx (``ssl_verify_client on``, same certificates and files).

With 1 worker each server is pinned to CPU 0 (``taskset``), ``ab -E`` (new
connection per request, no ``-k``) to CPU 1. With 2 workers the server gets both
CPUs and ab shares them (a 2-core machine has no third core for the load
generator): that row shows throughput with a core per worker, ab's own CPU
included. The figure is server CPU time per request (utime+stime of the process
tree, /proc) -- nginx's divided by phoneprov's -- for ECDSA P-256 and RSA-2048
server keys. Also: phoneprov's resident memory holding 1,000 idle mutual-TLS
connections.

Run: ``python -m bench.mtls_vs_nginx [--seconds 8] [--concurrency 32]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import cpu_seconds, make_site, rsa_only_copy, rss_mib, start_phoneprov
from bench.nginx import export_boot_files, start_nginx

DEMO = "0004f2000001"
FILE = "000000000000.cfg"  # every phone asks for it; phoneprov renders it per request


def ab(url: str, client_pem: Path, seconds: float, concurrency: int, cpus: str) -> dict[str, float]:
    """Run ``ab -E`` on ``cpus``; return requests/s, completed, failed and non-2xx counts."""
    command = [
        "taskset",
        "-c",
        cpus,
        "ab",
        "-q",
        "-r",
        "-t",
        str(seconds),
        "-n",
        "10000000",
        "-c",
        str(concurrency),
        "-E",
        str(client_pem),
        url,
    ]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60).stdout

    def number(label: str) -> float:
        match = re.search(rf"{label}:\s+([\d.]+)", out)
        return float(match.group(1)) if match else 0.0

    return {
        "rps": number("Requests per second"),
        "complete": number("Complete requests"),
        "failed": number("Failed requests"),
        "non2xx": number("Non-2xx responses"),
    }


def measure(
    pid: int, url: str, client_pem: Path, seconds: float, concurrency: int, cpus: str
) -> dict[str, float]:
    ab(url, client_pem, 1.0, concurrency, cpus)  # warm-up (stack_perf.md: 1 s)
    before = cpu_seconds(pid)
    result = ab(url, client_pem, seconds, concurrency, cpus)
    used = cpu_seconds(pid) - before
    result["server_cpu_us_per_request"] = round(used * 1e6 / max(result["complete"], 1), 1)
    return result


async def _hold_idle(url_port: int, ca: Path, cert: Path, key: Path, count: int) -> list[Any]:
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(cert, key)
    writers = []
    for start in range(0, count, 100):
        batch = await asyncio.gather(
            *(
                asyncio.open_connection(
                    "127.0.0.1", url_port, ssl=context, server_hostname="127.0.0.1"
                )
                for _ in range(start, min(count, start + 100))
            )
        )
        writers += [writer for _, writer in batch]
    return writers


def idle_memory(site: Path, ports: dict[str, int], count: int) -> dict[str, float]:
    server = start_phoneprov(site, ports, workers=1)
    try:
        time.sleep(1.0)
        base = rss_mib(server.process.pid)

        async def run() -> float:
            writers = await _hold_idle(
                ports["https_port"],
                site / "pki" / "ca.pem",
                site / "demo" / f"{DEMO}.pem",
                site / "demo" / f"{DEMO}.key",
                count,
            )
            await asyncio.sleep(2.0)
            held = rss_mib(server.process.pid)
            open_now = sum(1 for w in writers if not w.is_closing())
            for writer in writers:
                writer.close()
            return held if open_now == count else -float(open_now)

        held = asyncio.run(run())
    finally:
        server.stop()
    return {
        "connections": count,
        "rss_idle_server_mib": round(base, 1),
        "rss_with_connections_mib": round(held, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--output", type=Path, default=None, help="Write the results as JSON.")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="phoneprov-bench-") as tmp:
        work = Path(tmp)
        ec_site, ports = make_site(work / "site")
        rsa_site = rsa_only_copy(ec_site, work / "site-rsa")
        client_pem = work / "client.pem"
        client_pem.write_text(
            (ec_site / "demo" / f"{DEMO}.pem").read_text()
            + (ec_site / "demo" / f"{DEMO}.key").read_text()
        )
        exporter = start_phoneprov(ec_site, ports)
        try:
            root = export_boot_files(ec_site, exporter.url, work / "nginx-root")
        finally:
            exporter.stop()
        for key, site in (("ecdsa-p256", ec_site), ("rsa-2048", rsa_site)):
            for workers in (1, 2):
                cpus, ab_cpus = ("0", "1") if workers == 1 else ("0,1", "0,1")
                server = start_phoneprov(site, ports, workers=workers, cpus=cpus)
                try:
                    ours = measure(
                        server.process.pid,
                        server.url + FILE,
                        client_pem,
                        args.seconds,
                        args.concurrency,
                        ab_cpus,
                    )
                finally:
                    server.stop()
                nginx = start_nginx(
                    site,
                    work / f"nginx-{key}-{workers}",
                    root,
                    workers=workers,
                    cpus=cpus,
                    key_types=("ec", "rsa") if key == "ecdsa-p256" else ("rsa",),
                )
                try:
                    theirs = measure(
                        nginx.process.pid,
                        nginx.url + FILE,
                        client_pem,
                        args.seconds,
                        args.concurrency,
                        ab_cpus,
                    )
                finally:
                    nginx.stop()
                row = {
                    "server_key": key,
                    "workers": workers,
                    "server_cpus": cpus,
                    "ab_cpus": ab_cpus,
                    "phoneprov": ours,
                    "nginx": theirs,
                    "figure_nginx_over_phoneprov": round(
                        theirs["server_cpu_us_per_request"]
                        / max(ours["server_cpu_us_per_request"], 1e-9),
                        3,
                    ),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
        memory = idle_memory(ec_site, ports, args.idle)
        print(json.dumps(memory), flush=True)
    result = {
        "file": FILE,
        "seconds": args.seconds,
        "concurrency": args.concurrency,
        "runs": rows,
        "memory": memory,
    }
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
