"""The web console in real Chromium (Debian's /usr/bin/chromium driven by Playwright),
through the real `phoneprov serve`: the admin listener over HTTPS with the site's server
certificate, on the demo site, logged in as its demo administrator.

The demo phone boots as the README's curl commands boot it (phase 1 over HTTP, phase 2
over mutual TLS, its boot log). A phone held for approval uploaded a boot log whose
downloads were refused with 403 (kept aside until approval, decisions/0008): the
administrator logs in, filters the fleet to stuck phones, opens it, reads the finding and
its fix, approves it and sees the audit entry. An operator resyncs the demo phone through
its REST API (a simulated phone web server, sim/restapi.py). A viewer sees no action
buttons, and a forged or CSRF-less POST is refused with 403. axe-core (vendored under
tests/integration/vendor/, MPL-2.0) checks each page for accessibility violations.
With PHONEPROV_SCREENSHOTS=docs/images the tests keep the pages for the README and docs.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
from bench.nginx import free_port
from tests.serverkit import Server, curl, edit_settings, start_server

from phoneprov.config import load_settings
from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.protocols.polycom import UploadKind
from phoneprov.protocols.rollout_plan import Plan
from phoneprov.provisioning import admins, firmware, rollouts
from phoneprov.provisioning.site import DEMO_MAC
from phoneprov.records import Sighting
from phoneprov.sim.restapi import PhoneWebServer
from phoneprov.store import open_store

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
STUCK = "0004f2a0b0c0"
PASSWORD = "correct horse battery"
DEMO_ADDRESS = "127.0.1.1"  # the demo phone's own address: the server asks it there
pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="Debian chromium is not installed (make tools)"
)
# A boot log as VVX firmware writes it when the boot server refuses the phone's own file:
# the parser turns the 403 into an http-403 finding with its cause and fix
# (protocols/phonelog/rules.py quotes the Polycom documents).
HELD_LOG = f"""\
0727210305|copy |3|00|TLS connection established to prov.example.com, server certificate verified
0727210306|copy |4|00|Error: The requested URL returned error: 403 Forbidden
0727210306|copy |4|00|Download of '{STUCK}.cfg' failed on attempt 1
"""


@dataclass
class Console:
    server: Server
    base: str  # https://127.0.0.1:<admin port>/console
    demo_password: str  # the demo administrator's, from <site>/demo/admin-password
    rest_port: int
    phone_password: str  # the demo phone's REST API admin password


def boot_demo_phone(server: Server) -> str:
    """The README's phase 1 and phase 2 requests, from the demo phone's own address; the
    admin password its secrets file gave it ([fleet] rest_api)."""
    site = server.site
    https = f"https://127.0.0.1:{server.ports['https']}"
    tls = ["--interface", DEMO_ADDRESS, "--cacert", str(site / "pki" / "ca.pem"),
           "--cert", str(site / "demo" / f"{DEMO_MAC}.pem"),
           "--key", str(site / "demo" / f"{DEMO_MAC}.key"), "--fail"]  # fmt: skip
    secrets = curl(*tls, f"{https}/{DEMO_MAC}-phone-secrets.cfg")
    for result in (
        curl("--digest", "-u", "PlcmSpIp:PlcmSpIp", "--fail", f"{server.http}/000000000000.cfg"),
        curl(*tls, f"{https}/000000000000.cfg"),
        secrets,
        curl(*tls, "-T", "/dev/null", f"{https}/logs/{DEMO_MAC}-boot.log"),
    ):
        assert result.returncode == 0, result.stderr
    found = re.search(r'device\.auth\.localAdminPassword="([^"]+)"', secrets.stdout)
    assert found, secrets.stdout
    return found.group(1)


@pytest.fixture
def console(site: Path) -> Iterator[Console]:
    """`phoneprov serve` on the demo site with an operator, a viewer and a stuck phone."""
    rest_port = free_port()
    edit_settings(site, fleet={"rest_api": True, "rest_port": rest_port})
    settings = load_settings(site)
    admins.add_admin(settings, "olga", "operator", PASSWORD)
    admins.add_admin(settings, "victor", "viewer", PASSWORD)
    with closing(open_store(settings)) as store:
        seen = Sighting(
            MacAddress(STUCK),
            time.time(),
            "192.0.2.9",
            "http",
            DeviceStatus.PENDING,
            model="VVX450",
            stage="Updater",
        )
        store.record([seen], [])
    held = site / "held" / settings.policy.folders[UploadKind.BOOT_LOG]
    held.mkdir(parents=True, exist_ok=True)
    (held / f"{STUCK}-boot.log").write_text(HELD_LOG)
    image = site / "3111-48400-001.sip.ld"
    image.write_bytes(b"\0" * 1024)
    firmware.add_firmware(settings, image, "6.4.0.1234", models=["VVX410"])
    rollouts.plan_rollout(settings, "spring", Plan("6.4.0.1234", models=("VVX410",)))
    server = start_server(site, protocols=("http", "https", "admin"))
    try:
        phone_password = boot_demo_phone(server)
        yield Console(
            server,
            f"https://127.0.0.1:{server.ports['admin']}/console",
            (site / "demo" / "admin-password").read_text(),
            rest_port,
            phone_password,
        )
    finally:
        server.stop()


@pytest.fixture
def browser() -> Iterator[object]:
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def new_page(browser: object) -> object:
    """A page that accepts the site CA's certificate (Chromium does not know that CA; curl
    checks it against the site CA in test_make_run.py). CSP is bypassed only so the test
    can inject axe-core; test_a_post_without_its_csrf_token_is_refused reads the header."""
    context = browser.new_context(  # type: ignore[attr-defined]
        ignore_https_errors=True, bypass_csp=True, viewport={"width": 1280, "height": 800}
    )
    return context.new_page()


def login(page: object, base: str, name: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/")  # type: ignore[attr-defined]
    page.get_by_label("Administrator").fill(name)  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(password)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in").click()  # type: ignore[attr-defined]
    page.wait_for_url(f"{base}/")  # type: ignore[attr-defined]


def screenshot(page: object, name: str) -> None:
    """With PHONEPROV_SCREENSHOTS=docs/images, keep the page for the README and docs."""
    folder = os.environ.get("PHONEPROV_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"console-{name}.png"), full_page=False)  # type: ignore[attr-defined]


def axe_violations(page: object) -> list[str]:
    page.add_script_tag(content=AXE.read_text())  # type: ignore[attr-defined]
    found = page.evaluate("async () => (await axe.run()).violations.map(v => v.id)")  # type: ignore[attr-defined]
    return list(found)


def standing(site: Path, mac: str) -> DeviceStatus:
    with closing(open_store(load_settings(site))) as store:
        record = store.get_device(MacAddress(mac))
    assert record is not None
    return record.status


def test_admin_finds_the_stuck_phone_reads_the_fix_and_approves_it(
    console: Console, browser: object
) -> None:
    page = new_page(browser)
    login(page, console.base, "demo", console.demo_password)
    cookie = next(c for c in page.context.cookies() if c["name"] == "phoneprov_console")  # type: ignore[attr-defined]
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.get_by_role("heading", name="Fleet").is_visible()
    demo = page.locator("tr", has=page.get_by_role("link", name=DEMO_MAC.value))
    assert "configuration over mutual TLS" in demo.inner_text()
    assert demo.get_attribute("class") == "state-ok"
    assert axe_violations(page) == []
    screenshot(page, "fleet")
    page.get_by_label("State", exact=True).select_option("stuck")  # the script submits the filter
    page.wait_for_url(re.compile(r"state=stuck"))
    assert page.get_by_role("link", name=DEMO_MAC.value).count() == 0
    page.get_by_role("link", name=STUCK).click()
    finding = page.locator("article.finding").filter(
        has=page.get_by_role("heading", name="ERROR: http-403", exact=True)
    )
    assert "Cause:" in finding.inner_text() and "Fix:" in finding.inner_text()
    assert "held until approval" in page.content()
    screenshot(page, "phone")
    assert axe_violations(page) == []
    page.get_by_role("button", name="Approve").click()
    assert "Approved (was pending)" in page.get_by_role("status").inner_text()
    audit = page.locator("section", has_text="Audit").locator("tr", has_text="device.approve")
    assert "admin:demo" in audit.inner_text()
    assert standing(console.server.site, STUCK) is DeviceStatus.KNOWN
    for name in ("Certificates", "Firmware", "Setup", "Activity"):
        page.get_by_role("link", name=name, exact=True).click()
        assert page.get_by_role("heading", name=name, level=1).is_visible()
        assert axe_violations(page) == [], name
        screenshot(page, name.lower())
        if name == "Firmware":  # the demo phone's rollout, planned: its one wave waiting
            assert page.get_by_role("heading", name="spring: 6.4.0.1234, planned").is_visible()
            wave = page.locator("section", has_text="wave by wave").locator("tbody tr")
            assert wave.inner_text().split() == ["1", "1", "0", "0", "0", "0"]


def wait_for_address(site: Path, mac: MacAddress) -> None:
    """Until the server's recorder wrote where the phone proved who it is from."""
    deadline = time.monotonic() + 10
    with closing(open_store(load_settings(site))) as store:
        while mac.value not in store.fleet_actions.access([mac]):
            assert time.monotonic() < deadline, f"no address recorded for {mac}"
            time.sleep(0.1)


