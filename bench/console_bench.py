"""Web console fleet page with 50,000 phones: time to first byte (budget: 300 ms).

Fills a fresh site's database with phones in every state (one transaction of
sightings: most booted to their configuration over mutual TLS, some stuck in
the Updater, some held for approval, some not seen for weeks, one firmware
group behind its assignment), starts `phoneprov serve`, logs in to the console
over HTTPS as an administrator, and times the fleet page as a browser asks
for it: the first page, a state filter, a free-text search, a deep sorted
page. Each figure is the median over ``--repeat`` requests on one kept-alive
HTTPS connection: from sending the request to the first byte of the answer
(status line), and to its last byte. The filter, the sort, the page and the
counts per state are SQL queries (store/fleet.py), so the page's cost does
not grow with the rows it does not show.

Usage: .venv/bin/python -m bench.console_bench [--phones 50000] [--repeat 20] [--output F]
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import statistics
import tempfile
import time
import urllib.parse
from pathlib import Path

from tests.serverkit import start_server

from phoneprov.config import load_settings
from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.provisioning import admins, firmware
from phoneprov.provisioning.site import init_site
from phoneprov.records import Sighting
from phoneprov.store import open_store

MODELS = ("VVX410", "VVX500", "SPIP550", "Trio8800")
PASSWORD = "console bench password"
BUDGET_MS = 300.0
PAGES = {
    "first_page": "/console/",
    "state_stuck": "/console/?state=stuck",
    "text_search": "/console/?q=10.0.1",
    "sorted_page_500": "/console/?sort=last_seen&dir=desc&page=500",
}


def sighting(n: int, now: float) -> Sighting:
    """Phone ``n``: 1 in 20 stuck in the Updater, 1 in 50 held, 1 in 100 not seen for
    30 days; the others booted to their configuration over mutual TLS."""
    stuck, held, stale = n % 20 == 1, n % 50 == 2, n % 100 == 3
    return Sighting(
        MacAddress(f"0004f2{n:06x}"),
        now - (30 * 86400 if stale else n),
        f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
        "http" if stuck or held else "https",
        DeviceStatus.PENDING if held else DeviceStatus.KNOWN,
        model=MODELS[n % len(MODELS)],
        firmware=f"6.{n % 4}.0",
        stage="Updater" if stuck else "Application",
        cert_kind="factory",
        own_identity=not (stuck or held),
    )


def fill(site: Path, phones: int) -> None:
    settings = load_settings(site)
    now = time.time()
    store = open_store(settings)
    try:
        store.record([sighting(n, now) for n in range(phones)], [])
    finally:
        store.close()
    # One model's assignment that a quarter of the fleet does not run yet: mismatches.
    image = site / "bench.sip.ld"
    image.write_bytes(b"\0" * 1024)
    firmware.add_firmware(settings, image, "6.0.0", models=["VVX410"])
    firmware.assign_firmware(settings, "6.0.0", models=["VVX410"])


def log_in(connection: http.client.HTTPSConnection) -> str:
    """The session cookie the console sets for a right name and password."""
    body = urllib.parse.urlencode({"name": "bench", "password": PASSWORD})
    connection.request(
        "POST",
        "/console/login",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    answer = connection.getresponse()
    answer.read()
    cookie = answer.getheader("Set-Cookie", "")
    if answer.status != 303 or not cookie:
        raise SystemExit(f"console login failed: {answer.status}")
    return cookie.split(";", 1)[0]


def timed(
    connection: http.client.HTTPSConnection, path: str, cookie: str, repeat: int
) -> tuple[float, float, int]:
    """Median milliseconds to the first byte and to the last, and the body's size."""
    first: list[float] = []
    whole: list[float] = []
    size = 0
    for _ in range(repeat):
        started = time.perf_counter()
        connection.request("GET", path, headers={"Cookie": cookie})
        answer = connection.getresponse()
        first.append(time.perf_counter() - started)
        size = len(answer.read())
        whole.append(time.perf_counter() - started)
        if answer.status != 200:
            raise SystemExit(f"GET {path}: {answer.status}")
    return statistics.median(first) * 1000.0, statistics.median(whole) * 1000.0, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phones", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--output", type=Path, help="Also write the JSON result here.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        init_site(site, ["localhost", "127.0.0.1"], demo=False)
        fill(site, args.phones)
        admins.add_admin(load_settings(site), "bench", "viewer", PASSWORD)
        context = ssl.create_default_context(cafile=str(site / "pki" / "ca.pem"))
        server = start_server(site, protocols=("http", "https", "admin"))
        try:
            connection = http.client.HTTPSConnection(
                "127.0.0.1", server.ports["admin"], context=context, timeout=60
            )
            cookie = log_in(connection)
            results = {
                name: timed(connection, path, cookie, args.repeat) for name, path in PAGES.items()
            }
            connection.close()
        finally:
            server.stop()
    report = {
        "phones": args.phones,
        "repeat": args.repeat,
        "budget_ms": BUDGET_MS,
        "median_first_byte_ms": {k: round(v[0], 1) for k, v in results.items()},
        "median_last_byte_ms": {k: round(v[1], 1) for k, v in results.items()},
        "page_bytes": {k: v[2] for k, v in results.items()},
        "within_budget": all(v[0] <= BUDGET_MS for v in results.values()),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
