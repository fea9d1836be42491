"""`phoneprov import bootdir`: an IIS-style boot directory, written here, into a fresh site.

The old directory is served the way IIS serves it (a static web server that
takes the phones' PUTs), and the same simulated phone boots against it and
against `phoneprov serve` on the imported site: each phone must register the
same lines, with the same users, labels, servers and passwords.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from bench.nginx import free_port
from tests.serverkit import Server, edit_settings, make_site, run_cli, start_server

PHONES = ("0004f2000001", "0004f2000002", "0004f2000003")
BROKEN = "0004f2000004"
PROTOCOLS = ("http", "https", "ftp", "tftp")

MASTER = """<?xml version="1.0" standalone="yes"?>
<APPLICATION APP_FILE_PATH="sip.ld"
  CONFIG_FILES="sip-basic.cfg, [PHONE_MAC_ADDRESS]-reg.cfg"
  MISC_FILES="" LOG_FILE_DIRECTORY="logs" OVERRIDES_DIRECTORY="overrides"
  CONTACTS_DIRECTORY="contacts" LICENSE_DIRECTORY="" USER_PROFILES_DIRECTORY=""
  CALL_LISTS_DIRECTORY="">
</APPLICATION>
"""
SHARED = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<polycomConfig>
  <voIpProt voIpProt.SIP.enable="1">
    <voIpProt.server voIpProt.server.1.transport="UDPOnly"/>
  </voIpProt>
  <reg reg.1.server.1.address="pbx.example.com" reg.1.server.1.port="5060"/>
  <tcpIpApp tcpIpApp.sntp.address="ntp.example.com"/>
  <device device.set="1" device.sntp.serverName="ntp.example.com"
          device.sntp.serverName.set="1"
          device.auth.localAdminPassword="456" device.auth.localAdminPassword.set="1"
          device.prov.serverName="old.example.com" device.prov.serverName.set="1"/>
  <up up.backlight.idleIntensity="1"/>
</polycomConfig>
"""
# Attributes spread over nested elements, one per line, as Polycom's own samples do.
PHONE_1 = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<polycomConfig>
  <reg reg.1.address="1001" reg.1.label="Front desk">
    <reg.1.auth reg.1.auth.userId="1001" reg.1.auth.password="secret-1001"/>
  </reg>
  <reg reg.2.address="1002" reg.2.label="Sales"
       reg.2.auth.userId="sales"
       reg.2.auth.password="secret, with &quot;quotes&quot;"
       reg.2.server.1.address="pbx.example.com"/>
</polycomConfig>
"""
PHONE_2 = """<polycomConfig>
  <reg reg.1.address="1003" reg.1.label="Kitchen" reg.1.auth.password="secret-1003"/>
  <up up.backlight.idleIntensity="3"/>
</polycomConfig>
"""
PHONE_3 = """<polycomConfig>
  <reg reg.1.address="1004" reg.1.label="Lobby" reg.1.auth.userId="1004"
       reg.1.auth.password="secret-1004" reg.1.server.1.address="pbx2.example.com"/>
  <feature feature.enhancedFeatureKeys.enabled="1"/>
</polycomConfig>
"""
MALFORMED = """<polycomConfig>
  <reg reg.1.address="1005" reg.1.label="Broken">
