"""The pure judgments of `phoneprov doctor` on a site: boot files, DHCP, clock, disk, key
modes, firmware."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from tests.pkitools import make_ca

from phoneprov.config import settings_from_mapping
from phoneprov.provisioning.doctor.fleet import ModelFirmware, firmware_findings
from phoneprov.provisioning.doctor.site import (
    clock_findings,
    dhcp_findings,
    disk_findings,
    initial_findings,
    master_findings,
    permission_findings,
)

ROOT = make_ca("Site Root")
ROOT_PEM = ROOT.cert.public_bytes(serialization.Encoding.PEM).decode().strip()
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
HTTPS = "https://prov.example.com:8443/"


@pytest.mark.parametrize(
    ("case", "body", "severity"),
    [
        (
            "ok/bootstrap-master",
            b'<APPLICATION APP_FILE_PATH="sip.ld" CONFIG_FILES="initial.cfg"/>',
            "pass",
        ),
        ("fail/not-xml", b"<APPLICATION APP_FILE_PATH='sip.ld'", "fail"),
        ("fail/wrong-root", b'<polycomConfig CONFIG_FILES="initial.cfg"/>', "fail"),
        ("warn/no-initial-cfg", b'<APPLICATION CONFIG_FILES="site.cfg, phone1.cfg"/>', "warn"),
    ],
)
def test_master_file(case: str, body: bytes, severity: str) -> None:
    assert [f.severity for f in master_findings(body, "test")] == [severity]


def initial(**attrs: str) -> bytes:
    values = {
        "device.set": "1",
        "device.prov.serverType": "HTTPS",
        "device.prov.serverType.set": "1",
        "device.prov.serverName": HTTPS,
        "device.prov.serverName.set": "1",
        "device.sec.TLS.customCaCert1": ROOT_PEM,
        "device.sec.TLS.customCaCert1.set": "1",
    }
    values.update(attrs)
    rendered = " ".join(f'{k}="{v}"' for k, v in values.items() if v != "-")
    return f"<polycomConfig><device {rendered}/></polycomConfig>".encode()


@pytest.mark.parametrize(
    ("case", "body", "severity", "words"),
    [
        ("ok/moves-phone-to-site", initial(), "pass", "moves phones to"),
        (
            "ok/case-and-no-trailing-slash",
            initial(**{"device.prov.serverName": "HTTPS://PROV.example.com:8443"}),
            "pass",
            "",
        ),
        (
            "fail/wrong-port",
            initial(**{"device.prov.serverName": "https://prov.example.com/"}),
            "fail",
            "is not this site's HTTPS URL",
        ),
        ("fail/plain-http", initial(**{"device.prov.serverType": "HTTP"}), "fail", "not HTTPS"),
        ("fail/no-device-set", initial(**{"device.set": "-"}), "fail", 'device.set="1"'),
        (
            "fail/missing-set-twin",
            initial(**{"device.prov.serverName.set": "-"}),
            "fail",
            "lack their .set",
        ),
        (
            "fail/ca-not-carried",
            initial(**{"device.sec.TLS.customCaCert1": "garbage"}),
            "fail",
            "does not carry the site root",
        ),
        ("fail/not-xml", b"<polycomConfig><device", "fail", "not well-formed"),
    ],
)
def test_initial_cfg(case: str, body: bytes, severity: str, words: str) -> None:
    findings = initial_findings(body, "test", https_url=HTTPS, site_root=ROOT.cert)
    assert [f.severity for f in findings] == [severity], findings
    assert words in findings[0].message


def settings(**sections: dict[str, object]) -> object:
    raw = {"site": {"fqdns": ["prov.example.com"]}, **sections}
    return settings_from_mapping(Path("/site"), raw, Path("/site/phoneprov.toml"))


def test_dhcp_option_160_points_at_the_http_listener() -> None:
    finding = dhcp_findings(settings())[0]  # type: ignore[arg-type]
    assert finding.severity == "pass"
    assert "http://prov.example.com:8080/" in finding.message
    assert "https://prov.example.com:8443/" in finding.message
    assert "687474703A2F2F70726F762E6578616D706C652E636F6D3A383038302F" in finding.message


def test_fail_dhcp_when_http_is_off() -> None:
    finding = dhcp_findings(settings(http={"enabled": False}))[0]  # type: ignore[arg-type]
    assert finding.severity == "fail" and "[http] enabled = false" in finding.message


@pytest.mark.parametrize(
    ("case", "now", "date", "severity"),
    [
        ("ok/same-second", NOW, "Sun, 01 Mar 2026 12:00:00 GMT", "pass"),
        ("ok/two-minutes", NOW, "Sun, 01 Mar 2026 12:02:00 GMT", "pass"),
        ("ok/no-date-header", NOW, "", "pass"),
        ("warn/ten-minutes-apart", NOW, "Sun, 01 Mar 2026 12:10:00 GMT", "warn"),
        ("warn/not-a-date", NOW, "yesterday", "warn"),
        ("fail/clock-in-2019", dt.datetime(2019, 1, 1, tzinfo=dt.UTC), "", "fail"),
    ],
)
def test_clock(case: str, now: dt.datetime, date: str, severity: str) -> None:
    assert [f.severity for f in clock_findings(now, date, "server")] == [severity]


@pytest.mark.parametrize(
    ("case", "free", "severity"),
    [
        ("fail/50-mib", 50 * 1024**2, "fail"),
        ("warn/500-mib", 500 * 1024**2, "warn"),
        ("ok/2-gib", 2 * 1024**3, "pass"),
    ],
)
def test_disk(case: str, free: int, severity: str) -> None:
    assert [f.severity for f in disk_findings(Path("/site/boot"), free)] == [severity]


def test_key_modes() -> None:
    keys = {
        Path("/s/pki/ca.key"): 0o600,
        Path("/s/pki/server-rsa.key"): 0o644,
        Path("/s/demo/x.key"): 0o400,
        Path("/s/pki/digest-nonce.key"): 0o660,
    }
    finding = permission_findings(keys)[0]
    assert finding.severity == "fail"
    assert finding.fix == "chmod 600 /s/pki/digest-nonce.key /s/pki/server-rsa.key"
    assert "ca.key" not in finding.message and "x.key" not in finding.message
    strict = {Path("/s/pki/ca.key"): 0o600, Path("/s/demo/x.key"): 0o400}
    assert permission_findings(strict)[0].severity == "pass"


@pytest.mark.parametrize(
    ("case", "models", "managed", "boot", "severities"),
    [
        ("ok/no-catalog", {"VVX410": ModelFirmware(2, None, False)}, False, [], ["pass"]),
        (
            "ok/boot-directory-image",
            {"VVX410": ModelFirmware(1, None, False)},
            False,
            ["sip.ld"],
            ["pass"],
        ),
        ("ok/every-model", {"VVX410": ModelFirmware(1, "5.9.8", True)}, True, [], ["pass"]),
        (
            "warn/model-without-firmware",
            {"VVX410": ModelFirmware(1, "5.9.8", True), "SPIP550": ModelFirmware(3, None, False)},
            True,
            [],
            ["warn"],
        ),
        (
            "fail/assigned-image-missing",
            {"VVX410": ModelFirmware(1, "5.9.8", False)},
            True,
            [],
            ["fail"],
        ),
        ("ok/no-inventory", {}, True, [], ["pass"]),
    ],
)
def test_firmware(
    case: str,
    models: dict[str, ModelFirmware],
    managed: bool,
    boot: list[str],
    severities: list[str],
) -> None:
    findings = firmware_findings(models, managed=managed, boot_images=boot)
    assert [f.severity for f in findings] == severities
    if case == "warn/model-without-firmware":
        assert "SPIP550 (3 phone(s))" in findings[0].message
        assert "--models SPIP550" in findings[0].fix
