"""The admin API over real HTTPS against `phoneprov serve` (issue 14).

Roles on every route, secrets never shown to a viewer, revocation at once, the
OpenAPI document checked by schemathesis against the live server, Prometheus
metrics after a simulated phone boots, /readyz without the database, and the
audit trail of changes made through the CLI and the API.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.adminkit import ROLES, Api, live_api
from tests.serverkit import DEMO_MAC, run_cli

from phoneprov.config import load_settings
from phoneprov.model import MacAddress, Principal, PrincipalKind, Protocol
from phoneprov.policy import PolicyRules, decide
from phoneprov.protocols.polycom import Resource
from phoneprov.servers.admin.routes import ROUTES
from phoneprov.store import open_store

MISSING_MAC = "0004f2fffffe"


@pytest.fixture
def api(site: Path) -> Iterator[Api]:
    with live_api(site) as running:
        yield running


def _path(template: str) -> str:
    return (
        template.replace("{mac}", MISSING_MAC)
        .replace("{name}", "no-such-token")
        .replace("{serial}", "7FFFFFFE")
    )


def test_ok_every_route_checks_every_role(api: Api) -> None:
    """Route x role: refused (403) exactly when the policy table's rows say so."""
    checked = []
    for route in ROUTES:
        if route.action is None:
            continue
        assert route.resource is not None
        status, headers, _ = api.call(route.method, _path(route.path), body=b"{}")
        if route.name == "metrics":  # 127.0.0.1 is in the default [admin] metrics_allow
            assert status == 200
            continue
        assert status == 401, f"{route.method} {route.path} without a token: {status}"
        assert headers["Content-Type"].startswith("application/problem+json")
        for role in ROLES:
            principal = Principal(PrincipalKind(role), Protocol.HTTPS, role)
            resource = Resource(route.resource.value, route.resource)
            allowed = decide(principal, route.action, resource, _rules(api)).allowed
            status, _, body = api.call(route.method, _path(route.path), role, body=b"{}")
            assert (status == 403) is (not allowed), (route.path, role, status, body)
            checked.append((route.name, role, allowed))
    # Not vacuous: each role is refused something and allowed something.
    for role in ROLES[:2]:
        assert any(not ok for _, r, ok in checked if r == role)
    assert all(ok for _, r, ok in checked if r == "admin")


def _rules(api: Api) -> PolicyRules:
    return PolicyRules(folders=dict(load_settings(api.server.site).policy.folders))


def test_ok_viewer_never_sees_a_sip_password(api: Api) -> None:
    with closing(open_store(load_settings(api.server.site))) as store:
        secret = store.inventory.lines(MacAddress(DEMO_MAC))[0].password
    assert secret
    seen = api.json("GET", f"/api/v1/devices/{DEMO_MAC}", "viewer")
    assert seen["lines"][0]["password"] == "********"
    assert api.json("GET", f"/api/v1/devices/{DEMO_MAC}", "admin")["lines"][0]["password"] == secret
    files = api.call("GET", f"/api/v1/devices/{DEMO_MAC}/files", "viewer")[2].decode()
    export = api.call("GET", "/api/v1/devices/export", "viewer")[2].decode()
    assert secret not in files and secret not in export
    status, _, body = api.call("GET", "/api/v1/devices/export?passwords=true", "viewer")
    assert status == 403 and b"SIP passwords" in body
    assert secret in api.call("GET", "/api/v1/devices/export?passwords=true", "admin")[2].decode()


def test_ok_revoked_token_stops_working_at_once(api: Api) -> None:
    assert api.call("GET", "/api/v1/devices", "operator")[0] == 200
    run_cli("admin", "token", "revoke", "operator", "--site", str(api.server.site), check=True)
    status, _, body = api.call("GET", "/api/v1/devices", "operator")
    assert status == 401 and b"revoked" in body
    api.server.wait_for_log("security", "reason=bad-token")


