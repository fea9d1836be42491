"""The simulator's pure parts: boot plan order, master/config parsing, digest, trace lines."""

from __future__ import annotations

import pytest

from phoneprov.errors import InputError
from phoneprov.model import MacAddress
from phoneprov.protocols import digest
from phoneprov.protocols.phonelog.parser import parse_header
from phoneprov.protocols.phonelog.rules import FindingKind, observe
from phoneprov.protocols.polycom import Stage, parse_user_agent
from phoneprov.sim import trace
from phoneprov.sim.configfiles import parse_master, provisioning_url
from phoneprov.sim.digestclient import authorization, parse_challenges
from phoneprov.sim.endpoint import parse_endpoint
from phoneprov.sim.phone import Phone
from phoneprov.sim.plan import (
    Outcome,
    Purpose,
    Severity,
    StagePlan,
    StageResult,
    Step,
    application,
    updater,
)
from phoneprov.sim.storm import percentile, storm_macs

MAC = MacAddress("0004f2abcdef")
PHONE = Phone(MAC, "VVX410")
MASTER = b"""<APPLICATION APP_FILE_PATH="sip.ld" CONFIG_FILES="initial.cfg"
 LOG_FILE_DIRECTORY="logs" OVERRIDES_DIRECTORY="overrides" CONTACTS_DIRECTORY="contacts">
 <APPLICATION_VVX410 APP_FILE_PATH_VVX410="sip59.ld"
  CONFIG_FILES_VVX410="[PHONE_MAC_ADDRESS]-user.cfg, common.cfg"/>
</APPLICATION>"""
INITIAL = b"""<polycomConfig><device device.set="1" device.prov.serverType="HTTPS"
 device.prov.serverType.set="1" device.prov.serverName="prov.example.com:8443/polycom"
 device.prov.serverName.set="1"/></polycomConfig>"""


def drive(plan: StagePlan, files: dict[str, Outcome]) -> tuple[list[Step], StageResult]:
    """Answer each step from ``files`` (404 for anything else, 201 for PUTs)."""
    steps: list[Step] = []
    try:
        step = next(plan)
        while True:
            steps.append(step)
            default = Outcome(201) if step.method == "PUT" else Outcome(404)
            step = plan.send(files.get(f"{step.method} {step.path}", default))
    except StopIteration as done:
        return steps, done.value


def test_ok_updater_order_and_move_to_https() -> None:
    master = MASTER.replace(b"[PHONE_MAC_ADDRESS]-user.cfg, common.cfg", b"initial.cfg")
    steps, result = drive(
        updater(PHONE, "http://prov.example.com/"),
        {
            "GET 000000000000.cfg": Outcome(200, master),
            "GET initial.cfg": Outcome(200, INITIAL),
        },
    )
    assert [f"{s.method} {s.path}" for s in steps] == [
        "GET 0004f2abcdef.cfg",
        "GET 000000000000.cfg",
        "GET sip59.ver",
        "GET 3111-46162-001.sip59.ld",
        "GET sip59.ld",
        "GET initial.cfg",
        "PUT logs/0004f2abcdef-boot.log",
    ]
    assert steps[-1].upload_log
    assert result.next_url == "https://prov.example.com:8443/polycom/"
    assert not result.failed and result.notes == []


def test_ok_firmware_up_to_date_skips_the_image() -> None:
    steps, _ = drive(
        updater(PHONE, "http://x/"),
        {
            "GET 000000000000.cfg": Outcome(200, MASTER),
            "GET sip59.ver": Outcome(200, b"5.9.5.0614\n"),
        },
    )
    assert not any(s.path.endswith(".ld") for s in steps)


