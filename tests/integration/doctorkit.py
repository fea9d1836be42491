"""Sites and servers for the doctor tests: a site the doctor should pass, broken variants, nginx.

The demo site from `init --demo` is the good site: an RSA-2048 root (SoundPoint
IP phones read RSA only), RSA and ECDSA server certificates, and the legacy
chain its CX700 update package needs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tests.pkitools import Issuer, Key, new_key
from tests.serverkit import Server, edit_settings, start_server
from typer.testing import CliRunner

from phoneprov.cli.app import app

NAMES = ("localhost", "127.0.0.1")
ALL = ("http", "https", "ftp", "tftp")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(site: Path) -> Server:
    """`phoneprov serve` with every listener, on free ports written into phoneprov.toml
    (initial.cfg and DHCP values carry the configured ports, as phones see them)."""
    ports = {
        "http": free_port(),
        "https": free_port(),
        "ftp": free_port(),
        "tftp": free_port(socket.SOCK_DGRAM),
    }
    edit_settings(site, **{name: {"port": port} for name, port in ports.items()})
    flags = [item for name, port in ports.items() for item in (f"--{name}-port", str(port))]
    return start_server(site, *flags, protocols=ALL)


def cli(*args: str) -> tuple[int, str]:
    """Run the phoneprov command in this process (the CLI as typed, without a new
    interpreter's start-up); return the exit code and stdout."""
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


def doctor(*args: str, timeout: str = "2") -> tuple[int, dict[str, Any]]:
    """Run `phoneprov doctor ... --format json`; return the exit code and the report.

    Without a server, a short ``timeout`` keeps the TFTP probe from waiting long
    (an unconnected UDP socket never hears of ICMP refusals)."""
    code, out = cli("doctor", *args, "--format", "json", "--timeout", timeout)
    assert out, f"no output, exit code {code}"
    return code, json.loads(out)


def by_check(report: dict[str, Any], check: str) -> list[dict[str, str]]:
    return [f for f in report["findings"] if f["check"] == check]


def not_passed(report: dict[str, Any]) -> list[dict[str, str]]:
    return [f for f in report["findings"] if f["severity"] != "pass"]


def load_ca(site: Path) -> Issuer:
    pki = site / "pki"
    cert = x509.load_pem_x509_certificate((pki / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return Issuer(cert, key)


def server_leaf(
    issuer: Issuer, names: tuple[str, ...] = NAMES, days: int = 365
) -> tuple[x509.Certificate, Key]:
    """A TLS server certificate with ``names`` in the SAN (IP literals as IP entries)."""
    key = new_key("rsa")
    general: list[x509.GeneralName] = []
    for name in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            general.append(x509.DNSName(name))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(general), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(issuer.key, hashes.SHA256())
    )
    return cert, key


def write_pair(cert_path: Path, chain: list[x509.Certificate], key: Key) -> Path:
    cert_path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
    key_path = cert_path.with_suffix(".key")
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return key_path


@dataclass
class Nginx:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()  # wait() leaves the pipe open


def start_nginx(
    workdir: Path, cert: Path, key: Path, client_directives: str, docroot: Path
) -> Nginx:
    """nginx in the foreground (one process, no user switch) on a free port."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    temp = {name: workdir / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    config = f"""
daemon off;
master_process off;
error_log {workdir}/error.log info;
pid {workdir}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log {workdir}/access.log;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    types {{ application/xml cfg; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        {client_directives}
        root {docroot};
    }}
}}
"""
    conf = workdir / "nginx.conf"
    conf.write_text(config)
    process = subprocess.Popen(
        ["nginx", "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"nginx exited: {process.stderr.read() if process.stderr else ''}"
                f"{(workdir / 'error.log').read_text()}"
            )
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return Nginx(process, port, workdir / "error.log")
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError("nginx did not listen within 10 s")
