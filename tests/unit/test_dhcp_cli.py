"""``phoneprov dhcp options`` and ``phoneprov dhcp decode`` through the real typer app."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from phoneprov.cli.app import app
from phoneprov.protocols.dhcp.options import offset_for_zone

runner = CliRunner()
URL = "http://prov.example.com:8080/"


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["dhcp", *args])
    return result.exit_code, result.stdout, result.stderr


def test_ok_json_shape_is_stable() -> None:
    code, out, _ = run(
        "options",
        "--provisioning-url", URL,
        "--sip-server", "sip.example.com",
        "--web-server", "lyncweb.example.com",
        "--ntp", "10.99.0.1",
        "--tz-offset", "-18000",
        "--vlan", "100",
        "--format", "json",
    )  # fmt: skip
    assert code == 0
    options = json.loads(out)["options"]
    assert [(o["code"], o["vendor_class"]) for o in options] == [
        (2, None),
        (42, None),
        (66, None),
        (120, None),
        (160, None),
        (161, None),
        (43, "MS-UC-Client"),
        (43, "CPE-OCPHONE"),
    ]
    for option in options:
        assert set(option) == {"code", "vendor_class", "name", "hex", "value", "notes"}
        assert option["hex"] == option["hex"].upper() and option["hex"].isalnum()
    assert options[3] == {
        "code": 120,
        "vendor_class": None,
        "name": "sip-server",
        "hex": "0003736970076578616D706C6503636F6D00",
        "value": "sip.example.com",
        "notes": options[3]["notes"],
    }
    assert options[0]["hex"] == "FFFFB9B0"


def write_site(root: Path, body: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "phoneprov.toml").write_text(body, encoding="utf-8")
    return root


def test_ok_url_derived_from_site_settings(tmp_path: Path) -> None:
    site = write_site(
        tmp_path / "site", '[site]\nfqdns = ["prov.corp.example"]\n[http]\nport = 8088\n'
    )
    code, out, _ = run("options", "--site", str(site), "--format", "json")
    assert code == 0
    by_code = {o["code"]: o for o in json.loads(out)["options"]}
    assert by_code[160]["value"] == "http://prov.corp.example:8088/"
    assert by_code[161]["value"] == "http://prov.corp.example:8088/"
    assert any("PlcmSpIp" in note for note in by_code[160]["notes"])
    assert any("https://prov.corp.example:8443/" in note for note in by_code[160]["notes"])


def test_ok_http_disabled_site_is_flagged(tmp_path: Path) -> None:
    site = write_site(
        tmp_path / "site", '[site]\nfqdns = ["prov.corp.example"]\n[http]\nenabled = false\n'
    )
    code, out, _ = run("options", "--site", str(site))
    assert code == 0
    assert "cannot bootstrap" in out


def test_ok_localhost_site_is_flagged(tmp_path: Path) -> None:
    site = write_site(tmp_path / "site", "[site]\nname = 'demo'\n")
    code, out, _ = run("options", "--site", str(site))
    assert code == 0
    assert "phones cannot reach it" in out


def test_fail_no_site_and_no_url_names_both_fixes(tmp_path: Path) -> None:
    code, _, err = run("options", "--site", str(tmp_path / "nothing"))
    assert code == 2
    assert "--provisioning-url" in err and "phoneprov init" in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--provisioning-url", "prov.example.com"], "no ftp://"),
        (["--provisioning-url", URL, "--web-server", "10.0.0.5"], "is an IP address"),
        (["--provisioning-url", URL, "--vlan", "4095"], "outside 1..4094"),
        (["--provisioning-url", URL, "--sip-server", "x" * 64 + ".example.com"], "at most 63"),
        (["--provisioning-url", URL, "--sip-server", "a.example.com", "--sip-server", "10.0.0.1"],
         "mixes names and IP"),
        (["--provisioning-url", URL, "--tz-offset", "0", "--timezone", "UTC"], "both set option 2"),
        (["--provisioning-url", URL, "--timezone", "Mars/Olympus"], "not a time zone"),
        (["--provisioning-url", URL, "--web-server", "w.example.com", "--skus", "open-sip"],
         "--skus is open-sip"),
    ],
    ids=[
        "fail/url-without-scheme",
        "fail/web-server-ip",
        "fail/vlan-over-4094",
        "fail/label-over-63",
        "fail/sip-mixed",
        "fail/two-offsets",
        "fail/unknown-zone",
        "fail/web-server-open-sip",
    ],
)  # fmt: skip
def test_input_errors_exit_2_with_hint(args: list[str], fragment: str) -> None:
    code, _, err = run("options", *args)
    assert code == 2
    assert fragment in err
    assert "hint:" in err


def test_ok_timezone_uses_todays_offset() -> None:
    code, out, _ = run("options", "--provisioning-url", URL, "--timezone", "America/New_York",
                       "--format", "json")  # fmt: skip
    assert code == 0
    option = json.loads(out)["options"][0]
    seconds, _ = offset_for_zone(ZoneInfo("America/New_York"), "x", datetime.now(UTC))
    assert option["hex"] == (seconds & 0xFFFFFFFF).to_bytes(4, "big").hex().upper()
    assert any("daylight saving time changes it" in n for n in option["notes"])


@pytest.mark.parametrize(
    ("when", "seconds"),
    [(datetime(2025, 1, 15, tzinfo=UTC), -18000), (datetime(2025, 7, 15, tzinfo=UTC), -14400)],
    ids=["ok/new-york-winter", "ok/new-york-summer"],
)
def test_offset_for_zone_follows_dst(when: datetime, seconds: int) -> None:
    value, note = offset_for_zone(ZoneInfo("America/New_York"), "America/New_York", when)
    assert value == seconds
    assert note.startswith(f"America/New_York is UTC-0{-seconds // 3600}:00 on {when.date()}")


def test_ok_decode_table_and_json() -> None:
    code, out, _ = run("decode", "43", "0A020064", "--vendor-class", "CPE-OCPHONE")
    assert code == 0
    assert "sub-option 10 voice VLAN  VLAN 100" in out
    code, out, _ = run("decode", "2", "ff:ff:b9:b0", "--format", "json")
    assert code == 0
    assert json.loads(out)["fields"][0]["meaning"] == "-18000 s (UTC-05:00)"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["43", "010C4D53"], "byte offset 0 declares 12 bytes but only 2 follow"),
        (["120", "00zz"], "byte offset 1"),
    ],
    ids=["fail/decode-truncated-tlv", "fail/decode-bad-hex"],
)
def test_decode_errors_exit_2_with_offset(args: list[str], fragment: str) -> None:
    code, _, err = run("decode", *args)
    assert code == 2
    assert fragment in err
