"""Path safety, file classification and the policy table (pure, no sockets)."""

from __future__ import annotations

import itertools

import pytest

from phoneprov.errors import UnsafePathError
from phoneprov.model import DeviceStatus, MacAddress, Principal, PrincipalKind, Protocol
from phoneprov.policy import ADMINS, Action, PolicyRules, Reason, decide
from phoneprov.protocols.masterfile import restrict_config_files
from phoneprov.protocols.paths import safe_relative
from phoneprov.protocols.polycom import (
    DEFAULT_FOLDERS,
    Resource,
    ResourceKind,
    Stage,
    UploadKind,
    canonical_name,
    classify,
    parse_user_agent,
)

MAC = MacAddress("0004f2000001")
OTHER = MacAddress("0004f2000002")
RULES = PolicyRules(folders=dict(DEFAULT_FOLDERS))


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("/000000000000.cfg", "000000000000.cfg"),
        ("//logs/./0004f2000001-app.log", "logs/0004f2000001-app.log"),
        ("/", ""),
        ("/a%20b.cfg", "a b.cfg"),
    ],
    ids=["ok/root-file", "ok/dots-and-slashes", "ok/root", "ok/space"],
)
def test_ok_safe_paths(raw: str, expected: str) -> None:
    assert safe_relative(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "/../etc/passwd",
        "/logs/../../x",
        "/%2e%2e/x",
        "/%2E%2e/x",
        "/a%2fb",
        "/a%5cb",
        "/a\\b",
        "/a%00b",
        "/a%252e%252e/x",
        "/C:/windows",
        "/" + "a" * 600,
    ],
    ids=[
        "fail/dotdot",
        "fail/nested-dotdot",
        "fail/encoded-dots",
        "fail/mixed-case-dots",
        "fail/encoded-slash",
        "fail/encoded-backslash",
        "fail/backslash",
        "fail/nul",
        "fail/double-encoding",
        "fail/drive-letter",
        "fail/too-long",
    ],
)
def test_fail_unsafe_paths(raw: str) -> None:
    with pytest.raises(UnsafePathError):
        safe_relative(raw)


def test_fail_control_characters_in_decoded_names() -> None:
    with pytest.raises(UnsafePathError):
        safe_relative("sip\x01.ld", already_decoded=True)


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        pytest.param("/%c0%ae%c0%ae/etc/passwd", False, id="fail/overlong-dot-escapes"),
        pytest.param("/%ff.cfg", False, id="fail/ff-escape"),
        pytest.param("/%e2%82.cfg", False, id="fail/truncated-sequence"),
        pytest.param("/\ufffd\ufffd/x.cfg", True, id="fail/replacement-character"),
        pytest.param("/\udcc0\udcae.cfg", True, id="fail/surrogate-escaped-bytes"),
    ],
)
def test_fail_not_utf8(raw: str, decoded: bool) -> None:
    """Not UTF-8 is an unsafe path (400 over HTTP), never a UnicodeDecodeError (500)."""
    with pytest.raises(UnsafePathError, match="not valid UTF-8"):
        safe_relative(raw, already_decoded=decoded)


def test_ok_utf8_escapes_decode() -> None:
    assert safe_relative("/contacts/%c3%a9t%c3%a9.xml") == "contacts/été.xml"


