"""Two `phoneprov serve` nodes on one PostgreSQL database behind HAProxy from Debian (TCP
mode, ``send-proxy-v2``), with the HAProxy configuration docs/scale-out.md shows
(issue 17, phase 2).

HAProxy reaches the nodes from 127.0.0.1, the one address in ``[cluster]
proxy_from``; curl plays the phone from 127.0.0.2 (any 127/8 address is the
loopback), so a log line naming 127.0.0.2 names the phone, one naming 127.0.0.1
the balancer. The nodes' boot folders are one folder (node B's is a link to
node A's), as the shared mount docs/scale-out.md asks for.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.integration.pgserver import fresh_database, pg_bin, postgres_url
from tests.serverkit import DEMO_MAC, PHONEPROV, Server, curl, edit_settings, run_cli, start_server

DOC = Path(__file__).resolve().parents[2] / "docs" / "scale-out.md"
PHONE_IP = "127.0.0.2"
APP_LOG = f"logs/{DEMO_MAC}-app.log"
STORM_MACS = "0004f2f"  # `bench storm`'s phones count up from 0004f2f00000
pytestmark = [
    pytest.mark.skipif(pg_bin() is None, reason="PostgreSQL server not installed"),
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Balancer:
    process: subprocess.Popen[bytes]
    ports: dict[str, int]  # frontend -> port

    def url(self, frontend: str) -> str:
        scheme = "https" if "https" in frontend else "http"
        host = "localhost" if scheme == "https" else "127.0.0.1"
        return f"{scheme}://{host}:{self.ports[frontend]}"


def doc_config() -> str:
    found = re.search(r"```haproxy\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert found, "docs/scale-out.md has no haproxy block"
    return found.group(1)


def haproxy_config(a: Server, b: Server, ports: dict[str, int]) -> str:
    """The documentation's configuration on loopback, plus one frontend per node (the
    same backend settings), so a test can choose the node a request goes through."""
    text = doc_config()
    text = text.replace("10.0.0.5:443", f"127.0.0.1:{ports['https']}")
    text = text.replace("10.0.0.5:80", f"127.0.0.1:{ports['http']}")
    for node, server in (("10.0.0.11", a), ("10.0.0.12", b)):
        text = text.replace(f"{node}:8443", f"127.0.0.1:{server.ports['https']}")
        text = text.replace(f"{node}:8080", f"127.0.0.1:{server.ports['http']}")
    assert "10.0.0." not in text
    for name, server in (("a", a), ("b", b)):
        for proto in ("http", "https"):
            text += (
                f"\nfrontend only_{name}_{proto}\n    bind 127.0.0.1:{ports[f'{name}_{proto}']}\n"
                f"    default_backend only_{name}_{proto}\n"
                f"backend only_{name}_{proto}\n    default-server send-proxy-v2\n"
                f"    server node 127.0.0.1:{server.ports[proto]}\n"
            )
    return text


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with postgres_url() as url, fresh_database(url, "lb") as database:
        yield database


@pytest.fixture(scope="module")
def cluster(
    database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server, Balancer]]:
    root = tmp_path_factory.mktemp("haproxy")
    first, second = root / "node-a", root / "node-b"
    run_cli(
        "init", "--site", str(first), "--fqdn", "localhost", "--demo", "--database", database,
        check=True,
    )  # fmt: skip
    edit_settings(
        first, cluster={"proxy_from": ["127.0.0.1"], "revocation_refresh": 0.2, "heartbeat": 1.0}
    )
    shutil.copytree(first, second)
    shutil.rmtree(second / "boot")
    (second / "boot").symlink_to(first / "boot")  # the shared mount
    a = start_server(first, "--node-name", "node-a")
    b = start_server(second, "--node-name", "node-b")
    names = ["https", "http", "a_http", "a_https", "b_http", "b_https"]
    ports = {name: free_port() for name in names}
    config = root / "haproxy.cfg"
    config.write_text(haproxy_config(a, b, ports))
    check = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    process = subprocess.Popen(
        ["haproxy", "-db", "-f", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    balancer = Balancer(process, ports)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", ports["https"])) == 0:
                break
        time.sleep(0.1)
    if process.poll() is not None:
        assert process.stdout is not None
        raise AssertionError(f"haproxy stopped: {process.stdout.read().decode()}")
    try:
        yield a, b, balancer
    finally:
        process.terminate()
        process.wait(10)
        for server in (a, b):
            server.stop()


def phone(*args: str) -> subprocess.CompletedProcess[str]:
    """curl as the phone, from the phone's own address."""
    return curl("-4", "--interface", PHONE_IP, *args)


def mtls(site: Path) -> list[str]:
    demo = site / "demo"
    return [
        "--cacert", str(site / "pki" / "ca.pem"),
        "--cert", str(demo / f"{DEMO_MAC}.pem"), "--key", str(demo / f"{DEMO_MAC}.key"),
    ]  # fmt: skip