</polycomConfig>
"""
# What each phone registers with the old files (phones keep the first value: sip-basic.cfg
# is read first, so its server and port win over 0004f2000003's own server).
EXPECTED = {
    "0004f2000001": {
        1: ("1001", "1001", "Front desk", "pbx.example.com", "secret-1001"),
        2: ("1002", "sales", "Sales", "pbx.example.com", 'secret, with "quotes"'),
    },
    "0004f2000002": {1: ("1003", "1003", "Kitchen", "pbx.example.com", "secret-1003")},
    "0004f2000003": {1: ("1004", "1004", "Lobby", "pbx.example.com", "secret-1004")},
}


def write_old_bootdir(root: Path) -> Path:
    """An IIS-style boot directory: names as administrators made them (one MAC in capitals)."""
    files = {
        "000000000000.cfg": MASTER,
        "sip-basic.cfg": SHARED,
        "0004f2000001-reg.cfg": PHONE_1,
        "0004F2000002-reg.cfg": PHONE_2,
        "0004f2000003-reg.cfg": PHONE_3,
        f"{BROKEN}-reg.cfg": MALFORMED,
        "sip.ver": "5.9.8.5760\r\n",
        "overrides/0004f2000001-phone.cfg": '<PHONE_CONFIG><ALL up.oneTouchVoiceMail="1"/>'
        "</PHONE_CONFIG>\n",
        "contacts/0004f2000001-directory.xml": "<directory><item_list><item><fn>Alice</fn>"
        "<ct>2001</ct></item></item_list></directory>\n",
        "logs/0004f2000001-boot.log": "0101000000|cfg  |4|00|boot\n",
        "readme.txt": "Phones of the Lyon office. Ask Pat before changing anything.\n",
        "web.config": "<configuration><system.webServer/></configuration>\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "sip.ld").write_bytes(os.urandom(8192))
    return root


class OldServer(SimpleHTTPRequestHandler):
    """IIS as phones meet it: static files found whatever the case of their name, and PUT
    accepted (WebDAV) for the phones' logs."""

    def translate_path(self, path: str) -> str:
        found = Path(super().translate_path(path))
        if not found.exists() and found.parent.is_dir():
            same = [p for p in found.parent.iterdir() if p.name.lower() == found.name.lower()]
            return str(same[0]) if same else str(found)
        return str(found)

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads the simulator's report, not the server's log."""


@pytest.fixture(scope="module")
def old_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_old_bootdir(tmp_path_factory.mktemp("old") / "boot")


@pytest.fixture(scope="module")
def old_server(old_dir: Path) -> Iterator[str]:
    def handler(*args: Any) -> OldServer:
        return OldServer(*args, directory=str(old_dir))

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="old-iis", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh site without demo phones."""
    return make_site(tmp_path_factory.mktemp("new") / "site", demo=False, fqdns=("127.0.0.1",))


