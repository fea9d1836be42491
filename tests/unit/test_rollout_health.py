"""What a rollout sees of a phone: new error findings in its uploaded logs, image fetches
since its wave started (a firmware loop), and what it reports (SQLite store, site folder).

Log lines are in the format SPEC §10 gives (``0727210309|copy |3|00|Download of ...``);
the findings are ``phonelog``'s: a 404 on a required file is an error.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneprov.config import Settings
from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.provisioning.rollout_health import Baseline, baselines, observe
from phoneprov.records import Sighting
from phoneprov.store import Store, open_database

MAC = MacAddress("0004f2000042")
OLD_ERROR = """\
0727210306|copy |4|00|Download of '0004f2000042.cfg' failed on attempt 1
0727210336|copy |4|00|Error: The requested URL returned error: 403 Forbidden
0727210336|copy |4|00|Download of '0004f2000042.cfg' failed on attempt 2
"""
NEW_ERROR = """\
0727220310|copy |4|00|'https://prov.example.com/sip-basic.cfg' The requested URL returned error: 404
0727220310|copy |4|00|Download of 'sip-basic.cfg' failed on attempt 1
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_database(f"sqlite:///{tmp_path / 'health.db'}")
    yield opened
    opened.close()


def test_ok_only_errors_new_since_the_wave_started_count(store: Store, tmp_path: Path) -> None:
    settings = Settings(site_dir=tmp_path)
    log = settings.boot_dir / "logs" / f"{MAC}-app.log"
    log.parent.mkdir(parents=True)
    log.write_text(OLD_ERROR)
    base = baselines(store, settings, [MAC.value])[MAC.value]
    assert base.errors == {"download-failed": 2, "http-403": 1}  # two failed attempts
    assert Baseline.from_json(base.to_json()) == base
    started = time.time()
    os.utime(log, (started + 1, started + 1))
    seen = observe(store, settings, [MAC.value], "6.4", started, {MAC.value: base})
    assert seen[MAC.value].new_errors == ()  # the same errors as before the wave
    with log.open("a") as out:
        out.write(NEW_ERROR)  # the phone appends after its upgrade
    os.utime(log, (started + 2, started + 2))
    seen = observe(store, settings, [MAC.value], "6.4", started, {MAC.value: base})
    assert seen[MAC.value].new_errors == ("download-failed", "http-404")


def test_ok_fetches_count_from_the_baseline(store: Store, tmp_path: Path) -> None:
    settings = Settings(site_dir=tmp_path)
    now = time.time()
    store.firmware.count_download(MAC, "a" * 64, "6.4", now, 3600)
    base = baselines(store, settings, [MAC.value])[MAC.value]
    assert (base.version, base.fetches) == ("6.4", 1)
    for step in (1, 2):
        store.firmware.count_download(MAC, "a" * 64, "6.4", now + step, 3600)
    store.record(
        [
            Sighting(
                MAC,
                now + 3,
                "10.0.0.9",
                "https",
                DeviceStatus.KNOWN,
                firmware="5.9",
                stage="Application",
            )
        ],
        [],
    )
    seen = observe(store, settings, [MAC.value], "6.4", now, {MAC.value: base})[MAC.value]
    assert seen.loop_fetches == 2  # fetched twice since the wave started, not three times
    assert (seen.reported, seen.stage, seen.last_seen) == ("5.9", "Application", now + 3)
    other = observe(store, settings, [MAC.value], "7.0", now, {MAC.value: base})[MAC.value]
    assert other.loop_fetches == 0  # fetches of another version are not this rollout's loop