def test_ok_application_order_optional_files_and_log() -> None:
    steps, result = drive(
        application(PHONE),
        {
            "GET 0004f2abcdef.cfg": Outcome(200, MASTER),
            "GET 0004f2abcdef-user.cfg": Outcome(200, b"<x a='1'/>"),
            "GET common.cfg": Outcome(200, b"<x a='2' b='3'/>"),
            "GET contacts/0004f2abcdef-directory.xml": Outcome(200, b"<directory/>"),
        },
    )
    paths = [f"{s.method} {s.path}" for s in steps]
    # The application checks its firmware right after <MAC>.cfg, with its own User-Agent
    # (the VVX 500 boot, research §2.2); the log goes up twice (boot end, upload period).
    assert paths == [
        "GET 0004f2abcdef.cfg",
        "GET sip59.ver",
        "GET 3111-46162-001.sip59.ld",
        "GET sip59.ld",
        "GET 0004f2abcdef-user.cfg",
        "GET common.cfg",
        "GET overrides/0004f2abcdef-phone.cfg",
        "GET overrides/0004f2abcdef-web.cfg",
        "GET 000000000000-license.cfg",
        "GET 0004f2abcdef-license.cfg",
        "GET 0004f2abcdef-calls.xml",
        "GET contacts/0004f2abcdef-directory.xml",
        "HEAD logs/0004f2abcdef-app.log",
        "PUT logs/0004f2abcdef-app.log",
        "HEAD logs/0004f2abcdef-app.log",
        "PUT logs/0004f2abcdef-app.log",
    ]
    assert [s.append_from for s in steps if s.method == "PUT"] == [None, None]  # no copy yet
    assert result.params == {"a": "1", "b": "3"}  # first value wins (SIP2 A-2)
    assert not result.failed


def test_ok_seed_directory_only_without_own_and_no_head_over_tftp() -> None:
    steps, _ = drive(
        application(PHONE, can_head=False), {"GET 0004f2abcdef.cfg": Outcome(200, MASTER)}
    )
    paths = [s.path for s in steps]
    assert "contacts/000000000000-directory.xml" in paths
    assert not any(s.method == "HEAD" for s in steps)


@pytest.mark.parametrize(
    ("answers", "reason", "severity"),
    [
        pytest.param({}, "http-404", Severity.FAILURE, id="fail/no-master-file"),
        pytest.param(
            {"GET 000000000000.cfg": Outcome(0, error="tls: handshake")},
            "tls",
            Severity.FAILURE,
            id="fail/tls",
        ),
        pytest.param(
            {"GET 000000000000.cfg": Outcome(200, b"<not xml")},
            "bad-master",
            Severity.FAILURE,
            id="fail/master-not-xml",
        ),
        pytest.param(
            {"GET 000000000000.cfg": Outcome(200, MASTER), "GET common.cfg": Outcome(403)},
            "http-403",
            Severity.FAILURE,
            id="fail/config-forbidden",
        ),
        pytest.param(
            {"GET 000000000000.cfg": Outcome(200, MASTER)},
            "missing-config",
            Severity.WARNING,
            id="ok/config-missing-is-a-warning",
        ),
        pytest.param(
            {
                "GET 0004f2abcdef.cfg": Outcome(403),
                "GET 000000000000.cfg": Outcome(200, b"<APPLICATION/>"),
            },
            "refused-not-missing",
            Severity.WARNING,
            id="ok/refused-mac-cfg-falls-back",
        ),
    ],
)
def test_judgements(answers: dict[str, Outcome], reason: str, severity: Severity) -> None:
    _, result = drive(application(PHONE), answers)
    assert (reason, severity) in {(n.reason, n.severity) for n in result.notes}


def test_ok_master_per_model_and_directories() -> None:
    master = parse_master(MASTER, "VVX410")
    assert master.app_file_path == "sip59.ld"
    assert master.config_files == ("[PHONE_MAC_ADDRESS]-user.cfg", "common.cfg")
    assert master.folder("LOG_FILE_DIRECTORY") == "logs/"
    other = parse_master(MASTER, "VVX500")
    assert (other.app_file_path, other.config_files) == ("sip.ld", ("initial.cfg",))


@pytest.mark.parametrize(
    ("params", "url"),
    [
        pytest.param(
            {
                "device.set": "1",
                "device.prov.serverName": "https://h:8443/",
                "device.prov.serverName.set": "1",
            },
            "https://h:8443/",
            id="ok/full-url",
        ),
        pytest.param(
            {
                "device.set": "1",
                "device.prov.serverName": "h/p",
                "device.prov.serverName.set": "1",
                "device.prov.serverType": "2",
                "device.prov.serverType.set": "1",
            },
            "http://h/p/",
            id="ok/numeric-type",
        ),
        pytest.param(
            {"device.set": "1", "device.prov.serverName": "h"},
            None,
            id="ok/ignored-without-set-twin",
        ),
        pytest.param(
            {"device.prov.serverName": "h", "device.prov.serverName.set": "1"},
            None,
            id="ok/ignored-without-device-set",
        ),
    ],
)
def test_provisioning_url(params: dict[str, str], url: str | None) -> None:
    assert provisioning_url(params) == url