def snapshot(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def dry_run(site: Path, old_dir: Path) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """The dry run's JSON report, and the site's files before and after it."""
    before = snapshot(site)
    result = run_cli(
        "import", "bootdir", str(old_dir), "--site", str(site), "--dry-run", "--format", "json"
    )
    assert result.returncode == 1, result.stdout + result.stderr  # one file not understood
    return json.loads(result.stdout), before, snapshot(site)


@pytest.fixture(scope="module")
def imported(
    site: Path, old_dir: Path, dry_run: tuple[dict[str, Any], dict[str, str], dict[str, str]]
) -> str:
    """The import's text report (the dry run came first)."""
    result = run_cli("import", "bootdir", str(old_dir), "--site", str(site))
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stdout


def section(report: str, heading: str) -> list[str]:
    """The lines of one section of the text report ("imported", "not understood", ...)."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{heading} ("))
    end = next(
        (i for i in range(start + 1, len(lines)) if not lines[i].startswith("  ")), len(lines)
    )
    return [line.strip() for line in lines[start + 1 : end]]


def test_ok_dry_run_writes_nothing(
    dry_run: tuple[dict[str, Any], dict[str, str], dict[str, str]],
) -> None:
    report, before, after = dry_run
    assert after == before
    assert report["dry_run"] is True
    assert [phone["mac"] for phone in report["phones"]] == list(PHONES)
    assert report["summary"]["not-understood"] == 1


def test_ok_report_lists_imported_kept_and_not_understood(imported: str) -> None:
    assert "phones: 3 (3 new, 0 updated)" in imported
    done = section(imported, "imported")
    assert any(line.startswith("000000000000.cfg") and "master file of 3" in line for line in done)
    assert any(
        line.startswith("sip-basic.cfg") and "templates/site.cfg.j2" in line for line in done
    )
    for name, mac in (("0004f2000001-reg.cfg", PHONES[0]), ("0004F2000002-reg.cfg", PHONES[1])):
        assert any(line.startswith(name) and f"of {mac}" in line for line in done), done
    assert any(line.startswith("sip.ld") and "5.9.8.5760" in line for line in done)
    kept = section(imported, "kept as plain served files")
    assert any(line.startswith("readme.txt") and "boot/readme.txt" in line for line in kept)
    assert any(
        line.startswith("overrides/0004f2000001-phone.cfg") and "boot/overrides/" in line
        for line in kept
    )
    assert any(line.startswith("contacts/0004f2000001-directory.xml") for line in kept)
    skipped = section(imported, "skipped")
    assert any(line.startswith("web.config") for line in skipped)
    assert any(line.startswith("logs ") and "1 phone upload" in line for line in skipped)
    assert any(
        line.startswith("0004f2000003-reg.cfg:3") and "sip-basic.cfg line 6 sets it first" in line
        for line in skipped
    ), skipped
    assert any(line.startswith("sip-basic.cfg:10") and "a secret" in line for line in skipped)
    assert any(
        line.startswith("sip-basic.cfg:11") and "device.prov.serverName" in line for line in skipped
    )
    wrong = section(imported, "not understood")
    assert len(wrong) == 1
    assert wrong[0].startswith(f"{BROKEN}-reg.cfg:3 ")
    assert "not well-formed XML" in wrong[0] and f"Phone {BROKEN} is not imported" in wrong[0]
    assert "secret-10" not in imported


def test_ok_inventory_groups_firmware_and_files(site: Path, imported: str) -> None:
    listed = run_cli("device", "list", "--site", str(site), "--format", "json", check=True)
    devices = {d["mac"]: d for d in json.loads(listed.stdout)}
    assert sorted(devices) == list(PHONES)
    assert {d["group"] for d in devices.values()} == {"sip-basic"}
    firmware = json.loads(run_cli("firmware", "list", "--site", str(site), "--json").stdout)
    assert [(i["version"], i["part"]) for i in firmware["images"]] == [("5.9.8.5760", "")]
    assert {"scope": "group", "target": "sip-basic", "version": "5.9.8.5760"} in firmware[
        "assignments"
    ]
    boot = site / "boot"
    assert (boot / "readme.txt").is_file()
    assert (boot / "overrides" / "0004f2000001-phone.cfg").is_file()
    assert (boot / "contacts" / "0004f2000001-directory.xml").is_file()
    assert not (boot / "web.config").exists()
    assert not list(boot.glob("*-reg.cfg"))  # registrations live in the database only
    # SIP passwords are sealed in the database, and no template holds one.
    database = (site / "phoneprov.db").read_bytes()
    templates = "".join(p.read_text() for p in (site / "templates").rglob("*.j2"))
    for lines in EXPECTED.values():
        for *_, password in lines.values():
            assert password.encode() not in database
            assert password not in templates


def registrations(rendered: str) -> dict[int, tuple[str, str, str, str, str]]:
    """reg.N.* of a rendered file, the first value of each parameter as a phone keeps it."""
    params: dict[str, str] = {}
    for element in ET.fromstring(rendered).iter():
        for name, value in element.attrib.items():
            params.setdefault(name, value)
    lines = {}
    for name, value in params.items():
        parts = name.split(".")
        if len(parts) == 3 and parts[0] == "reg" and parts[2] == "address":
            n = parts[1]
            lines[int(n)] = (
                value,
                params[f"reg.{n}.auth.userId"],
                params[f"reg.{n}.label"],
                params[f"reg.{n}.server.1.address"],
                params[f"reg.{n}.auth.password"],
            )
    return lines


@pytest.mark.parametrize("mac", PHONES)
def test_ok_render_gives_the_old_registrations(site: Path, imported: str, mac: str) -> None:
    result = run_cli(
        "render",
        mac,
        f"{mac}-phone-secrets.cfg",
        "--site",
        str(site),
        "--show-secrets",
        check=True,
    )
    assert registrations(result.stdout) == EXPECTED[mac]


def test_ok_import_again_updates_in_place(
    site: Path, imported: str, old_dir: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "site"
    shutil.copytree(site, copy, symlinks=True)
    templates = snapshot(copy / "templates")
    result = run_cli("import", "bootdir", str(old_dir), "--site", str(copy))
    assert result.returncode == 1, result.stderr
    assert "phones: 3 (0 new, 3 updated)" in result.stdout
    assert snapshot(copy / "templates") == templates


def test_ok_per_phone_master_files(site: Path, imported: str, tmp_path: Path) -> None:
    """`<MAC>.cfg` master files of their own: a file one of them alone lists is that phone's,
    whatever its name; a file both list is shared."""
    old = tmp_path / "old"
    old.mkdir()
    for mac, own, ext in (
        ("0004F2000009", "lobby.cfg", "1009"),
        ("0004f200000a", "hall.cfg", "1010"),
    ):
        (old / f"{mac}.cfg").write_text(
            f'<APPLICATION APP_FILE_PATH="sip.ld" CONFIG_FILES="{own}, sip-basic.cfg"/>'
        )
        (old / own).write_text(
            f'<polycomConfig><reg reg.1.address="{ext}" reg.1.auth.password="pw-{ext}"/>'
            f'<up up.backlight.idleIntensity="2"/></polycomConfig>'
        )
    (old / "sip-basic.cfg").write_text(SHARED)
    copy = tmp_path / "site"
    shutil.copytree(site, copy, symlinks=True)
    result = run_cli("import", "bootdir", str(old), "--site", str(copy), "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    # "sip-basic" is the group of the phones imported before, which this import leaves alone.
    assert [(p["mac"], p["group"]) for p in report["phones"]] == [
        ("0004f2000009", "sip-basic-2"),
        ("0004f200000a", "sip-basic-2"),
    ]
    # The site serves phones this import does not know: shared values go to the group only.
    assert report["templates"] == [
        "templates/devices/0004f2000009/phone-secrets.cfg.j2",
        "templates/devices/0004f200000a/phone-secrets.cfg.j2",
        "templates/groups/sip-basic-2/site.cfg.j2",
    ]
    rendered = run_cli(
        "render",
        "0004f2000009",
        "0004f2000009-phone-secrets.cfg",
        "--site",
        str(copy),
        "--show-secrets",
        check=True,
    ).stdout
    assert registrations(rendered) == {1: ("1009", "1009", "1009", "pbx.example.com", "pw-1009")}
    assert 'up.backlight.idleIntensity="2"' in rendered


def test_fail_admin_template_is_not_replaced(
    site: Path, imported: str, old_dir: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "site"
    shutil.copytree(site, copy, symlinks=True)
    ours = copy / "templates" / "devices" / PHONES[2] / "phone-secrets.cfg.j2"
    ours.write_text('{% extends "base" %}\n')
    before = snapshot(copy)
    result = run_cli("import", "bootdir", str(old_dir), "--site", str(copy))
    assert result.returncode == 2
    assert f"{ours} exists and was not written by an import" in result.stderr
    assert "Move it aside" in result.stderr
    assert snapshot(copy) == before


def test_fail_not_a_boot_directory(site: Path, imported: str, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "phones.cfg").write_text("<polycomConfig/>")
    before = snapshot(site)
    result = run_cli("import", "bootdir", str(notes), "--site", str(site))
    assert result.returncode == 2
    assert "has no master file" in result.stderr
    assert snapshot(site) == before


@pytest.fixture(scope="module")
def served(site: Path, imported: str) -> Iterator[Server]:
    """`phoneprov serve` on free ports, written into the settings first: initial.cfg sends the
    phone to the HTTPS port that really listens."""
    ports = {name: free_port() for name in PROTOCOLS}
    edit_settings(site, **{name: {"port": port} for name, port in ports.items()})
    flags = [item for name, port in ports.items() for item in (f"--{name}-port", str(port))]
    server = start_server(site, *flags, protocols=PROTOCOLS)
    try:
        yield server
    finally:
        server.stop()


def simulate(*args: str) -> dict[str, Any]:
    result = run_cli("simulate", *args, "--format", "json", timeout=120)
    report: dict[str, Any] = json.loads(result.stdout)
    assert result.returncode == (0 if report["ok"] else 1), result.stderr
    return report


@pytest.mark.parametrize("mac", PHONES)
def test_ok_simulated_phone_registers_the_same_lines(
    old_server: str, served: Server, site: Path, mac: str
) -> None:
    # Against the old server, the phone would follow the old device.prov.serverName
    # (old.example.com); --app-url keeps it on the loopback copy of that server.
    before = simulate("--url", old_server, "--app-url", old_server, "--mac", mac)
    after = simulate(
        "--url",
        f"http://127.0.0.1:{served.ports['http']}/",
        "--mac",
        mac,
        "--site",
        str(site),
        "--make-device-cert",
    )
    assert before["ok"] and after["ok"], (before["notes"], after["notes"])
    assert before["registrations"], before
    assert after["registrations"] == before["registrations"]
    fetched = {(r["path"], r["status"]) for r in after["requests"]}
    assert ("sip.ld", 200) in fetched  # the firmware, from the catalog
    if mac == PHONES[0]:
        assert (f"overrides/{mac}-phone.cfg", 200) in fetched
        assert (f"contacts/{mac}-directory.xml", 200) in fetched