@pytest.mark.parametrize(
    "path,kind,owner,upload",
    [
        ("000000000000.cfg", ResourceKind.MASTER, None, None),
        ("initial.cfg", ResourceKind.BOOTSTRAP, None, None),
        ("sip.ld", ResourceKind.FIRMWARE, None, None),
        ("3111-46162-001.sip.ld", ResourceKind.FIRMWARE, None, None),
        ("sip.ver", ResourceKind.FIRMWARE, None, None),
        ("0004f2000001.cfg", ResourceKind.DEVICE_FILE, MAC, None),
        ("0004f2000001-phone-secrets.cfg", ResourceKind.DEVICE_FILE, MAC, None),
        ("logs/0004f2000001-app.log", ResourceKind.UPLOAD, MAC, UploadKind.APP_LOG),
        ("0004f2000001-boot.log", ResourceKind.UPLOAD, MAC, UploadKind.BOOT_LOG),
        ("overrides/0004f2000001-phone.cfg", ResourceKind.UPLOAD, MAC, UploadKind.PHONE_OVERRIDE),
        ("contacts/0004f2000001-directory.xml", ResourceKind.UPLOAD, MAC, UploadKind.DIRECTORY),
        ("certificates/0004f2000001.csr", ResourceKind.UPLOAD, MAC, UploadKind.CSR),
        ("certificates/0004f2000001-private.pem", ResourceKind.UPLOAD, MAC, UploadKind.KEY),
        ("core/0004f2000001-core.gz", ResourceKind.UPLOAD, MAC, UploadKind.CORE),
        ("site.cfg", ResourceKind.SHARED, None, None),
        ("000000000000-directory.xml", ResourceKind.SITE_WIDE, None, None),
        ("certsrv/certnew.p7b", ResourceKind.CA_DOWNLOAD, None, None),
    ],
)
def test_ok_classify(
    path: str, kind: ResourceKind, owner: MacAddress | None, upload: UploadKind | None
) -> None:
    resource = classify(path)
    assert (resource.kind, resource.owner, resource.upload_kind) == (kind, owner, upload)


def test_ok_canonical_name_lowercases_mac_only() -> None:
    assert canonical_name("0004F2ABCDEF-Phone.cfg") == "0004f2abcdef-Phone.cfg"
    assert canonical_name("SIP.LD") == "SIP.LD"


def device(
    mac: MacAddress = MAC,
    status: DeviceStatus = DeviceStatus.KNOWN,
    protocol: Protocol = Protocol.HTTPS,
) -> Principal:
    return Principal(PrincipalKind.DEVICE_CERT, protocol, mac.value, mac=mac, status=status)


BOOTSTRAP = Principal(PrincipalKind.BOOTSTRAP, Protocol.HTTP, "PlcmSpIp")
TFTP = Principal(PrincipalKind.BOOTSTRAP, Protocol.TFTP, "tftp")

READS = [
    ("ok/bootstrap-master", BOOTSTRAP, "000000000000.cfg", Reason.OK),
    ("ok/bootstrap-firmware", BOOTSTRAP, "sip.ld", Reason.OK),
    ("fail/bootstrap-shared", BOOTSTRAP, "site.cfg", Reason.SECRET_OVER_BOOTSTRAP),
    ("fail/bootstrap-device-file", BOOTSTRAP, "0004f2000001.cfg", Reason.SECRET_OVER_BOOTSTRAP),
    ("fail/tftp-device-file", TFTP, "0004f2000001-phone-secrets.cfg", Reason.SECRET_OVER_TFTP),
    ("ok/bootstrap-contacts", BOOTSTRAP, "contacts/0004f2000001-directory.xml", Reason.OK),
    ("fail/tftp-contacts", TFTP, "contacts/0004f2000001-directory.xml", Reason.SECRET_OVER_TFTP),
    (
        "fail/bootstrap-override",
        BOOTSTRAP,
        "overrides/0004f2000001-phone.cfg",
        Reason.SECRET_OVER_BOOTSTRAP,
    ),
    ("ok/device-own", device(), "0004f2000001-phone-secrets.cfg", Reason.OK),
    ("fail/device-other", device(), "0004f2000002-phone-secrets.cfg", Reason.NOT_YOURS),
    ("fail/device-other-upload", device(), "overrides/0004f2000002-phone.cfg", Reason.NOT_YOURS),
    ("ok/device-shared", device(), "site.cfg", Reason.OK),
    ("fail/pending-shared", device(status=DeviceStatus.PENDING), "site.cfg", Reason.QUARANTINED),
    ("ok/pending-master", device(status=DeviceStatus.PENDING), "000000000000.cfg", Reason.OK),
    (
        "fail/denied-master",
        device(status=DeviceStatus.DENIED),
        "000000000000.cfg",
        Reason.ENROLMENT_DENIED,
    ),
    ("fail/blocked", device(status=DeviceStatus.BLOCKED), "sip.ld", Reason.DEVICE_BLOCKED),
]


@pytest.mark.parametrize("case,principal,path,reason", READS, ids=[r[0] for r in READS])
def test_read_table(case: str, principal: Principal, path: str, reason: Reason) -> None:
    decision = decide(principal, Action.READ, classify(path), RULES)
    assert decision.reason is reason
    assert decision.allowed is (reason is Reason.OK)


