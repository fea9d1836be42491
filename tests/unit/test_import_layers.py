"""Template layers an import writes: old values stay data, and device.* settings stay usable."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.pkitools import make_ca

from phoneprov.config import settings_from_mapping
from phoneprov.errors import InputError
from phoneprov.model import MacAddress
from phoneprov.provisioning.migrate import layers
from phoneprov.provisioning.render import SiteRenderer
from phoneprov.records import InventoryEntry, Line
from phoneprov.store import open_database

MAC = MacAddress("0004f2300001")
# Values an old file may hold that would be template code, or break XML, if copied raw.
HOSTILE = "{{ 7 * 7 }} {% raw %}{# x #}</up><up a=\"b\"> & 'q'\ttab"


@pytest.fixture
def renderer(tmp_path: Path) -> Iterator[SiteRenderer]:
    settings = settings_from_mapping(tmp_path, {}, tmp_path / "phoneprov.toml")
    settings.pki_dir.mkdir()
    (settings.pki_dir / "ca.pem").write_bytes(make_ca("Site CA").pem())
    store = open_database(f"sqlite:///{tmp_path / 'layers.db'}")
    renderer = SiteRenderer(settings, store)
    renderer.inventory.save([InventoryEntry(MAC, group="sip-basic", lines=(Line(1, "1001"),))])
    yield renderer
    store.close()


def _write(renderer: SiteRenderer, relative: str, text: str) -> None:
    path = renderer.settings.site_dir / "templates" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _params(body: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    for element in ET.fromstring(body).iter():
        for name, value in element.attrib.items():
            found.setdefault(name, value)
    return found


def test_ok_values_render_literally(renderer: SiteRenderer) -> None:
    units = [(("up.welcome", HOSTILE),), (("up.backlight.idleIntensity", "1"),)]
    _write(renderer, layers.site_layer(), layers.layer_text(units, ["sip-basic.cfg"]))
    body, layer = renderer.render("site.cfg", MAC)
    assert layer.shown == "templates/site.cfg.j2"
    params = _params(body)
    assert params["up.welcome"] == HOSTILE
    assert params["up.backlight.idleIntensity"] == "1"
    assert params["prov.startupCheck.enabled"] == "1"  # the built-in layer is still below


def test_ok_device_settings_carry_their_twins(renderer: SiteRenderer) -> None:
    units = [
        (
            ("device.set", "1"),
            ("device.sntp.serverName", "ntp.example.com"),
            ("device.sntp.serverName.set", "1"),
        ),
        (
            ("device.set", "1"),
            ("device.sntp.gmtOffset", "3600"),
            ("device.sntp.gmtOffset.set", "1"),
        ),
        (("reg.2.label", "Sales"),),
    ]
    text = layers.layer_text(units, ["0004f2300001-reg.cfg"])
    assert text.count('device.set="1"') == 1
    _write(renderer, layers.device_layer(MAC.value), text)
    body, _ = renderer.render(f"{MAC.value}-phone-secrets.cfg", MAC)
    params = _params(body)  # rendering checked the .set rules (template_layers.check_xml)
    assert params["device.sntp.serverName.set"] == "1"
    assert params["reg.1.address"] == "1001"


def test_ok_site_layer_takes_what_every_group_shares() -> None:
    same, other = (("up.a", "1"),), (("up.b", "2"),)
    site, groups = layers.split_site_and_groups({"g1": [same, other], "g2": [same]}, site_wide=True)
    assert site == [same]
    assert groups == {"g1": [other], "g2": []}
    site, groups = layers.split_site_and_groups({"g1": [same], "g2": [same]}, site_wide=False)
    assert site == []
    assert groups == {"g1": [same], "g2": [same]}


def test_fail_template_written_by_hand_is_not_replaced(tmp_path: Path) -> None:
    ours = tmp_path / layers.site_layer()
    ours.write_text(layers.layer_text([(("up.a", "1"),)], ["a.cfg"]))
    layers.check_replaceable(tmp_path, [layers.site_layer()])  # an import's own: replaceable
    theirs = tmp_path / layers.group_layer("pilot")
    theirs.parent.mkdir(parents=True)
    theirs.write_text('{% extends "base" %}\n')
    with pytest.raises(InputError, match="was not written by an import"):
        layers.check_replaceable(tmp_path, [layers.site_layer(), layers.group_layer("pilot")])