def test_ok_devices_pages_filters_and_audit(api: Api) -> None:
    first = api.json("GET", "/api/v1/devices?limit=1&sort=mac", "viewer")
    second = api.json("GET", f"/api/v1/devices?limit=1&sort=mac&cursor={first['next']}", "viewer")
    assert first["items"][0]["mac"] < second["items"][0]["mac"]
    assert api.json("GET", "/api/v1/devices?q=front", "viewer")["items"][0]["mac"] == DEMO_MAC
    body = json.dumps({"mac": "00:04:f2:00:00:99", "model": "VVX410", "label": "Lab"}).encode()
    made = api.json("POST", "/api/v1/devices", "operator", body=body)
    assert made["mac"] == "0004f2000099"
    assert api.call("POST", "/api/v1/devices", "operator", body=body)[0] == 409
    patch = json.dumps({"label": "Lab 2", "lines": ["1:ext=1099,password=hunter22"]}).encode()
    api.json("PATCH", "/api/v1/devices/0004f2000099", "operator", body=patch)
    run_cli("device", "remove", "0004f2000099", "--site", str(api.server.site), check=True)
    trail = api.json("GET", "/api/v1/audit?target=0004f2000099", "viewer")
    actions = [(e["action"], e["actor"]) for e in trail]
    assert actions[0][0] == "device.remove" and actions[0][1].startswith("cli:")
    assert ("device.add", "token:operator") in actions
    patched = next(e for e in trail if e["changes"].get("label") == ["Lab", "Lab 2"])
    assert "hunter22" not in json.dumps(patched) and "********" in json.dumps(patched)


def test_fail_bad_input_is_a_problem_document(api: Api) -> None:
    status, headers, body = api.call("GET", "/api/v1/devices?sort=nope", "viewer")
    problem = json.loads(body)
    assert status == 400 and headers["Content-Type"].startswith("application/problem+json")
    assert problem["status"] == 400 and "sort='nope'" in problem["detail"] and problem["hint"]
    status, _, body = api.call("GET", f"/api/v1/devices/{MISSING_MAC}", "viewer")
    assert status == 404 and json.loads(body)["title"] == "Not Found"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_ok_metrics_change_after_a_phone_boots(api: Api) -> None:
    before = _samples(api.call("GET", "/metrics", "viewer")[2].decode())
    url = f"http://127.0.0.1:{api.server.ports['http']}/"
    booted = run_cli(
        "simulate", "--url", url, "--mac", DEMO_MAC, "--site", str(api.server.site), timeout=120
    )
    assert booted.returncode == 0, booted.stdout + booted.stderr
    api.server.wait_for_log("access", f"/logs/{DEMO_MAC}-app.log")
    after = _samples(api.call("GET", "/metrics", "viewer")[2].decode())

    def total(name: str, **labels: str) -> float:
        return sum(
            v
            for (n, lab), v in after.items()
            if n == name and all((k, val) in lab for k, val in labels.items())
        ) - sum(
            v
            for (n, lab), v in before.items()
            if n == name and all((k, val) in lab for k, val in labels.items())
        )

    assert total("phoneprov_requests_total", protocol="https", status="200") > 0
    assert total("phoneprov_requests_total", protocol="http") > 0
    assert total("phoneprov_upload_bytes_total") > 0
    assert total("phoneprov_device_events_total", kind="upload") > 0
    assert after[("phoneprov_phones_by_model", (("model", "VVX410"),))] >= 1
    assert ("phoneprov_certificate_expiry_days", (("certificate", "ca"),)) in after


def test_ok_metrics_from_an_allowed_address_without_a_token(api: Api) -> None:
    status, headers, body = api.call("GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert b"phoneprov_phones_by_status" in body


def test_fail_readyz_when_the_database_is_gone(api: Api) -> None:
    assert api.json("GET", "/readyz")["status"] == "ready"
    database = api.server.site / "phoneprov.db"
    aside = api.server.site / "db-aside"
    aside.mkdir()
    moved = [p for p in api.server.site.glob("phoneprov.db*")]
    for path in moved:
        shutil.move(path, aside / path.name)
    try:
        status, _, body = api.call("GET", "/readyz")
        assert status == 503, body
        assert "database unreachable" in json.loads(body)["problems"][0]
        assert api.json("GET", "/healthz")["status"] == "ok"
    finally:
        for path in api.server.site.glob("phoneprov.db*"):
            path.unlink()
        for path in moved:
            shutil.move(aside / path.name, path)
    assert database.exists()


def test_ok_openapi_document_is_valid_and_served(api: Api) -> None:
    from openapi_spec_validator import validate

    served = api.json("GET", "/api/v1/openapi.json")
    validate(served)
    assert served["openapi"] == "3.1.0"
    assert {op["operationId"] for p in served["paths"].values() for op in p.values()} >= {
        route.name for route in ROUTES
    }


def test_ok_live_server_conforms_to_its_openapi_document(api: Api) -> None:
    """schemathesis against the live server: the read routes (GET), 15 examples each,
    stateless, checking status codes, content types and response schemas."""
    schemathesis = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{api.base}/api/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {api.tokens['admin']}",
            "--tls-verify",
            str(api.server.site / "pki" / "ca.pem"),
            "--include-method",
            "GET",
            "--max-examples",
            "15",
            "--phases",
            "examples,fuzzing",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,"
            "response_schema_conformance",
            "--request-timeout",
            "20",
            "--generation-deterministic",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
