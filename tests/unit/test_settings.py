"""phoneprov.toml parsing: defaults, every error names key, file and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneprov.config import load_settings, settings_from_mapping
from phoneprov.errors import ConfigError
from phoneprov.protocols.polycom import UploadKind
from phoneprov.provisioning.site import init_site

HERE = Path("phoneprov.toml")


def test_ok_defaults() -> None:
    settings = settings_from_mapping(Path("/s"), {}, HERE)
    assert (settings.http.port, settings.https.port, settings.ftp.port, settings.tftp.port) == (
        8080,
        8443,
        2121,
        6969,
    )
    assert settings.policy.enrolment == "allow"
    assert settings.https.tolerate_expired_device_certs
    assert settings.uploads.limit_for(UploadKind.APP_LOG) == 10 * 1024**2
    assert settings.uploads.limit_for(UploadKind.CORE) == 64 * 1024**2


def test_ok_the_file_init_writes_parses_to_defaults(tmp_path: Path) -> None:
    init_site(tmp_path, ["prov.example.com"])
    settings = load_settings(tmp_path)
    assert settings.fqdns == ("prov.example.com",)
    default = settings_from_mapping(tmp_path, {"site": {"fqdns": ["prov.example.com"]}}, HERE)
    assert settings.policy == default.policy
    assert settings.uploads == default.uploads


@pytest.mark.parametrize(
    "raw,needle",
    [
        ({"http": {"port": "80"}}, "[http] port = '80' is not a whole number"),
        ({"http": {"port": 70000}}, "[http] port = 70000 is out of range"),
        ({"policy": {"enrolment": "maybe"}}, "is not one of allow, quarantine, deny"),
        ({"uploads": {"log_max": "ten"}}, "is not a size"),
        ({"http": {"prot": 1}}, "unknown keys: prot"),
        ({"htp": {}}, "unknown sections: htp"),
        ({"policy": {"bootstrap_writes": ["logs"]}}, "unknown upload kinds: logs"),
        ({"policy": {"folders": {"boot_log": "../x"}}}, "is not a folder name"),
        ({"ftp": {"passive_ports": "3000"}}, "is not a port range"),
    ],
    ids=[
        "fail/port-type",
        "fail/port-range",
        "fail/enrolment",
        "fail/size",
        "fail/unknown-key",
        "fail/unknown-section",
        "fail/upload-kind",
        "fail/folder",
        "fail/passive",
    ],
)
def test_fail_bad_settings(raw: dict[str, dict[str, object]], needle: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings_from_mapping(Path("/s"), raw, HERE)
    assert needle in str(error.value)
    assert str(HERE) in str(error.value)
    assert error.value.hint


def test_fail_missing_file_says_how_to_create(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(tmp_path)
    assert "phoneprov init" in error.value.hint


def test_fail_broken_toml_names_file(tmp_path: Path) -> None:
    (tmp_path / "phoneprov.toml").write_text("[http\nport = 1\n")
    with pytest.raises(ConfigError) as error:
        load_settings(tmp_path)
    assert "is not valid TOML" in str(error.value)
