"""The admin API's CA, CSR queue, firmware, DHCP, doctor, phone history and
administrator routes over real HTTPS against `phoneprov serve` (issue 14).

Certificates are checked with openssl against the site CA, firmware by fetching
it as a phone would, findings against `phoneprov logs analyze` on the same logs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tests.integration.adminkit import Api, live_api
from tests.serverkit import DEMO_MAC, curl, run_cli

from phoneprov.config import load_settings
from phoneprov.protocols.polycom import UploadKind
from phoneprov.provisioning import admins
from phoneprov.store import open_store

OTHER_MAC = "0004f2000002"
VVX = "FileTransport PolycomVVX-VVX_410-UA/5.9.7.47435 Type/Updater"


@pytest.fixture
def api(site: Path) -> Iterator[Api]:
    with live_api(site) as running:
        yield running


def _openssl(*args: str, data: bytes | None = None) -> str:
    done = subprocess.run(["openssl", *args], input=data, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def _queue_csr(site: Path, mac: str) -> str:
    """A CSR as phone ``mac`` uploads it (CN = its MAC), waiting in the CSR folder."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, mac)]))
        .sign(key, hashes.SHA256())
    )
    settings = load_settings(site)
    folder = settings.boot_dir / settings.policy.folders[UploadKind.CSR]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{mac}.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    return f"{mac}.csr"


def test_ok_csr_queue_sign_reject_revoke_and_crl(api: Api) -> None:
    site = api.server.site
    signed_name, rejected_name = _queue_csr(site, DEMO_MAC), _queue_csr(site, OTHER_MAC)
    queue = api.json("GET", "/api/v1/csrs", "viewer")
    assert [(q["name"], q["mac"], q["problem"]) for q in queue] == [
        (signed_name, DEMO_MAC, ""),
        (rejected_name, OTHER_MAC, ""),
    ]
    assert queue[0]["subject"] == f"CN={DEMO_MAC}"
    assert api.call("POST", f"/api/v1/csrs/{signed_name}/sign", "operator")[0] == 403

    signed = api.json("POST", f"/api/v1/csrs/{signed_name}/sign", "admin")
    (site / "signed.pem").write_text(signed["pem"])
    verified = _openssl("verify", "-CAfile", str(site / "pki" / "ca.pem"), str(site / "signed.pem"))
    assert verified.strip().endswith("OK")
    assert f"CN={DEMO_MAC}" in signed["subject"] and signed["slot"] == "platform1"

    rejected = api.json(
        "POST", f"/api/v1/csrs/{rejected_name}/reject", "admin", body=b'{"reason": "not ours"}'
    )
    assert rejected["mac"] == OTHER_MAC
    assert api.json("GET", "/api/v1/csrs", "viewer") == []
    status, _, body = api.call("POST", f"/api/v1/csrs/{rejected_name}/sign", "admin")
    assert status == 404 and b"no CSR named" in body

    detail = api.json("GET", f"/api/v1/certificates/{signed['serial']}", "viewer")
    assert detail["pem"] == signed["pem"] and detail["mac"] == DEMO_MAC
    assert detail["revoked"] is None

    timeline = api.json("GET", f"/api/v1/devices/{DEMO_MAC}/timeline", "viewer")
    assert ("event", "csr-signed") in [(t["source"], t["kind"]) for t in timeline]
    assert any(t["kind"] == "cert.csr.sign" and t["actor"] == "token:admin" for t in timeline)
    trail = api.json("GET", f"/api/v1/audit?target={rejected_name}", "viewer")
    assert [(e["action"], e["actor"]) for e in trail] == [("cert.csr.reject", "token:admin")]

    revoked = api.json(
        "POST",
        f"/api/v1/certificates/{signed['serial']}/revoke",
        "admin",
        body=b'{"reason": "key-compromise"}',
    )
    assert revoked["serials"] == [signed["serial"]]
    status, headers, der = api.call("GET", "/api/v1/crl", "viewer")
    assert status == 200 and headers["Content-Type"] == "application/pkix-crl"
    listed = _openssl("crl", "-inform", "DER", "-noout", "-text", data=der)
    assert f"Serial Number: {signed['serial']}" in listed and "Key Compromise" in listed
    again = api.json("GET", f"/api/v1/certificates/{signed['serial']}", "viewer")
    assert again["revoked"] is not None and again["reason"] == "key-compromise"