def test_endpoint_parsing() -> None:
    endpoint = parse_endpoint("ftp://PlcmSpIp:pw@10.0.0.5/polycom/boot.cfg")
    assert (endpoint.scheme, endpoint.port, endpoint.base_path) == ("ftp", 21, "/polycom/")
    assert (endpoint.user, endpoint.password, endpoint.master_name) == (
        "PlcmSpIp",
        "pw",
        "boot.cfg",
    )
    with pytest.raises(InputError, match="scheme 'gopher'"):
        parse_endpoint("gopher://h/")
    with pytest.raises(InputError, match="cannot be read") as caught:
        parse_endpoint("ftp://[x")
    assert "brackets" in caught.value.hint


def test_ok_digest_answer_accepted_by_phoneprov_server_side() -> None:
    authority = digest.DigestAuthority(b"s" * 32, "phoneprov")
    challenge = parse_challenges(["Basic realm=x", authority.challenge(1000.0, b"n" * 12)])
    assert challenge is not None
    for nc in (1, 2):
        header = authorization(challenge, "PlcmSpIp", "PlcmSpIp", "GET", "/a.cfg", nc, "c0ffee")
        creds = digest.parse_authorization(header)
        assert creds is not None
        verdict = authority.verify(
            creds, "GET", "/a.cfg", digest.ha1("PlcmSpIp", "phoneprov", "PlcmSpIp"), 1001.0
        )
        assert verdict is digest.Verdict.OK


def test_trace_lines_read_like_a_phone_log() -> None:
    ok = trace.line(
        "0727210309",
        "copy",
        3,
        trace.transfer(Step("GET", "a.cfg", Purpose.CONFIG), Outcome(200), 1, 10)[1],
    )
    header = parse_header(ok)
    assert header is not None and header.module == "copy"
    assert [o.kind for o in observe(header.message)] == [FindingKind.DOWNLOAD_OK]
    up = trace.tls_up("prov.example.com", True, "0004f2abcdef")
    assert FindingKind.MTLS_ESTABLISHED in [o.kind for o in observe(up)]
    assert parse_header(trace.line(trace.boot_stamp(5.93), "prov", 3, "x")) is not None


def test_user_agent_parses_back() -> None:
    agent = parse_user_agent(Phone(MAC, "VVX410", tag_serial=True).user_agent(Stage.UPDATER))
    assert agent is not None
    assert (agent.model_token, agent.stage, agent.mac) == ("VVX410", Stage.UPDATER, MAC)


def test_storm_helpers() -> None:
    assert percentile([], 0.5) == 0.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.99) == 4.0
    assert [m.value for m in storm_macs(MacAddress("0004f2ffffff"), 2)] == [
        "0004f2ffffff",
        "0004f3000000",
    ]


def test_ok_app_log_appends_at_the_size_head_gave() -> None:
    """HEAD gives the server copy's size; the PUT appends only the new lines there (SPEC §6)."""
    log = "logs/0004f2abcdef-app.log"
    steps, result = drive(
        application(PHONE),
        {"GET 0004f2abcdef.cfg": Outcome(200, MASTER), f"HEAD {log}": Outcome(200, size=1200)},
    )
    puts = [s for s in steps if s.method == "PUT"]
    assert [(s.path, s.append_from, s.upload_log) for s in puts] == [(log, 1200, True)] * 2
    assert {n.reason for n in result.notes} == {"missing-config"}  # the two configs: 404


def test_warn_head_without_content_length_sends_whole_log() -> None:
    log = "logs/0004f2abcdef-app.log"
    steps, result = drive(
        application(PHONE),
        {"GET 0004f2abcdef.cfg": Outcome(200, MASTER), f"HEAD {log}": Outcome(200)},
    )
    assert [s.append_from for s in steps if s.method == "PUT"] == [None, None]
    assert "no-content-length" in {n.reason for n in result.notes}
