"""The headers nginx sets in edge mode (a client certificate, its verdict, the phone's
address) are believed on the edge socket only, and only after phoneprov checks the
certificate again (issue 17; servers/edge.py, docs/scale-out.md).

An attacker who can reach a phone listener sends the headers himself; one who can
reach the socket (or an nginx misconfigured to pass anything) sends a certificate
nginx never verified.
"""

from __future__ import annotations

import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.serverkit import DEMO_MAC, Server, curl, make_site, start_server

FORGED_MAC = "0004f2000099"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("edge-attack")
    site = make_site(root / "site")
    with (site / "phoneprov.toml").open("a") as toml:
        toml.write(f'\n[edge]\nsocket = "{root / "edge.sock"}"\n')
    server = start_server(site)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def forged_pem(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A self-signed certificate naming another phone: no CA of the site issued it."""
    folder = tmp_path_factory.mktemp("forged")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-subj", f"/CN={FORGED_MAC}", "-days", "30",
         "-keyout", str(folder / "k.pem"), "-out", str(folder / "c.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    return (folder / "c.pem").read_text()


def socket_of(server: Server) -> Path:
    return server.site.parent / "edge.sock"


def forwarded(pem: str, verify: str = "SUCCESS", ip: str = "192.0.2.50") -> list[str]:
    return ["-H", f"X-Client-Cert: {quote(pem)}", "-H", f"X-Client-Verify: {verify}",
            "-H", f"X-Real-IP: {ip}"]  # fmt: skip


def code(result: subprocess.CompletedProcess[str]) -> int:
    return int(result.stdout.strip()[-3:] or 0)


def test_refused_certificate_header_on_the_http_listener(served: Server) -> None:
    demo = (served.site / "demo" / f"{DEMO_MAC}.pem").read_text()
    result = curl(*forwarded(demo), "-o", "/dev/null", "-w", "%{http_code}",
                  f"{served.http}/{DEMO_MAC}-app.log")  # fmt: skip
    assert code(result) == 401  # still asked for digest: the header named nobody
    assert f"identity=device-cert:{DEMO_MAC}" not in served.access_log()


def test_refused_certificate_header_on_the_https_listener(served: Server, forged_pem: str) -> None:
    """Over direct HTTPS the TLS certificate names the phone, whatever the headers say."""
    demo = served.site / "demo"
    result = curl(
        "--cacert", str(served.site / "pki" / "ca.pem"),
        "--cert", str(demo / f"{DEMO_MAC}.pem"), "--key", str(demo / f"{DEMO_MAC}.key"),
        *forwarded(forged_pem), "-o", "/dev/null", "-w", "%{http_code}",
        f"{served.https}/site.cfg",
    )  # fmt: skip
    assert code(result) == 200
    log = served.wait_for_log("access", f"ip=127.0.0.1 identity=device-cert:{DEMO_MAC}")
    assert FORGED_MAC not in log and "192.0.2.50" not in log


def test_refused_edge_certificate_that_no_trusted_ca_issued(
    served: Server, forged_pem: str
) -> None:
    """Even on the socket, a certificate nginx says it verified is checked again."""
    result = curl("--unix-socket", str(socket_of(served)), *forwarded(forged_pem),
                  "-o", "/dev/null", "-w", "%{http_code}", "http://edge/site.cfg")  # fmt: skip
    assert code(result) == 403
    line = served.wait_for_log("security", 'detail="certificate-not-from-a-trusted-ca"')
    assert f"identity=cert:{FORGED_MAC}" not in line


def test_refused_edge_certificate_nginx_did_not_verify(served: Server) -> None:
    demo = (served.site / "demo" / f"{DEMO_MAC}.pem").read_text()
    verdict = "FAILED:unable to get local issuer certificate"
    result = curl("--unix-socket", str(socket_of(served)), *forwarded(demo, verdict),
                  "-o", "/dev/null", "-w", "%{http_code}", "http://edge/site.cfg")  # fmt: skip
    assert code(result) == 403
    served.wait_for_log("security", "ip=192.0.2.50 proto=https identity=anonymous")


def test_ok_edge_socket_names_the_phone_by_its_forwarded_certificate(served: Server) -> None:
    demo = (served.site / "demo" / f"{DEMO_MAC}.pem").read_text()
    result = curl("--unix-socket", str(socket_of(served)), *forwarded(demo, ip="192.0.2.51"),
                  "-o", "/dev/null", "-w", "%{http_code}", "http://edge/site.cfg")  # fmt: skip
    assert code(result) == 200
    served.wait_for_log("access", f"ip=192.0.2.51 identity=device-cert:{DEMO_MAC}")


def test_ok_edge_socket_is_not_reachable_by_other_users(served: Server) -> None:
    mode = socket_of(served).stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o660  # owner and group (nginx) only
