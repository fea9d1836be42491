"""Issues 7 and 16: ``phoneprov bench storm`` against phoneprov and against nginx on the
same machine, same certificates and files, in one run: boots/s ratio and zero failures,
then each server again at 80 % of the capacity it showed (``--rate``), for the latency
phones see on a busy day (issue 16: 10,000 phones at concurrency 1,000, p99 < 500 ms).

Each phone boots the application stage over HTTPS with mutual TLS (a new TLS
connection per file, 14 requests). The device certificates come from a bench CA
added to the site's trust directory (issuing thousands from the site's own CA
would fill its index). Servers pinned to CPU 0, the storm client to CPU 1; the
server CPU per boot is read from /proc like ``bench.mtls_vs_nginx``.

Run: ``python -m bench.storm_vs_nginx [--phones 10000] [--concurrency 1000]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bench.harness import PHONEPROV, cpu_seconds, make_site, start_phoneprov
from bench.nginx import export_boot_files, start_nginx
from phoneprov.model import MacAddress
from phoneprov.sim.storm import storm_macs

FIRST_MAC = MacAddress("0004f2d00000")
LOAD = 0.8  # of the capacity a server showed, for the latency run


def issue_bench_certs(site: Path, folder: Path, count: int) -> None:
    """A bench CA in the site's trust store and ``count`` device certificates (CN = MAC).

    One key pair is shared by all phones: the server's work per handshake is the same.
    """
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "phoneprov bench device CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (site / "trust" / "bench-device-ca.pem").write_bytes(
        ca.public_bytes(serialization.Encoding.PEM)
    )
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    folder.mkdir(parents=True, exist_ok=True)
    for mac in storm_macs(FIRST_MAC, count):
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, mac.value)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        (folder / f"{mac.value}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (folder / f"{mac.value}.key").write_bytes(key_pem)


def storm(
    url: str,
    certs: Path,
    ca: Path,
    phones: int,
    concurrency: int,
    max_seconds: float,
    rate: float | None = None,
) -> dict[str, Any]:
    command = [
        "taskset",
        "-c",
        "1",
        PHONEPROV,
        "bench",
        "storm",
        "--url",
        url,
        "--certs",
        str(certs),
        "--ca",
        str(ca),
        "--stage",
        "application",
        "--phones",
        str(phones),
        "--concurrency",
        str(concurrency),
        "--max-seconds",
        str(max_seconds),
        "--format",
        "json",
        *(["--rate", f"{rate:.2f}"] if rate else []),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=max_seconds + 120)
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def run_one(
    pid: int,
    url: str,
    certs: Path,
    ca: Path,
    args: argparse.Namespace,
    full: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A storm of ``args.phones``; with ``full`` (that storm's summary), a storm at 80 % of
    the boots/s it reached, of the phones that start in ``args.load_seconds``."""
    phones, rate = args.phones, None
    if full is not None:
        rate = LOAD * full["boots_per_second"]
        phones = max(1, min(args.phones, int(rate * args.load_seconds)))
    before = cpu_seconds(pid)
    summary = storm(url, certs, ca, phones, args.concurrency, args.max_seconds, rate)
    used = cpu_seconds(pid) - before
    summary["server_cpu_seconds"] = round(used, 2)
    summary["server_cpu_ms_per_boot"] = round(used * 1000 / max(summary["boots_ok"], 1), 2)
    summary["server_cpu_us_per_request"] = round(used * 1e6 / max(summary["requests"], 1), 1)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phones", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--load-seconds", type=float, default=60.0,
                        help="How long the 80 %% run starts boots for.")  # fmt: skip
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--output", type=Path, default=None, help="Write the results as JSON.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="phoneprov-storm-") as tmp:
        work = Path(tmp)
        site, ports = make_site(work / "site")
        certs = work / "certs"
        issue_bench_certs(site, certs, args.phones)
        ca = site / "pki" / "ca.pem"
        server = start_phoneprov(site, ports)
        try:
            root = export_boot_files(site, server.url, work / "nginx-root")
            ours = run_one(server.process.pid, server.url, certs, ca, args)
            print(json.dumps({"phoneprov": ours}), flush=True)
            ours_loaded = run_one(server.process.pid, server.url, certs, ca, args, ours)
        finally:
            server.stop()
        print(json.dumps({"phoneprov_at_80_percent": ours_loaded}), flush=True)
        nginx = start_nginx(site, work / "nginx", root, cpus="0")
        try:
            theirs = run_one(nginx.process.pid, nginx.url, certs, ca, args)
            print(json.dumps({"nginx": theirs}), flush=True)
            theirs_loaded = run_one(nginx.process.pid, nginx.url, certs, ca, args, theirs)
        finally:
            nginx.stop()
        print(json.dumps({"nginx_at_80_percent": theirs_loaded}), flush=True)
    result = {
        "phones": args.phones,
        "concurrency": args.concurrency,
        "phoneprov": ours,
        "nginx": theirs,
        "phoneprov_at_80_percent": ours_loaded,
        "nginx_at_80_percent": theirs_loaded,
        "boots_per_second_ratio_phoneprov_over_nginx": round(
            ours["boots_per_second"] / max(theirs["boots_per_second"], 1e-9), 3
        ),
        "server_cpu_ratio_nginx_over_phoneprov": round(
            theirs["server_cpu_ms_per_boot"] / max(ours["server_cpu_ms_per_boot"], 1e-9), 3
        ),
    }
    print(json.dumps(result), flush=True)
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
