"""Per-request configs end to end: curl as the phone, the CLI as the administrator."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.serverkit import DEMO_MAC, Server, curl, make_site, run_cli, start_server, status_of

CODE = ["-o", "/dev/null", "-w", "%{http_code}"]
BOOTSTRAP = ["--digest", "-u", "PlcmSpIp:PlcmSpIp"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One demo site and server for the module: templates and inventory are read per request."""
    running = start_server(make_site(tmp_path_factory.mktemp("config") / "site"))
    yield running
    running.stop()


def mtls(server: Server, *args: str) -> list[str]:
    demo = server.site / "demo"
    return [
        "--cacert",
        str(server.site / "pki" / "ca.pem"),
        "--cert",
        str(demo / f"{DEMO_MAC}.pem"),
        "--key",
        str(demo / f"{DEMO_MAC}.key"),
        *args,
    ]


def test_ok_per_device_file_over_mtls_404_over_http(server: Server) -> None:
    name = f"{DEMO_MAC}-phone-secrets.cfg"
    assert not (server.site / "boot" / name).exists()  # rendered per request, never on disk
    result = curl(*mtls(server, f"{server.https}/{name}"))
    reg = {k: v for e in ET.fromstring(result.stdout).iter() for k, v in e.attrib.items()}
    assert reg["reg.1.auth.password"] == "demo-sip-password"
    assert reg["reg.1.label"] == "Front desk" and reg["reg.2.address"] == "1002"
    assert status_of(curl(*BOOTSTRAP, *CODE, f"{server.http}/{name}")) == 404
    server.wait_for_log("security", "reason=secret-over-bootstrap")


def test_ok_per_device_digest_account_reads_own_file(server: Server) -> None:
    run_cli(
        "account",
        "set",
        "0004f2000002",
        "--kind",
        "device",
        "--password",
        "dev-pw",
        "--site",
        str(server.site),
        check=True,
    )
    auth = ["--digest", "-u", "0004f2000002:dev-pw"]
    own = curl(*auth, f"{server.http}/0004f2000002-phone-secrets.cfg")
    assert 'reg.1.address="1003"' in own.stdout
    theirs = curl(*auth, *CODE, f"{server.http}/{DEMO_MAC}-phone-secrets.cfg")
    assert status_of(theirs) == 404


def test_ok_demo_has_three_families_rendered(server: Server) -> None:
    listed = json.loads(
        run_cli("device", "list", "--format", "json", "--site", str(server.site), check=True).stdout
    )
    assert {d["model"] for d in listed} >= {"VVX410", "SPIP550", "Trio8800"}
    for device in listed[:3]:
        preview = run_cli("render", device["mac"], "--site", str(server.site), check=True).stdout
        assert f"==> {device['mac']}-phone-secrets.cfg" in preview
        assert 'reg.1.auth.password="********"' in preview  # masked without --show-secrets
        assert "demo-sip-password" not in preview


def test_fail_template_error_500_logged_and_shown_by_render(server: Server) -> None:
    template = server.site / "templates" / "site.cfg.j2"
    template.parent.mkdir()
    template.write_text('<polycomConfig>\n  <a x="{{ no_such_variable }}"/>\n</polycomConfig>\n')
    assert status_of(curl(*mtls(server, *CODE, f"{server.https}/site.cfg"))) == 500
    log = server.wait_for_log("security", "template-error")
    line = next(x for x in log.splitlines() if "template-error" in x)
    assert "template=templates/site.cfg.j2" in line and "line=2" in line
    shown = run_cli("render", DEMO_MAC, "site.cfg", "--site", str(server.site))
    assert shown.returncode != 0
    assert "templates/site.cfg.j2, line 2" in shown.stderr and "no_such_variable" in shown.stderr
    template.unlink()
    assert status_of(curl(*mtls(server, *CODE, f"{server.https}/site.cfg"))) == 200


def test_ok_bootstrap_master_and_mtls_master(server: Server) -> None:
    public = ET.fromstring(curl(*BOOTSTRAP, f"{server.http}/000000000000.cfg").stdout)
    assert public.get("CONFIG_FILES") == "initial.cfg"
    full = ET.fromstring(curl(*mtls(server, f"{server.https}/000000000000.cfg")).stdout)
    assert full.get("CONFIG_FILES") == (
        "[PHONE_MAC_ADDRESS]-phone-secrets.cfg, site.cfg, initial.cfg"
    )


def _csv(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_csv_import_good_bad_skip(server: Server, tmp_path: Path) -> None:
    site = server.site
    good = _csv(
        tmp_path,
        "good.csv",
        "mac,model,group,line1_ext,line1_password\n"
        "00:04:F2:00:00:40,VVX500,pilot,4000,pw\n0004.f200.0041,SSIP6000,,4001,pw\n",
    )
    out = run_cli("device", "import", good, "--site", str(site), check=True).stdout
    assert "imported 2 phones: 2 new, 0 updated" in out
    again = run_cli("device", "import", good, "--site", str(site), check=True).stdout
    assert "0 new, 2 updated" in again
    bad = _csv(
        tmp_path,
        "bad.csv",
        "mac,model,line1_ext\n0004f2000050,VVX500,5000\n"
        "0004f20000zz,VVX500,5001\n0004f2000052,SSIP6000,\n0004f2000053,VVX9,5003\n",
    )
    refused = run_cli("device", "import", bad, "--site", str(site))
    assert refused.returncode == 2
    assert "2 of 4 rows" in refused.stderr and "nothing was imported" in refused.stderr
    assert "0004f20000zz" in refused.stderr and "VVX9" in refused.stderr
    assert run_cli("device", "show", "0004f2000050", "--site", str(site)).returncode == 2
    skipped = run_cli("device", "import", bad, "--skip-bad", "--site", str(site), check=True)
    assert "imported 2 phones" in skipped.stdout and "2 bad rows skipped" in skipped.stdout


def test_csv_export_import_round_trip(server: Server, tmp_path: Path) -> None:
    site = server.site
    exported = run_cli("device", "export", "--site", str(site), check=True).stdout
    assert exported.splitlines()[0].startswith("mac,model,site,group,label,line1_ext")
    assert "demo-sip-password" not in exported
    path = _csv(tmp_path, "export.csv", exported.replace("Board room", "Boardroom"))
    run_cli("device", "import", path, "--site", str(site), check=True)
    shown = json.loads(
        run_cli(
            "device", "show", "0004f2000003", "--format", "json", "--site", str(site), check=True
        ).stdout
    )
    assert shown["label"] == "Boardroom" and shown["lines"][0]["password"] == "set"