def code(result: subprocess.CompletedProcess[str]) -> int:
    return int(result.stdout.strip()[-3:] or 0)


def test_ok_phone_gets_its_files_through_haproxy_with_mutual_tls(
    cluster: tuple[Server, Server, Balancer],
) -> None:
    a, b, balancer = cluster
    for _ in range(4):  # leastconn: both nodes answer some
        result = phone(*mtls(a.site), "-o", "/dev/null", "-w", "%{http_code}",
                       f"{balancer.url('https')}/site.cfg")  # fmt: skip
        assert code(result) == 200, result.stderr
    for server in (a, b):  # each node's access log names the phone, by its certificate
        server.wait_for_log("access", f"ip={PHONE_IP} identity=device-cert:{DEMO_MAC}")


def test_ok_log_uploaded_through_a_is_appended_through_b(
    cluster: tuple[Server, Server, Balancer], tmp_path: Path
) -> None:
    """SPEC §6: HEAD for the size of the server's copy, then a ranged PUT of the tail."""
    a, _, balancer = cluster
    auth = mtls(a.site)
    stored = a.site / "boot" / APP_LOG
    stored.unlink(missing_ok=True)
    first = tmp_path / "first.log"
    first.write_text("0101000000|boot 1\n")
    put = phone(*auth, "-o", "/dev/null", "-w", "%{http_code}", "-T", str(first),
                f"{balancer.url('a_https')}/{APP_LOG}")  # fmt: skip
    assert code(put) in (200, 201, 204), put.stderr
    head = phone(*auth, "-I", f"{balancer.url('b_https')}/{APP_LOG}")
    size = int(re.search(r"(?im)^content-length:\s*(\d+)", head.stdout).group(1))  # type: ignore[union-attr]
    assert size == len(first.read_bytes())
    tail = tmp_path / "tail.log"
    tail.write_text("0101000010|boot 1 continued\n")
    last = size + len(tail.read_bytes()) - 1
    append = phone(*auth, "-o", "/dev/null", "-w", "%{http_code}", "-T", str(tail),
                   "-H", f"Content-Range: bytes {size}-{last}/*",
                   f"{balancer.url('b_https')}/{APP_LOG}")  # fmt: skip
    assert code(append) in (200, 201, 204), append.stderr
    assert stored.read_text() == "0101000000|boot 1\n0101000010|boot 1 continued\n"


def test_ok_security_log_on_b_names_the_phone_not_haproxy(
    cluster: tuple[Server, Server, Balancer],
) -> None:
    _, b, balancer = cluster
    wrong = phone("-o", "/dev/null", "-w", "%{http_code}", "--digest", "-u", "PlcmSpIp:wrong",
                  f"{balancer.url('b_http')}/000000000000.cfg")  # fmt: skip
    assert code(wrong) == 401
    line = b.wait_for_log("security", f"ip={PHONE_IP} proto=http identity=user:PlcmSpIp")
    assert "reason=digest-bad-response" in line
    # Over HTTPS the TLS handshake's refusal names the phone too.
    refused = phone("--cacert", str(b.site / "pki" / "ca.pem"), "-o", "/dev/null",
                    "-w", "%{http_code}", f"{balancer.url('b_https')}/{DEMO_MAC}.cfg")  # fmt: skip
    assert code(refused) in (0, 403)
    text = b.wait_for_log("security", f"ip={PHONE_IP} proto=https")
    assert "ip=127.0.0.1 " not in text  # the balancer never appears as a client


def test_ok_storm_through_haproxy_with_node_a_killed_halfway(
    cluster: tuple[Server, Server, Balancer],
) -> None:
    """1,000 phones through HAProxy; node A gets SIGKILL halfway; every boot finishes.

    Phones retry a failed transfer (the simulator: 3 attempts per request, as phones
    retry their boot server); HAProxy takes node A out and redispatches.
    """
    a, b, balancer = cluster
    command = [
        "bench", "storm", "--url", f"{balancer.url('http')}/", "--stage", "updater",
        "--phones", "1000", "--concurrency", "50", "--max-seconds", "150", "--format", "json",
    ]  # fmt: skip
    storm = subprocess.Popen(
        [PHONEPROV, *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        killed = False
        deadline = time.monotonic() + 170
        while storm.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            # A phone uploads its boot log last: one file per finished boot.
            booted = len(list((a.site / "boot").rglob(f"{STORM_MACS}*-boot.log")))
            if not killed and booted >= 500:
                a.process.send_signal(signal.SIGKILL)
                killed = True
        out, err = storm.communicate(timeout=30)
    finally:
        if storm.poll() is None:
            storm.kill()
    summary = json.loads(out)
    assert killed, ("the storm ended before half of it", summary, err)
    assert summary["boots_failed"] == 0, (summary, err)
    assert summary["boots_ok"] == 1000
    assert b.process.poll() is None
