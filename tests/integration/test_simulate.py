"""`phoneprov simulate` booting like a phone against phoneprov (each protocol) and nginx."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.nginx import Nginx, export_boot_files, start_nginx
from tests.integration.simkit import serve_site
from tests.serverkit import DEMO_MAC, Server, run_cli

NEW_MAC = "0004f2000777"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo site on free ports written into its settings, so the initial.cfg it renders
    sends the phone to the HTTPS port that is really listening."""
    yield from serve_site(tmp_path_factory.mktemp("sim") / "site")


def simulate(*args: str) -> tuple[int, str]:
    result = run_cli("simulate", *args, timeout=120)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("scheme", ["http", "ftp", "tftp"])
def test_ok_full_boot_moves_to_mtls(served: Server, scheme: str) -> None:
    """Updater over the bootstrap protocol, then initial.cfg moves the phone to HTTPS mTLS."""
    url = f"{scheme}://127.0.0.1:{served.ports[scheme]}/"
    code, out = simulate("--url", url, "--mac", DEMO_MAC, "--site", str(served.site))
    assert code == 0, out
    assert "Download of '000000000000.cfg' succeeded on attempt 1" in out
    assert f"Provisioning server changed to https://127.0.0.1:{served.ports['https']}/" in out
    assert f"device certificate CN={DEMO_MAC} sent" in out
    assert f"Download of '{DEMO_MAC}-phone-secrets.cfg' succeeded" in out
    assert "verdict: booted" in out
    access = served.wait_for_log("access", f"/logs/{DEMO_MAC}-app.log")
    assert (
        f"proto=https ip=127.0.0.1 identity=device-cert:{DEMO_MAC} method=PUT "
        f'path="/logs/{DEMO_MAC}-app.log" status=20'
    ) in access
    if scheme == "tftp":
        # TFTP is read-only and refuses per-phone files: the simulator says so, and carries on.
        assert "was refused (403 / access violation), not reported missing" in out


def test_ok_uploaded_logs_read_by_logs_analyze(served: Server) -> None:
    code, out = simulate(
        "--url",
        f"http://127.0.0.1:{served.ports['http']}/",
        "--mac",
        DEMO_MAC,
        "--site",
        str(served.site),
    )
    assert code == 0, out
    boot_log = served.site / "boot" / "logs" / f"{DEMO_MAC}-boot.log"
    app_log = served.site / "boot" / "logs" / f"{DEMO_MAC}-app.log"
    assert "Download of '000000000000.cfg' succeeded" in boot_log.read_text()
    assert "Mutual TLS established" in app_log.read_text()
    result = run_cli("logs", "analyze", str(app_log), "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    findings = json.loads(result.stdout)["findings"]
    kinds = {finding["kind"] for finding in findings}
    assert {"download-ok", "mtls-established", "tls-server-verified"} <= kinds
    # Optional files answered 404 are "info"; no firmware on the server is a warning.
    assert not [f for f in findings if f["severity"] == "error"]


def test_ok_make_device_cert_json(served: Server) -> None:
    result = run_cli(
        "simulate",
        "--url",
        f"https://127.0.0.1:{served.ports['https']}/",
        "--mac",
        NEW_MAC,
        "--site",
        str(served.site),
        "--make-device-cert",
        "--stage",
        "application",
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert (served.site / "sim" / f"{NEW_MAC}.pem").is_file()
    paths = [(r["method"], r["path"], r["status"]) for r in report["requests"]]
    assert paths[0] == ("GET", f"{NEW_MAC}.cfg", 404)
    assert paths[1] == ("GET", "000000000000.cfg", 200)
    # The log append, twice: no copy yet (404, whole PUT), then HEAD + ranged PUT (SPEC §6).
    log = f"logs/{NEW_MAC}-app.log"
    assert [p[:2] for p in paths[-4:]] == [("HEAD", log), ("PUT", log)] * 2
    assert [p[2] for p in paths[-4:]] == [404, 204, 200, 204]
    assert all(note["severity"] == "warning" for note in report["notes"])


def test_fail_https_without_device_cert(served: Server) -> None:
    code, out = simulate(
        "--url",
        f"https://127.0.0.1:{served.ports['https']}/",
        "--mac",
        "0004f2000999",
        "--ca",
        str(served.site / "pki" / "ca.pem"),
        "--stage",
        "application",
    )
    assert code == 1
    assert "verdict: boot failed" in out
    assert "failed on attempt 3" in out


def test_fail_wrong_digest_password(served: Server) -> None:
    code, out = simulate(
        "--url",
        f"http://127.0.0.1:{served.ports['http']}/",
        "--mac",
        DEMO_MAC,
        "--password",
        "wrong",
        "--stage",
        "updater",
    )
    assert code == 1
    assert "HTTP error 401" in out
    assert "http-401" in out


def test_fail_bad_url_is_input_error() -> None:
    code, out = simulate("--url", "gopher://127.0.0.1/", "--mac", DEMO_MAC)
    assert code == 2
    assert "scheme 'gopher'" in out


@pytest.fixture(scope="module")
def nginx(served: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    if not shutil.which("nginx") and not Path("/usr/sbin/nginx").exists():
        pytest.skip("nginx is not installed (make tools installs nginx-light)")
    work = tmp_path_factory.mktemp("nginx")
    root = export_boot_files(
        served.site, f"https://127.0.0.1:{served.ports['https']}/", work / "root"
    )
    running = start_nginx(served.site, work, root)
    yield running
    running.stop()


def test_ok_against_nginx_mtls(served: Server, nginx: Nginx) -> None:
    code, out = simulate(
        "--url", nginx.url, "--mac", DEMO_MAC, "--site", str(served.site), "--stage", "application"
    )
    assert code == 0, out
    assert f"Download of '{DEMO_MAC}-phone-secrets.cfg' succeeded" in out
    # nginx's WebDAV takes a whole PUT but answers a ranged one 501: the phone's append
    # (at the latest its second upload, once a copy exists) is refused, its log stays on
    # the phone, and the boot completes.
    assert "the server refused the append (status 501)" in out


def test_fail_against_nginx_without_cert(served: Server, nginx: Nginx) -> None:
    code, out = simulate(
        "--url",
        nginx.url,
        "--mac",
        "0004f2000999",
        "--ca",
        str(served.site / "pki" / "ca.pem"),
        "--stage",
        "application",
    )
    assert code == 1
    # nginx completes TLS and answers 400 "No required SSL certificate was sent".
    assert "http-400" in out


def test_ok_docs_commands_run_as_written(served: Server) -> None:
    """Every `$ phoneprov ...` line of docs/simulator.md, with the demo ports adapted."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "simulator.md").read_text()
    commands = [line[2:] for line in text.splitlines() if line.startswith("$ phoneprov ")]
    assert len(commands) == 3
    for command in commands:
        args = command.split()[1:]
        args = [
            arg.replace("./site", str(served.site))
            .replace("localhost:8080", f"127.0.0.1:{served.ports['http']}")
            .replace("localhost:8443", f"127.0.0.1:{served.ports['https']}")
            for arg in args
        ]
        result = run_cli(*args, timeout=180)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