def test_fail_bad_csr_stays_queued_with_the_reason(api: Api) -> None:
    site = api.server.site
    settings = load_settings(site)
    folder = settings.boot_dir / settings.policy.folders[UploadKind.CSR]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{DEMO_MAC}.csr").write_bytes(b"not a certificate request")
    assert api.json("GET", "/api/v1/csrs", "viewer")[0]["problem"]
    status, headers, body = api.call("POST", f"/api/v1/csrs/{DEMO_MAC}.csr/sign", "admin")
    problem = json.loads(body)
    assert status == 400 and headers["Content-Type"].startswith("application/problem+json")
    assert problem["detail"].startswith(f"{DEMO_MAC}.csr:") and "reject" in problem["hint"]
    assert (folder / f"{DEMO_MAC}.csr").is_file()
    status, _, _ = api.call("POST", "/api/v1/csrs/..%2Fphoneprov.toml/reject", "admin")
    assert status == 404 and (site / "phoneprov.toml").is_file()


def test_ok_issue_server_certificate_installs_it(api: Api) -> None:
    body = json.dumps({"names": ["prov.example.com", "10.0.0.5"], "days": 90}).encode()
    issued = api.json("POST", "/api/v1/certificates/server", "admin", body=body)
    assert issued["installed"] == "server-ec.pem"
    installed = api.server.site / "pki" / "server-ec.pem"
    text = _openssl("x509", "-noout", "-ext", "subjectAltName", "-in", str(installed))
    assert "DNS:prov.example.com" in text and "IP Address:10.0.0.5" in text
    status, _, body = api.call(
        "POST", "/api/v1/certificates/server", "admin", body=b'{"names": ["*.example.com"]}'
    )
    assert status == 400 and json.loads(body)["hint"]


def test_ok_firmware_upload_assign_and_phones_fetch_it(api: Api) -> None:
    image = os.urandom(300_000)
    status, _, body = api.call(
        "POST",
        "/api/v1/firmware/images?version=6.4.3.1234&models=VVX410",
        "operator",
        body=image,
        content_type="application/octet-stream",
    )
    added = json.loads(body)
    assert status == 201, body
    assert added["sha256"] == hashlib.sha256(image).hexdigest() and added["new"] is True
    assert added["models"] == ["VVX410"]
    catalog = api.json("GET", "/api/v1/firmware", "viewer")
    assert [i["version"] for i in catalog["images"]] == ["6.4.3.1234"]
    assigned = api.json(
        "POST",
        "/api/v1/firmware/assign",
        "operator",
        body=b'{"version": "6.4.3.1234", "models": ["VVX410"]}',
    )
    assert assigned["targets"] == ["model VVX410"]
    out = api.server.site / "fetched.ld"
    curl(
        "--digest",
        "-u",
        "PlcmSpIp:PlcmSpIp",
        "-A",
        VVX,
        "-o",
        str(out),
        f"{api.server.http}/sip.ld",
    )
    assert hashlib.sha256(out.read_bytes()).hexdigest() == added["sha256"]
    versions = api.json("GET", "/api/v1/firmware/versions", "viewer")
    assert sum(v["phones"] for v in versions) >= 1
    status, _, body = api.call(
        "POST",
        "/api/v1/firmware/images?version=6.4.3.1234",
        "operator",
        body=b"{}",
        content_type="application/json",
    )
    assert status == 400 and b"octet-stream" in body


def test_ok_dhcp_values_snippet_and_doctor(api: Api) -> None:
    values = api.json("GET", "/api/v1/dhcp?sip_server=pbx.example.com", "viewer")
    by_code = {o["code"]: o for o in values["options"] if o["vendor_class"] is None}
    url = values["provisioning_url"]  # the serving HTTP listener's, on the port it got
    assert url.endswith(f":{api.server.ports['http']}/")
    assert by_code[160]["value"] == url and "pbx.example.com" in by_code[120]["value"]
    status, headers, body = api.call("GET", "/api/v1/dhcp/snippet?format=isc-dhcpd", "viewer")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert url in body.decode() and "option" in body.decode()
    status, _, body = api.call("GET", "/api/v1/dhcp/snippet?format=nope", "viewer")
    assert status == 400 and b"isc-dhcpd" in body
    report = api.json("GET", "/api/v1/doctor", "viewer")
    assert report["findings"] and sum(report["summary"].values()) == len(report["findings"])
    assert {f["severity"] for f in report["findings"]} <= {"pass", "warn", "fail"}


