"""The sans-IO ucdevice.upx core: tolerant request parsing, versions, the answer document."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from phoneprov.model import MacAddress
from phoneprov.protocols.lync import (
    DeviceRequest,
    Offer,
    PackageKey,
    RequestError,
    Side,
    build_response,
    compare_versions,
    example_request,
    files_path,
    module_name,
    needs_legacy_chain,
    parse_request,
)

KEY = PackageKey("UCPhone", "Polycom", "CX700", "A", "ENU")
MAC = MacAddress("0004f2aabbcc")


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        ("1.0.522.73", "1.0.522.101", -1),  # numeric, not text, order
        ("1.0.522.101", "1.0.522.101", 0),
        ("3.5.6907.35", "1.0.522.101", 1),
        ("1.0", "1.0.0.0", 0),
        ("4.0.7577.4100", "4.0.7577.4047", 1),
        ("1.0.522.101a", "1.0.522.101", 1),
    ],
    ids=[
        "older/numeric-parts",
        "equal",
        "newer",
        "equal/trailing-zeros",
        "newer/last-part",
        "newer/text-suffix",
    ],
)
def test_compare_versions(a: str, b: str, order: int) -> None:
    assert compare_versions(a, b) == order
    assert compare_versions(b, a) == -order


def test_ok_documented_shape() -> None:
    request = parse_request(example_request(KEY, MAC, "1.0.522.73", serial="SN123"))
    assert request.key == KEY
    assert request.mac == MAC
    assert request.serial == "SN123"
    assert request.reported("CPE") == "1.0.522.73"
    assert request.complete


SPELLINGS = {
    "attributes-on-root": (
        b'<UpdateRequest DeviceType="UCPhone" MAC="00:04:F2:AA:BB:CC" Vendor="Polycom" '
        b'Model="CX700" Revision="A" Locale="ENU"><Module Name="CPE" Version="1.0.522.73"/>'
        b"</UpdateRequest>"
    ),
    "namespace-and-underscores": (
        b'<r:Request xmlns:r="urn:example:ucdevice"><r:Device><r:Device_Type>UCPhone'
        b"</r:Device_Type><r:MAC_Address>0004.f2aa.bbcc</r:MAC_Address><r:Serial_Number>S"
        b"</r:Serial_Number><r:Vendor>Polycom</r:Vendor><r:Model>CX700</r:Model>"
        b"<r:Hardware_Revision>A</r:Hardware_Revision><r:Language>ENU</r:Language></r:Device>"
        b"<r:Modules><r:Module><r:FileName>CPE.nbt</r:FileName><r:Version>1.0.522.73"
        b"</r:Version></r:Module></r:Modules></r:Request>"
    ),
    "audit-log-module-text": (
        b"<request><devicetype>UCPhone</devicetype><macaddress>0004F2AABBCC</macaddress>"
        b"<vendor>Polycom</vendor><model>CX700</model><revision>A</revision><locale>ENU</locale>"
        b"<RequestModules><Module>CPE.nbt;1.0.522.73;2009-10-01</Module></RequestModules>"
        b"</request>"
    ),
}


@pytest.mark.parametrize("body", SPELLINGS.values(), ids=[f"ok/{k}" for k in SPELLINGS])
def test_tolerant_spellings(body: bytes) -> None:
    request = parse_request(body)
    assert request.key == KEY
    assert request.mac == MAC
    assert request.reported("CPE") == "1.0.522.73"


def test_ok_unknown_elements_ignored_and_missing_fields_empty() -> None:
    request = parse_request(b"<Request><Model>CX700</Model><Weather>rain</Weather></Request>")
    assert request.model == "CX700"
    assert request.mac is None and request.vendor == "" and not request.complete


def test_ok_bad_mac_kept_as_text() -> None:
    request = parse_request(b"<Request><MAC>not-a-mac</MAC><Model>CX700</Model></Request>")
    assert request.mac is None
    assert request.mac_text == "not-a-mac"


@pytest.mark.parametrize(
    ("body", "line", "column"),
    [
        (b"<Request>\n  <Model>CX700</Mdl>\n</Request>", 2, 17),  # column of "Mdl"
        (b"<Request><Model>CX700</Model>", 1, 30),
        (b"   ", 1, 1),
        # expat reports a DOCTYPE where it has read its name, before the internal subset.
        (b'<!DOCTYPE r [<!ENTITY a "aaaa">]><r>&a;</r>', 1, 13),
        (b"<!--" + b"x" * 5000 + b"-->\n<!DOCTYPE r SYSTEM 'http://x/'><r/>", 2, 31),
    ],
    ids=[
        "fail/mismatched-tag",
        "fail/truncated",
        "fail/empty",
        "fail/doctype",
        "fail/doctype-after-4-kib",
    ],
)
def test_malformed_reports_position(body: bytes, line: int, column: int) -> None:
    with pytest.raises(RequestError) as caught:
        parse_request(body)
    assert (caught.value.line, caught.value.column) == (line, column)
    if body.strip():
        assert f"line {line}, column {column}" in str(caught.value)


def test_files_path_and_module_name() -> None:
    assert files_path(Side.INTERNAL, KEY, "1.0.522.101", "CPE") == (
        "/DeviceUpdateFiles_Int/UCPhone/Polycom/CX700/A/ENU/1.0.522.101/CPE"
    )
    assert files_path(Side.EXTERNAL, KEY, "1", "CPE").startswith("/DeviceUpdateFiles_Ext/")
    assert module_name("CPE.nbt") == "CPE"
    assert module_name("dir\\UCPhone.cab") == "UCPhone"


def test_response_update_and_up_to_date_parse_back() -> None:
    request = DeviceRequest("UCPhone", MAC, "", "", "Polycom", "CX700", "A", "ENU")
    update = ET.fromstring(
        build_response(request, [Offer("CPE", "CPE.nbt", "2", "http://h/x", "https://h/y")])
    )
    assert update.findtext("Status") == "UpdateAvailable"
    module = update.find("Modules/Module")
    assert module is not None and module.get("Version") == "2"
    assert module.findtext("BaseURL") == "http://h/x"
    assert module.findtext("ExternalBaseURL") == "https://h/y"
    stay = ET.fromstring(build_response(request, [Offer("CPE", "CPE.nbt", "2")]))
    assert stay.findtext("Status") == "UpToDate"
    assert stay.findtext("Modules/Module/BaseURL") == ""
    empty = ET.fromstring(build_response(DeviceRequest(model="X<&>"), []))
    assert empty.findtext("Model") == "X<&>"
    assert empty.find("Modules") is not None and len(empty.find("Modules")) == 0  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("model", "agent", "legacy"),
    [
        ("CX700", "", True),
        ("cx-700", "", True),
        ("", "Microsoft Office Communicator Phone Edition/1.0", True),
        ("", "Mozilla/4.0 (compatible; MSIE 6.0; Windows CE)", True),
        ("VVX410", "FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614", False),
        ("", "", False),
    ],
    ids=[
        "ok/model",
        "ok/model-spelling",
        "ok/agent-product",
        "ok/agent-wince",
        "no/vvx",
        "no/nothing",
    ],
)
def test_needs_legacy_chain(model: str, agent: str, legacy: bool) -> None:
    assert needs_legacy_chain(model, agent) is legacy


def test_package_key_refuses_unsafe_segments() -> None:
    from phoneprov.errors import InputError

    with pytest.raises(InputError, match="--model"):
        PackageKey("UCPhone", "Polycom", "../x", "A", "ENU").check()
    assert KEY.check() is KEY