WRITES = [
    ("ok/own-log", device(), "logs/0004f2000001-app.log", Reason.OK),
    ("ok/own-log-at-root", device(), "0004f2000001-app.log", Reason.OK),
    ("fail/other-log", device(), "logs/0004f2000002-app.log", Reason.NOT_YOURS),
    ("fail/wrong-folder", device(), "calls/0004f2000001-app.log", Reason.WRONG_FOLDER),
    ("fail/not-upload", device(), "0004f2000001.cfg", Reason.NOT_AN_UPLOAD),
    ("fail/master", BOOTSTRAP, "000000000000.cfg", Reason.NOT_AN_UPLOAD),
    ("ok/bootstrap-log", BOOTSTRAP, "logs/0004f2000009-boot.log", Reason.OK),
    (
        "fail/bootstrap-override",
        BOOTSTRAP,
        "overrides/0004f2000009-phone.cfg",
        Reason.UPLOAD_KIND_NOT_ALLOWED,
    ),
    (
        "fail/bootstrap-csr",
        BOOTSTRAP,
        "certificates/0004f2000009.csr",
        Reason.UPLOAD_KIND_NOT_ALLOWED,
    ),
    (
        "ok/pending-log",
        device(status=DeviceStatus.PENDING),
        "logs/0004f2000001-boot.log",
        Reason.OK,
    ),
    (
        "fail/pending-override",
        device(status=DeviceStatus.PENDING),
        "overrides/0004f2000001-phone.cfg",
        Reason.QUARANTINED,
    ),
    ("fail/tftp-write", TFTP, "logs/0004f2000001-boot.log", Reason.READ_ONLY),
]


@pytest.mark.parametrize("case,principal,path,reason", WRITES, ids=[w[0] for w in WRITES])
def test_write_table(case: str, principal: Principal, path: str, reason: Reason) -> None:
    assert decide(principal, Action.WRITE, classify(path), RULES).reason is reason


def test_ok_tftp_log_upload_when_enabled() -> None:
    rules = PolicyRules(folders=dict(DEFAULT_FOLDERS), tftp_writes=True)
    assert decide(TFTP, Action.WRITE, classify("logs/0004f2000001-boot.log"), rules).allowed
    assert not decide(
        TFTP, Action.WRITE, classify("contacts/0004f2000001-directory.xml"), rules
    ).allowed


def test_ok_delete_own_upload_only() -> None:
    assert decide(device(), Action.DELETE, classify("logs/0004f2000001-app.log"), RULES).allowed
    other = decide(device(), Action.DELETE, classify("logs/0004f2000002-app.log"), RULES)
    assert other.reason is Reason.NOT_YOURS


@pytest.mark.parametrize(
    "ua,model,version,stage,mac",
    [
        (
            "FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 Type/Application",
            "VVX410",
            "5.9.5.0614",
            Stage.APPLICATION,
            None,
        ),
        (
            "FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Updater",
            "VVX500",
            "5.9.7.47435",
            Stage.UPDATER,
            None,
        ),
        (
            "FileTransport PolycomSoundPointIP-SPIP_550-UA/4.0.15.1047 (SN:0004a11a1a1a)"
            " Type/Application",
            "SPIP550",
            "4.0.15.1047",
            Stage.APPLICATION,
            MacAddress("0004a11a1a1a"),
        ),
        (
            "FileTransport PolycomSoundStationIP-SSIP_6000-UA/3.2.0.0157",
            "SSIP6000",
            "3.2.0.0157",
            Stage.APPLICATION,
            None,
        ),
        (
            "FileTransport PolycomRealPresenceTrio-Trio_8800-UA/7.2.2.1094 (SN:12345)"
            " Type/Application",
            "Trio8800",
            "7.2.2.1094",
            Stage.APPLICATION,
            None,
        ),
    ],
    ids=["ok/vvx-app", "ok/vvx-updater", "ok/spip-sn", "ok/sip3-no-type", "ok/trio-bad-sn"],
)
def test_ok_user_agents(
    ua: str, model: str, version: str, stage: Stage, mac: MacAddress | None
) -> None:
    agent = parse_user_agent(ua)
    assert agent is not None
    assert (agent.model_token, agent.version, agent.stage, agent.mac) == (
        model,
        version,
        stage,
        mac,
    )