def test_ok_uploads_findings_and_timeline_of_a_booted_phone(api: Api) -> None:
    site = api.server.site
    url = f"http://127.0.0.1:{api.server.ports['http']}/"
    booted = run_cli("simulate", "--url", url, "--mac", DEMO_MAC, "--site", str(site), timeout=120)
    assert booted.returncode == 0, booted.stdout + booted.stderr
    api.server.wait_for_log("access", f"/logs/{DEMO_MAC}-app.log")
    uploads = api.json("GET", f"/api/v1/devices/{DEMO_MAC}/uploads", "viewer")
    names = {u["name"]: u for u in uploads}
    assert f"{DEMO_MAC}-app.log" in names and names[f"{DEMO_MAC}-app.log"]["held"] is False
    app_log = site / "boot" / names[f"{DEMO_MAC}-app.log"]["path"]
    assert names[f"{DEMO_MAC}-app.log"]["size"] == app_log.stat().st_size

    found = api.json("GET", f"/api/v1/devices/{DEMO_MAC}/findings", "viewer")
    cli = run_cli("logs", "analyze", DEMO_MAC, "--site", str(site), "--format", "json")
    expected = json.loads(cli.stdout)["findings"]
    got = [{**f, "log": r["log"]["name"]} for r in found for f in r["findings"]]
    assert sorted((f["kind"], f["log"]) for f in got) == sorted(
        (f["kind"], f["log"]) for f in expected
    )

    api.json("POST", f"/api/v1/devices/{DEMO_MAC}/quarantine", "operator")
    timeline = api.json("GET", f"/api/v1/devices/{DEMO_MAC}/timeline?limit=500", "viewer")
    assert timeline[0]["source"] == "audit" and timeline[0]["kind"] == "device.quarantine"
    assert timeline[0]["actor"] == "token:operator" and "pending" in timeline[0]["detail"]
    assert any(t["source"] == "event" and t["kind"] == "upload" for t in timeline)
    assert [t["time"] for t in timeline] == sorted((t["time"] for t in timeline), reverse=True)
    status, _, _ = api.call("GET", "/api/v1/devices/0004f2fffffe/findings", "viewer")
    assert status == 404


def test_ok_admin_users_add_and_remove(api: Api) -> None:
    body = json.dumps({"name": "bob", "role": "operator", "password": "a long passphrase"})
    made = api.json("POST", "/api/v1/admins", "admin", body=body.encode())
    assert made["name"] == "bob" and made["role"] == "operator"
    assert api.call("POST", "/api/v1/admins", "admin", body=body.encode())[0] == 409
    settings = load_settings(api.server.site)
    with closing(open_store(settings)) as store:
        logged_in = admins.login(store, "bob", "a long passphrase")
    assert logged_in is not None and logged_in.role == "operator"
    short = json.dumps({"name": "carol", "role": "viewer", "password": "short"}).encode()
    status, _, answer = api.call("POST", "/api/v1/admins", "admin", body=short)
    assert status == 400 and b"at least" in answer
    assert api.call("DELETE", "/api/v1/admins/bob", "admin")[0] == 204
    assert "bob" not in [a["name"] for a in api.json("GET", "/api/v1/admins", "viewer")]
    assert api.call("DELETE", "/api/v1/admins/bob", "admin")[0] == 404
    actions = [e["action"] for e in api.json("GET", "/api/v1/audit?target=bob", "viewer")]
    assert actions == ["admin.user.remove", "admin.user.add"]


def test_ok_cli_device_quarantine(api: Api) -> None:
    site = str(api.server.site)
    done = run_cli("device", "quarantine", DEMO_MAC, "--site", site, check=True)
    assert "-> pending" in done.stdout and "device approve" in done.stdout
    assert api.json("GET", f"/api/v1/devices/{DEMO_MAC}", "viewer")["status"] == "pending"
    missing = run_cli("device", "quarantine", "0004f2fffffe", "--site", site)
    assert missing.returncode != 0 and "device list" in missing.stdout + missing.stderr
