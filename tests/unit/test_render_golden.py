"""Golden files: master, initial and per-device files for one phone of each family.

The files are parsed back with an XML parser and checked for the rules phones
apply (research §1.4): every ``device.*`` parameter with its ``.set`` twin and
``device.set="1"``; secrets only in the per-device file. Refresh the golden
files after an intended change with ``PHONEPROV_UPDATE_GOLDEN=1 pytest ...``.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneprov.config import settings_from_mapping
from phoneprov.model import MacAddress
from phoneprov.protocols.polycom import BOOTSTRAP_FILE, MASTER_FILE
from phoneprov.provisioning.render import SiteRenderer
from phoneprov.records import InventoryEntry, Line
from phoneprov.store import open_database

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
# A real (fixed) CA certificate: the renderer parses the site CA to find issued certificates.
FAKE_CA = """-----BEGIN CERTIFICATE-----
MIIBMzCB2qADAgECAgEBMAoGCCqGSM49BAMCMBkxFzAVBgNVBAMMDkdvbGRlbiBT
aXRlIENBMB4XDTI2MDEwMTAwMDAwMFoXDTQ2MDEwMTAwMDAwMFowGTEXMBUGA1UE
AwwOR29sZGVuIFNpdGUgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATin7oJ
8fbSpdBbEHyf8pDJPjKfLpc8mqYU5+6lsPfYOu4tbJUYNZ7hMH8jIrGM4fUM6EuZ
xJYVG1K/I7AaUvTqoxMwETAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gA
MEUCIDsGMmtZlB6eSJ8JjglDarmjq3+Q+YSwFlSdWGjYdxJ6AiEA4BfhZtLrw6e5
LdwBxNIPGDJZyq4Xg0lEqvXwuLy2cs8=
-----END CERTIFICATE-----"""
PHONES = {
    "soundpoint-ip": InventoryEntry(
        MacAddress("0004f2100001"),
        "SPIP550",
        label="Lab & <Co>",
        lines=tuple(
            Line(i, f"20{i}", f"20{i}", f'pw"{i}', "pbx.example.com") for i in (1, 2, 3, 4)
        ),
    ),
    "vvx": InventoryEntry(
        MacAddress("0004f2100002"),
        "VVX410",
        group="pilot",
        label="Desk",
        lines=(
            Line(1, "1001", "u1001", "secret-1", "pbx.example.com:5061"),
            Line(2, "1002", "1002", "secret-2", ""),
        ),
    ),
    "trio": InventoryEntry(
        MacAddress("0004f2100003"),
        "Trio8800",
        label="Board room",
        lines=(Line(1, "3001", "3001", "secret-3", "pbx.example.com"),),
    ),
}


@pytest.fixture
def renderer(tmp_path: Path) -> Iterator[SiteRenderer]:
    settings = settings_from_mapping(
        tmp_path,
        {"site": {"name": "golden", "fqdns": ["prov.example.com"]}},
        tmp_path / "phoneprov.toml",
    )
    settings.pki_dir.mkdir()
    (settings.pki_dir / "ca.pem").write_text(FAKE_CA + "\n")
    store = open_database(f"sqlite:///{tmp_path / 'golden.db'}")
    renderer = SiteRenderer(settings, store)
    renderer.inventory.save(list(PHONES.values()))
    image = tmp_path / "sip.ld"
    image.write_bytes(b"image")
    renderer.firmware.add(image, "4.0.15.1009", models=["SPIP550"])
    renderer.firmware.add(image, "5.9.8.5760", models=["VVX410"], part="3111-46162-001")
    renderer.firmware.add(image, "6.0.0.1000", models=["VVX410"], part="3111-46162-001")
    renderer.firmware.add(image, "7.2.2.1094", models=["Trio8800"])
    for version in ("4.0.15.1009", "5.9.8.5760", "7.2.2.1094"):
        renderer.firmware.assign(version)
    renderer.firmware.assign("6.0.0.1000", group="pilot")
    yield renderer
    store.close()


def check_set_rules(root: ET.Element) -> dict[str, str]:
    """Every device.* parameter has its .set twin = 1 and device.set = 1; returns all params."""
    attributes: dict[str, str] = {}
    for element in root.iter():
        attributes.update(element.attrib)
    device = [
        n
        for n in attributes
        if n.startswith("device.") and not n.endswith(".set") and n != "device.set"
    ]
    for name in device:
        assert attributes.get(f"{name}.set") == "1", f"{name} has no .set twin"
    if device:
        assert attributes["device.set"] == "1"
    return attributes


def _golden(path: Path, body: bytes) -> None:
    if os.environ.get("PHONEPROV_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    assert path.is_file(), f"{path} missing: run with PHONEPROV_UPDATE_GOLDEN=1"
    assert body.decode() == path.read_text()


@pytest.mark.parametrize("family", sorted(PHONES), ids=[f"ok/{f}" for f in sorted(PHONES)])
def test_golden_files_per_family(renderer: SiteRenderer, family: str) -> None:
    entry = PHONES[family]
    secrets = {line.password for line in entry.lines}
    for name in (MASTER_FILE, BOOTSTRAP_FILE, f"{entry.mac}-phone-secrets.cfg"):
        body, _ = renderer.render(name, entry.mac)
        _golden(GOLDEN / family / name.replace(entry.mac.value, "MAC"), body)
        params = check_set_rules(ET.fromstring(body))
        if name.endswith("-phone-secrets.cfg"):
            assert {params[f"reg.{ln.index}.auth.password"] for ln in entry.lines} == secrets
            assert params["reg.1.label"] == entry.label
        else:
            assert not secrets & set(params.values())


def test_ok_master_per_model_and_group(renderer: SiteRenderer) -> None:
    vvx = ET.fromstring(renderer.render(MASTER_FILE, PHONES["vvx"].mac)[0])
    child = vvx.find("APPLICATION_VVX410")
    assert child is not None  # pilot group runs 6.0.0.1000 on its VVX410s
    assert child.get("APP_FILE_PATH_VVX410") == "firmware/6.0.0.1000/sip.ld"
    assert vvx.get("CONFIG_FILES") == "[PHONE_MAC_ADDRESS]-phone-secrets.cfg, site.cfg, initial.cfg"
    spip = ET.fromstring(renderer.render(MASTER_FILE, PHONES["soundpoint-ip"].mac)[0])
    assert spip.find("APPLICATION_VVX410").get("APP_FILE_PATH_VVX410") == (  # type: ignore[union-attr]
        "firmware/5.9.8.5760/sip.ld"
    )
    assert spip.find("APPLICATION_SPIP550").get("APP_FILE_PATH_SPIP550") == (  # type: ignore[union-attr]
        "firmware/4.0.15.1009/sip.ld"
    )


def test_ok_bootstrap_master_names_only_initial(renderer: SiteRenderer) -> None:
    master = ET.fromstring(renderer.render(MASTER_FILE, None, public=True)[0])
    assert master.get("CONFIG_FILES") == "initial.cfg"


def test_ok_unknown_device_gets_no_per_device_entry(renderer: SiteRenderer) -> None:
    master = ET.fromstring(renderer.render(MASTER_FILE, MacAddress("0004f2999999"))[0])
    assert master.get("CONFIG_FILES") == "site.cfg, initial.cfg"


def test_ok_masked_preview_hides_passwords(renderer: SiteRenderer) -> None:
    entry = PHONES["vvx"]
    body, _ = renderer.render(f"{entry.mac}-phone-secrets.cfg", entry.mac, masked=True)
    assert b"secret-1" not in body and b'reg.1.auth.password="********"' in body


def test_ok_initial_carries_ca_and_https_url(renderer: SiteRenderer) -> None:
    params = check_set_rules(ET.fromstring(renderer.render(BOOTSTRAP_FILE, None)[0]))
    assert " ".join(params["device.sec.TLS.customCaCert1"].split()) == " ".join(FAKE_CA.split())
    assert params["device.prov.serverType"] == "HTTPS"
    assert params["device.prov.serverName"] == "https://prov.example.com:8443/"
    assert params["prov.polling.enabled"] == "1"
