"""Which changed settings a reload (SIGHUP) applies and which need a restart."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from phoneprov.config import Settings
from phoneprov.servers.reload import restart_needed

SITE = Settings(Path("/srv/site"))


def test_ok_same_settings_need_nothing() -> None:
    assert restart_needed(SITE, dataclasses.replace(SITE)) == ()


def test_ok_tls_settings_apply_on_reload() -> None:
    https = dataclasses.replace(SITE.https, legacy_tls=True, tolerate_expired_device_certs=False)
    assert restart_needed(SITE, dataclasses.replace(SITE, https=https)) == ()


def test_ok_other_settings_are_named_by_section_and_key() -> None:
    changed = dataclasses.replace(
        SITE,
        fqdns=("prov.example.com",),
        http=dataclasses.replace(SITE.http, port=80),
        https=dataclasses.replace(SITE.https, port=443, legacy_tls=True),
        limits=dataclasses.replace(SITE.limits, max_connections=5),
    )
    assert restart_needed(SITE, changed) == (
        "[site] fqdns",
        "[http] port",
        "[https] port",
        "[limits] max_connections",
    )
