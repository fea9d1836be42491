"""Template layers (built-in -> site -> group -> device) and the errors templates can make."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.pkitools import make_ca

from phoneprov.config import settings_from_mapping
from phoneprov.model import MacAddress
from phoneprov.provisioning.render import SiteRenderer
from phoneprov.provisioning.template_layers import RenderError, params
from phoneprov.records import InventoryEntry, Line
from phoneprov.store import open_database

PILOT = MacAddress("0004f2200001")
OTHER = MacAddress("0004f2200002")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[SiteRenderer, Path]]:
    settings = settings_from_mapping(tmp_path, {}, tmp_path / "phoneprov.toml")
    settings.pki_dir.mkdir()
    (settings.pki_dir / "ca.pem").write_bytes(make_ca("Site CA").pem())
    store = open_database(f"sqlite:///{tmp_path / 'layers.db'}")
    renderer = SiteRenderer(settings, store)
    renderer.inventory.save(
        [
            InventoryEntry(PILOT, "VVX410", group="pilot", lines=(Line(1, "1001"),)),
            InventoryEntry(OTHER, "VVX410", lines=(Line(1, "1002"),)),
        ]
    )
    yield renderer, tmp_path / "templates"
    store.close()


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _params(body: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    for element in ET.fromstring(body).iter():
        found.update(element.attrib)
    return found


def test_ok_layers_stack_with_base(site: tuple[SiteRenderer, Path]) -> None:
    renderer, templates = site
    _write(
        templates / "site.cfg.j2",
        '{% extends "base" %}{% block params %}{{ super() }}\n'
        '  <tone {{ params({"tone.site": "1"}) }}/>{% endblock %}',
    )
    _write(
        templates / "groups" / "pilot" / "site.cfg.j2",
        '{% extends "base" %}{% block params %}{{ super() }}\n'
        '  <tone {{ params({"tone.group": device.group}) }}/>{% endblock %}',
    )
    _write(
        templates / "devices" / PILOT.value / "site.cfg.j2",
        '{% extends "base" %}{% block params %}{{ super() }}\n'
        '  <tone {{ params({"tone.device": mac}) }}/>{% endblock %}',
    )
    body, layer = renderer.render("site.cfg", PILOT)
    assert layer.shown == f"templates/devices/{PILOT}/site.cfg.j2"
    got = _params(body)
    assert (got["tone.site"], got["tone.group"], got["tone.device"]) == ("1", "pilot", PILOT.value)
    assert got["prov.startupCheck.enabled"] == "1"  # built-in defaults kept through super()
    other = _params(renderer.render("site.cfg", OTHER)[0])
    assert "tone.site" in other and "tone.group" not in other and "tone.device" not in other


def test_ok_site_layer_replaces_builtin(site: tuple[SiteRenderer, Path]) -> None:
    renderer, templates = site
    _write(templates / "site.cfg.j2", '<polycomConfig><a x="{{ site.fqdn }}"/></polycomConfig>')
    assert _params(renderer.render("site.cfg", OTHER)[0]) == {"x": "localhost"}


def test_ok_params_escapes_and_adds_set_twins() -> None:
    text = str(params({"device.x": 'a"<&', "reg.1.label": "b", "skip": None}))
    assert text == 'device.set="1" device.x="a&#34;&lt;&amp;" device.x.set="1" reg.1.label="b"'


@pytest.mark.parametrize(
    "template,shown,line,message",
    [
        (
            "<polycomConfig>\n{% if %}\n</polycomConfig>",
            "templates/site.cfg.j2",
            2,
            "Expected an expression",
        ),
        (
            '<polycomConfig>\n\n<a x="{{ nosuch.value }}"/>\n</polycomConfig>',
            "templates/site.cfg.j2",
            3,
            "'nosuch' is undefined",
        ),
        ("<polycomConfig>\n<a>\n</polycomConfig>", "templates/site.cfg.j2", 3, "not well-formed"),
        (
            '<polycomConfig><device device.set="1" device.prov.serverName="x"/></polycomConfig>',
            "templates/site.cfg.j2",
            None,
            "device.prov.serverName without its .set twin",
        ),
        (
            '<polycomConfig><d device.a="1" device.a.set="1"/></polycomConfig>',
            "templates/site.cfg.j2",
            None,
            'without device.set="1"',
        ),
    ],
    ids=[
        "fail/syntax",
        "fail/undefined",
        "fail/malformed-xml",
        "fail/no-set-twin",
        "fail/no-device-set",
    ],
)
def test_fail_template_errors_name_template_and_line(
    site: tuple[SiteRenderer, Path], template: str, shown: str, line: int | None, message: str
) -> None:
    renderer, templates = site
    _write(templates / "site.cfg.j2", template)
    with pytest.raises(RenderError) as caught:
        renderer.render("site.cfg", OTHER)
    error = caught.value
    assert (error.template, error.line) == (shown, line)
    assert message in str(error)
    assert str(error).startswith(shown)


def test_ok_base_chain_skips_missing_layers_down_to_builtin(
    site: tuple[SiteRenderer, Path],
) -> None:
    renderer, templates = site
    _write(templates / "site.cfg.j2", '{% extends "base" %}')
    _write(templates / "groups" / "pilot" / "site.cfg.j2", '{% extends "base" %}')
    assert b"prov.startupCheck.enabled" in renderer.render("site.cfg", PILOT)[0]
