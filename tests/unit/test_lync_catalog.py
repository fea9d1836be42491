"""Device update catalog, staged rollout, the answer, the loop guard and the doctor checks."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from phoneprov.config import Settings
from phoneprov.errors import InputError
from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.pki.authority import LEGACY_DIR, CertificateAuthority
from phoneprov.protocols.lync import PackageKey, example_request, parse_request
from phoneprov.provisioning.lync.answer import decide, is_looping
from phoneprov.provisioning.lync.checks import (
    check_cx700_chain,
    check_firmware_loops,
    check_lync_firmware_conflict,
    cx700_chain_findings,
    lync_firmware_conflict_findings,
    served_chain,
)
from phoneprov.provisioning.lync.packages import (
    add_demo_package,
    add_package,
    import_layout,
    site_catalog,
)
from phoneprov.records import RequestRow
from phoneprov.store import open_database

KEY = PackageKey("UCPhone", "Polycom", "CX700", "A", "ENU")
MAC = MacAddress("0004f2aabbcc")
NOW = datetime.now(UTC)
BASES = {"internal_base": "http://prov:8080", "external_base": "https://prov:8443"}


def image(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def site_of(path: Path) -> Settings:
    """A site folder with the default database (``<site>/phoneprov.db``)."""
    return Settings(site_dir=path)


def test_ok_add_stores_once_by_sha256(tmp_path: Path) -> None:
    site = tmp_path / "site"
    data = b"image" * 1000
    first = add_package(site_of(site), [image(tmp_path, "CPE.nbt", data)], KEY, "1.0.522.101")
    add_package(site_of(site), [image(tmp_path, "CPE.nbt", data)], KEY, "1.0.522.102")
    catalog = site_catalog(site_of(site))
    assert first.primary.sha256 == hashlib.sha256(data).hexdigest()
    assert catalog.object_path(first.primary.sha256).read_bytes() == data
    assert len(list((site / "ucupdate" / "objects").iterdir())) == 1  # deduplicated
    assert {p.version for p in catalog.packages} == {"1.0.522.101", "1.0.522.102"}
    assert catalog.assigned_version(KEY, "") == "1.0.522.102"  # the last add is approved


@pytest.mark.parametrize(
    "version",
    ["", "latest", "../1", "0"],
    ids=["fail/empty", "fail/word", "fail/traversal", "fail/zero"],
)
def test_fail_add_bad_version(tmp_path: Path, version: str) -> None:
    with pytest.raises(InputError, match="--version"):
        add_package(site_of(tmp_path), [image(tmp_path, "CPE.nbt", b"x")], KEY, version)


def test_staged_rollout_by_group(tmp_path: Path) -> None:
    site = tmp_path / "site"
    add_package(site_of(site), [image(tmp_path, "CPE.nbt", b"old")], KEY, "1.0.522.73")
    new = image(tmp_path, "CPE.nbt", b"new")
    add_package(site_of(site), [new], KEY, "1.0.522.101", group="pilot")
    catalog = site_catalog(site_of(site))
    assert catalog.assigned_version(KEY, "pilot") == "1.0.522.101"
    assert catalog.assigned_version(KEY, "Pilot") == "1.0.522.101"
    assert catalog.assigned_version(KEY, "sales") == "1.0.522.73"
    assert catalog.assigned_version(KEY, "") == "1.0.522.73"
    request = parse_request(example_request(KEY, MAC, "1.0.522.73"))
    assert decide(catalog, request, "pilot", **BASES).outcome == "update"
    assert decide(catalog, request, "", **BASES).outcome == "up-to-date"
    everyone = catalog.with_assignment(catalog.match_key(model="cx700"), "1.0.522.101", "")
    assert decide(everyone, request, "", **BASES).outcome == "update"
    with pytest.raises(InputError, match="no version '9'"):
        catalog.with_assignment(KEY, "9", "")
    with pytest.raises(InputError, match="no device update package for model 'VVX'"):
        catalog.match_key(model="VVX")


@pytest.mark.parametrize(
    ("reported", "outcome", "has_url"),
    [
        ("1.0.522.73", "update", True),
        ("1.0.522.101", "up-to-date", False),
        ("3.5.6907.35", "newer", False),
        ("", "update", True),
    ],
    ids=[
        "ok/older-gets-url",
        "ok/equal-stays",
        "ok/newer-not-downgraded",
        "ok/no-module-reported-gets-url",
    ],
)
def test_decide_versions(tmp_path: Path, reported: str, outcome: str, has_url: bool) -> None:
    add_package(site_of(tmp_path), [image(tmp_path, "CPE.nbt", b"x")], KEY, "1.0.522.101")
    body = (
        example_request(KEY, MAC, reported)
        if reported
        else (
            b"<Request><DeviceType>UCPhone</DeviceType><Vendor>Polycom</Vendor><Model>CX700</Model>"
            b"<Revision>A</Revision><Locale>ENU</Locale></Request>"
        )
    )
    answer = decide(site_catalog(site_of(tmp_path)), parse_request(body), "", **BASES)
    assert answer.outcome == outcome
    (offer,) = answer.offers
    assert offer.version == "1.0.522.101"
    assert bool(offer.base_url) is has_url
    if has_url:
        assert offer.base_url == (
            "http://prov:8080/DeviceUpdateFiles_Int/UCPhone/Polycom/CX700/A/ENU/1.0.522.101/CPE"
        )
        assert offer.external_base_url.startswith("https://prov:8443/DeviceUpdateFiles_Ext/")


def test_unknown_model_and_incomplete_request_get_nothing(tmp_path: Path) -> None:
    add_package(site_of(tmp_path), [image(tmp_path, "CPE.nbt", b"x")], KEY, "1.0.522.101")
    catalog = site_catalog(site_of(tmp_path))
    other = PackageKey("UCPhone", "Polycom", "CX600", "A", "ENU")
    unknown = parse_request(example_request(other, MAC, "1"))
    assert decide(catalog, unknown, "", **BASES).offers == ()
    partial = parse_request(b"<Request><Model>CX700</Model></Request>")
    assert decide(catalog, partial, "", **BASES).outcome == "unknown"


def test_import_cab_layout(tmp_path: Path) -> None:
    cab = tmp_path / "cab"
    for version in ("1.0.522.73", "1.0.522.101"):
        folder = cab / "UCPhone" / "Polycom" / "CX700" / "A" / "ENU" / version / "CPE"
        folder.mkdir(parents=True)
        (folder / "CPE.nbt").write_bytes(version.encode() * 100)
        (folder / "CPE.nbt.sig").write_bytes(b"sig")
    (cab / "readme.txt").write_text("ignored: not in the layout")
    packages = import_layout(site_of(tmp_path / "site"), cab)
    assert sorted(p.version for p in packages) == ["1.0.522.101", "1.0.522.73"]
    catalog = site_catalog(site_of(tmp_path / "site"))
    assert catalog.assigned_version(KEY, "") == "1.0.522.101"  # the newest
    package = catalog.find(KEY, "1.0.522.101", "CPE")
    assert package is not None and package.primary.name == "CPE.nbt"
    assert package.file("cpe.nbt.SIG") is not None
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "CPE.nbt").write_bytes(b"x")
    with pytest.raises(InputError, match="layout"):
        import_layout(site_of(tmp_path / "site"), flat)


def test_demo_package(tmp_path: Path) -> None:
    path = add_demo_package(site_of(tmp_path))
    assert path.stat().st_size == 64 * 1024
    assert site_catalog(site_of(tmp_path)).assigned_version(KEY, "") == "1.0.522.101"


@pytest.mark.parametrize(
    ("history", "looping"),
    [
        ([("CPE=1", "CPE=2")] * 3, True),
        ([("CPE=1", "CPE=2")] * 2, False),
        ([("CPE=2", "")] + [("CPE=1", "CPE=2")] * 2, False),
        ([("CPE=1", "CPE=3")] + [("CPE=1", "CPE=2")] * 2, False),
        ([("CPE=1", "")] * 5, False),
    ],
    ids=[
        "loop/three-same-offers",
        "ok/only-two",
        "ok/installed",
        "ok/offer-changed",
        "ok/nothing-offered",
    ],
)
def test_is_looping(history: list[tuple[str, str]], looping: bool) -> None:
    assert is_looping(history) is looping


def test_store_log_flags_and_lookups(tmp_path: Path) -> None:
    store = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    log = store.lync
    try:
        for i in range(60):
            log.record(
                RequestRow(
                    float(i),
                    MAC.value,
                    "192.0.2.9",
                    "Int",
                    KEY.label(),
                    "CPE=1",
                    "CPE=2",
                    "update",
                    f"<r n='{i}'/>",
                )
            )
        recent = log.recent(MAC, 5)
        assert [r.body for r in recent][:2] == ["<r n='59'/>", "<r n='58'/>"]
        assert len(log.recent(MAC, 100)) == 50  # pruned per device
        assert log.model_at_ip("192.0.2.9", since=0) == "CX700"
        assert log.model_at_ip("192.0.2.9", since=1000) == ""
        assert log.set_flag(MAC, "firmware-loop", True, DeviceStatus.DISCOVERED)
        assert not log.set_flag(MAC, "firmware-loop", True)
        assert log.flagged("firmware-loop") == [MAC]
        assert check_firmware_loops(log)[0].severity == "warn"
        assert log.set_flag(MAC, "firmware-loop", False)
        assert log.flagged("firmware-loop") == []
    finally:
        store.close()


# The CX700 certificate trap: the pki lint is the judge.


@pytest.fixture(scope="module")
def modern_4096(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.create(
        tmp_path_factory.mktemp("pki"), common_name="Big Root", key="rsa-4096", hash_name="sha256"
    )


def test_fail_cx700_gets_4096_sha256_root(modern_4096: CertificateAuthority) -> None:
    chain, legacy = served_chain(modern_4096.pki_dir, legacy_device=True)
    assert not legacy
    findings = cx700_chain_findings(chain, legacy=legacy, cx700_count=3, now=NOW)
    assert findings and all(f.severity == "fail" for f in findings)
    text = findings[0].message + findings[0].fix
    assert "RSA-4096" in text and "SHA256" in text.upper().replace("-", "")
    assert "--profile legacy" in findings[0].fix and "public edge" in findings[0].fix
    assert cx700_chain_findings(chain, legacy=False, cx700_count=0, now=NOW) == []


def test_ok_cx700_gets_legacy_chain_when_present(
    tmp_path: Path, modern_4096: CertificateAuthority
) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    (pki / "ca.pem").write_bytes(modern_4096.cert_pem)
    CertificateAuthority.create(pki / LEGACY_DIR, common_name="Legacy Root", profile="legacy")
    chain, legacy = served_chain(pki, legacy_device=True)
    assert legacy
    findings = cx700_chain_findings(chain, legacy=True, cx700_count=1, now=NOW)
    assert [f.severity for f in findings] == ["info"]
    modern, was_legacy = served_chain(pki, legacy_device=False)
    assert not was_legacy and modern[0].subject != chain[0].subject


def test_check_cx700_chain_reads_site(tmp_path: Path, modern_4096: CertificateAuthority) -> None:
    site = tmp_path / "site"
    (site / "pki").mkdir(parents=True)
    (site / "pki" / "ca.pem").write_bytes(modern_4096.cert_pem)
    settings = Settings(site_dir=site)
    store = open_database(settings.database_url)
    try:
        assert check_cx700_chain(settings, store, NOW) == []  # no CX700 anywhere
        add_demo_package(settings)  # a CX700 package: CX700s are coming
        assert check_cx700_chain(settings, store, NOW)[0].severity == "fail"
    finally:
        store.close()


MASTER = b'<APPLICATION APP_FILE_PATH="sip.ld" CONFIG_FILES="site.cfg"/>'
LYNC_ON = (
    b'<polycomConfig><device device.set="1" device.prov.lyncDeviceUpdateEnabled="1"/>'
    b"</polycomConfig>"
)


def test_warn_app_file_path_with_lync_update() -> None:
    (finding,) = lync_firmware_conflict_findings(MASTER, {"site.cfg": LYNC_ON})
    assert finding.severity == "warn"
    assert 'APP_FILE_PATH="sip.ld"' in finding.message and "site.cfg" in finding.message
    assert (
        lync_firmware_conflict_findings(b'<APPLICATION APP_FILE_PATH=""/>', {"site.cfg": LYNC_ON})
        == []
    )
    off = LYNC_ON.replace(b'Enabled="1"', b'Enabled="0"')
    assert lync_firmware_conflict_findings(MASTER, {"site.cfg": off}) == []
    per_model = (
        b'<APPLICATION APP_FILE_PATH=""><APPLICATION_VVX410 APP_FILE_PATH_VVX410="x.ld"/>'
        b"</APPLICATION>"
    )
    assert len(lync_firmware_conflict_findings(per_model, {"a.cfg": LYNC_ON, "b.cfg": b"<"})) == 1


def test_check_lync_firmware_conflict_reads_boot_dir(tmp_path: Path) -> None:
    (tmp_path / "000000000000.cfg").write_bytes(MASTER)
    (tmp_path / "sfb.cfg").write_bytes(LYNC_ON)
    assert [f.check for f in check_lync_firmware_conflict(tmp_path)] == ["lync-app-file-path"]
    assert check_lync_firmware_conflict(tmp_path / "missing") == []
