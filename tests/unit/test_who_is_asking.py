"""Who is asking: User-Agents of every Poly family, the XML browser, known models, site-wide files.

Sources: the User-Agents are as provisioning servers quote them (research §4.1):
``FileTransport PolyEdge-Edge_E450-UA/8.0.0.15602 Type/Application`` (a
FreePBX Polycom module's comment), ``FileTransport PolyCCX-CCX_600-UA/8.0.2.3267
(SN:482567b5313f) Type/Application`` (a provisioning server's test), and
``Microbrowser/1.1 PolycomSoundPointIP-SPIP_550-UA/4.0.15.1047 Type/Application``
(a provisioning server's access log: the XML browser). Part numbers are the
firmware image names (``3111-48450-001.sip.ld`` is the VVX 411's, in Polycom's
own release zip; the model table lists its sources).
"""

from __future__ import annotations

import pytest

from phoneprov.model import MacAddress
from phoneprov.protocols.contentrange import BadContentRange, parse_content_range, unsatisfied
from phoneprov.protocols.phonemodels import Family, find_model, known_model
from phoneprov.protocols.polycom import ResourceKind, Stage, classify, parse_user_agent
from phoneprov.provisioning.identity import _model
from phoneprov.sim import trace
from phoneprov.sim.phone import Phone


@pytest.mark.parametrize(
    ("header", "family", "token", "mac", "browser"),
    [
        ("FileTransport PolyEdge-Edge_E450-UA/8.0.0.15602 Type/Application", Family.EDGE,
         "EdgeE450", None, False),
        ("FileTransport PolyCCX-CCX_600-UA/8.0.2.3267 (SN:482567b5313f) Type/Application",
         Family.CCX, "CCX600", "482567b5313f", False),
        ("FileTransport PolycomVVX-VVX_450-UA/5.9.1.0615 Type/Application", Family.VVX,
         "VVX450", None, False),
        ("FileTransport PolycomRealPresenceTrio-Trio_8800-UA/7.2.2.1094 Type/Application",
         Family.TRIO, "Trio8800", None, False),
        ("Microbrowser/1.1 PolycomSoundPointIP-SPIP_550-UA/4.0.15.1047 Type/Application",
         Family.SOUNDPOINT_IP, "SPIP550", None, True),
    ],
)  # fmt: skip
def test_ok_every_family_parsed_and_known(
    header: str, family: Family, token: str, mac: str | None, browser: bool
) -> None:
    agent = parse_user_agent(header)
    assert agent is not None
    assert agent.family == family.value
    assert agent.browser is browser
    assert agent.mac == (MacAddress(mac) if mac else None)
    model = known_model(agent.model)
    assert model is not None and model.token == token and model.family is family


def test_ok_part_numbers_include_vvx_400_401_and_x50() -> None:
    assert find_model("VVX400").part == "3111-46157-002"
    assert find_model("VVX401").part == "3111-48400-001"
    assert find_model("VVX411").part == "3111-48450-001"
    assert find_model("VVX450").part == "3111-48840-001"
    assert find_model("Trio8800").part == "3111-65290-001"
    assert Phone(MacAddress("0004f2000001"), "VVX401").part_number == "3111-48400-001"


def test_ok_unknown_model_recorded_as_sent() -> None:
    agent = parse_user_agent("FileTransport PolyEdge-Edge_E999-UA/9.1.0.1 Type/Application")
    assert agent is not None and agent.stage is Stage.APPLICATION
    assert known_model(agent.model) is None
    assert _model(agent) == "Edge_E999"


def test_ok_sim_user_agent_of_poly_families() -> None:
    phone = Phone(MacAddress("0004f2000001"), "EdgeE450", app_version="8.0.0.15602")
    assert phone.user_agent(Stage.APPLICATION) == (
        "FileTransport PolyEdge-Edge_E450-UA/8.0.0.15602 Type/Application"
    )


def test_ok_site_wide_files_every_phone_asks_for() -> None:
    """`000000000000-license.cfg` and `000000000000-directory.xml`: one name for every phone
    (research §2.2, the VVX 500 boot: both requested after the per-phone files)."""
    for name in ("000000000000-license.cfg", "000000000000-directory.xml"):
        assert classify(name).kind is ResourceKind.SITE_WIDE
        assert classify(f"contacts/{name}").kind is ResourceKind.SITE_WIDE
    assert classify("0004f2000001-directory.xml").kind is ResourceKind.UPLOAD


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes 0-9/*", 0, 9), ("bytes 1200-1299/*", 1200, 1299), ("Bytes 5-5/6", 5, 5)],
)
def test_ok_content_range(header: str, first: int, last: int) -> None:
    span = parse_content_range(header)
    assert (span.first, span.last, span.length) == (first, last, last - first + 1)


@pytest.mark.parametrize("header", ["bytes=0-9", "bytes 9-0/*", "bytes 0-9/5", "items 0-9/*", ""])
def test_fail_content_range_malformed(header: str) -> None:
    with pytest.raises(BadContentRange):
        parse_content_range(header)


def test_ok_416_names_current_size() -> None:
    assert unsatisfied(1234) == "bytes */1234"


def test_ok_since_boot_stamp_is_hhmmss_mmm() -> None:
    """The Polycom guides' since-boot stamp: ``011511.006`` is 1 h 15 min 11.006 s."""
    assert trace.boot_stamp(4511.006) == "011511.006"
    assert trace.boot_stamp(5.93) == "000005.930"
