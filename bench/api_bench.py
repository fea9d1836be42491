"""Admin API device list: `GET /api/v1/devices?limit=100` with 50,000 phones in SQLite
(target: under 100 ms).

Fills a fresh site's database with phones (one transaction of sightings), starts
`phoneprov serve`, and times the first page, a filtered and sorted page, and a
deep page (the cursor of page 100) over HTTPS with a viewer token.

Usage: .venv/bin/python -m bench.api_bench [--phones 50000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import json
import ssl
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.serverkit import start_server

from phoneprov.config import load_settings
from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.provisioning import admins
from phoneprov.provisioning.site import init_site
from phoneprov.records import Sighting
from phoneprov.store import open_store

MODELS = ("VVX410", "VVX500", "SPIP550", "Trio8800")


def fill(site: Path, phones: int) -> None:
    settings = load_settings(site)
    store = open_store(settings)
    now = time.time()
    sightings = [
        Sighting(
            MacAddress(f"0004f2{n:06x}"),
            now - n,
            f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
            "https",
            DeviceStatus.KNOWN,
            model=MODELS[n % len(MODELS)],
            firmware=f"6.{n % 4}.0",
        )
        for n in range(phones)
    ]
    store.record(sightings, [])
    store.close()


def timed(
    url: str, token: str, context: ssl.SSLContext, repeat: int
) -> tuple[float, dict[str, object]]:
    times, body = [], {}
    for _ in range(repeat):
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        started = time.perf_counter()
        with urllib.request.urlopen(request, context=context) as answer:
            body = json.loads(answer.read())
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000.0, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phones", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        init_site(site, ["localhost", "127.0.0.1"], demo=False)
        fill(site, args.phones)
        token = admins.create_token(load_settings(site), "bench", "viewer").secret
        context = ssl.create_default_context(cafile=str(site / "pki" / "ca.pem"))
        server = start_server(site, protocols=("http", "https", "admin"))
        try:
            base = f"https://127.0.0.1:{server.ports['admin']}/api/v1/devices"
            first, page = timed(f"{base}?limit=100", token, context, args.repeat)
            cursor = page["next"]
            for _ in range(99):
                _, page = timed(f"{base}?limit=100&cursor={cursor}", token, context, 1)
                cursor = page["next"]
            deep, _ = timed(f"{base}?limit=100&cursor={cursor}", token, context, args.repeat)
            filtered, _ = timed(
                f"{base}?limit=100&model=VVX410&sort=last_seen&order=desc",
                token,
                context,
                args.repeat,
            )
            text, _ = timed(f"{base}?limit=100&q=10.0.1", token, context, args.repeat)
        finally:
            server.stop()
    print(
        json.dumps(
            {
                "phones": args.phones,
                "median_ms": {
                    "first_page": round(first, 1),
                    "page_101": round(deep, 1),
                    "model_filter_last_seen_desc": round(filtered, 1),
                    "text_search": round(text, 1),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