@pytest.mark.parametrize(
    "ua",
    [None, "", "curl/7.88.1", "Mozilla/5.0 Polycom"],
    ids=["fail/none", "fail/empty", "fail/curl", "fail/browser"],
)
def test_fail_not_a_phone(ua: str | None) -> None:
    assert parse_user_agent(ua) is None


@pytest.mark.parametrize(
    "text",
    ["00:04:F2:AB:CD:EF", "0004f2abcdef", "0004.f2ab.cdef", "00-04-f2-ab-cd-ef", " 0004F2ABCDEF "],
)
def test_ok_mac_forms(text: str) -> None:
    assert MacAddress.parse(text).value == "0004f2abcdef"


@pytest.mark.parametrize(
    "text", ["0004f2abcde", "00:04:f2:ab:cd", "zz04f2abcdef", "00:04-f2:ab:cd:ef"]
)
def test_fail_mac_forms(text: str) -> None:
    from phoneprov.errors import InputError

    with pytest.raises(InputError) as error:
        MacAddress.parse(text)
    assert "0004f2abcdef" in error.value.hint


def test_ok_master_reduced_to_public_files() -> None:
    master = (
        b'<?xml version="1.0"?><APPLICATION APP_FILE_PATH="sip.ld" '
        b'CONFIG_FILES="initial.cfg, [PHONE_MAC_ADDRESS]-phone-secrets.cfg, site.cfg">'
        b'<APPLICATION_VVX410 CONFIG_FILES_VVX410="site.cfg, initial.cfg"/></APPLICATION>'
    )
    out = restrict_config_files(master, lambda name: name == "initial.cfg")
    assert b'CONFIG_FILES="initial.cfg"' in out
    assert b'CONFIG_FILES_VVX410="initial.cfg"' in out
    assert b'APP_FILE_PATH="sip.ld"' in out


def test_fail_private_key_only_over_own_mtls() -> None:
    key = classify("certificates/0004f2000001-private.pem")
    account = Principal(
        PrincipalKind.DEVICE_ACCOUNT, Protocol.HTTP, MAC.value, mac=MAC, status=DeviceStatus.KNOWN
    )
    assert decide(device(), Action.READ, key, RULES).allowed
    assert decide(account, Action.READ, key, RULES).reason is Reason.KEY_OUTSIDE_MTLS
    assert decide(BOOTSTRAP, Action.READ, key, RULES).reason is Reason.SECRET_OVER_BOOTSTRAP


# The Lync/SfB update service asks the same table (SPEC §9). Before, servers/lync.py
# decided on its own: denied and blocked devices were refused with "device-{status}",
# pending ones got no update. The table keeps who gets an offer and spells the
# reasons as every other listener does.
UCDEVICE = Resource("RequestHandler/ucdevice.upx", ResourceKind.LYNC_UPDATE, MAC)
LYNC_REFUSALS: dict[DeviceStatus | None, Reason] = {
    DeviceStatus.DENIED: Reason.ENROLMENT_DENIED,
    DeviceStatus.BLOCKED: Reason.DEVICE_BLOCKED,
    DeviceStatus.PENDING: Reason.QUARANTINED,
}


@pytest.mark.parametrize(
    "status",
    [None, *DeviceStatus],
    ids=lambda status: f"{'fail' if status in LYNC_REFUSALS else 'ok'}/lync-{status}",
)
def test_lync_update_offer_follows_device_status(status: DeviceStatus | None) -> None:
    # Phones only: administrators are refused every phone action ("not-a-phone").
    for kind, protocol in itertools.product(set(PrincipalKind) - ADMINS, Protocol):
        principal = Principal(kind, protocol, "ucdevice", mac=MAC, status=status)
        decision = decide(principal, Action.CHECK_UPDATE, UCDEVICE, RULES)
        assert decision.reason is LYNC_REFUSALS.get(status, Reason.OK)
        assert decision.allowed is (status not in LYNC_REFUSALS)


def test_fail_update_check_is_no_file_action() -> None:
    assert decide(device(), Action.READ, UCDEVICE, RULES).reason is Reason.NO_RULE
    master = classify("000000000000.cfg")
    assert decide(device(), Action.CHECK_UPDATE, master, RULES).reason is Reason.NO_RULE