def test_operator_resyncs_the_demo_phone_through_its_rest_api(
    console: Console, browser: object
) -> None:
    site = console.server.site
    phone = PhoneWebServer(
        DEMO_MAC,
        console.phone_password,
        site / "demo" / f"{DEMO_MAC}.pem",
        site / "demo" / f"{DEMO_MAC}.key",
        DEMO_ADDRESS,
        console.rest_port,
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(phone.start(), loop).result(10)
        wait_for_address(site, DEMO_MAC)
        page = new_page(browser)
        login(page, console.base, "olga")
        page.goto(f"{console.base}/phones/{DEMO_MAC}")
        page.get_by_role("button", name="Resync").click()
        assert "Resync: accepted" in page.get_by_role("status").inner_text()
        assert phone.actions == ["/api/v1/mgmt/updateConfiguration"]
        timeline = page.locator("section", has_text="Timeline")
        assert "fleet-resync" in timeline.inner_text()
        # A phone the server cannot reach: the reason, and nothing sent.
        page.goto(f"{console.base}/phones/0004f2000002")
        questions: list[str] = []
        page.on("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
        page.get_by_role("button", name="Restart").click()
        assert questions == ["Restart this phone? It restarts once no call is up."]
        assert "no-address" in page.get_by_role("alert").inner_text()
    finally:
        asyncio.run_coroutine_threadsafe(phone.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_viewer_sees_no_actions_and_a_forged_post_is_refused(
    console: Console, browser: object
) -> None:
    page = new_page(browser)
    login(page, console.base, "victor")
    page.goto(f"{console.base}/phones/{STUCK}")
    assert page.get_by_role("button", name="Approve").count() == 0
    page.goto(f"{console.base}/phones/{DEMO_MAC}")
    assert page.get_by_role("button", name="Resync").count() == 0
    csrf = page.locator('input[name="csrf"]').first.get_attribute("value")
    for action in (f"{STUCK}/approve", f"{DEMO_MAC}/restart"):
        answer = page.request.post(f"{console.base}/phones/{action}", form={"csrf": csrf})
        assert answer.status == 403, action
    assert standing(console.server.site, STUCK) is DeviceStatus.PENDING
    page.reload()
    assert "fleet-restart" not in page.locator("section", has_text="Timeline").inner_text()


def test_a_post_without_its_csrf_token_is_refused(console: Console, browser: object) -> None:
    page = new_page(browser)
    login(page, console.base, "demo", console.demo_password)
    url = f"{console.base}/phones/{STUCK}/approve"
    assert page.request.post(url, form={"csrf": "forged"}).status == 403
    assert page.request.post(url, form={}).status == 403
    assert standing(console.server.site, STUCK) is DeviceStatus.PENDING
    response = page.goto(f"{console.base}/")
    assert response is not None
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"
