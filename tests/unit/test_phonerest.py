"""The phone's REST API as Poly documents it (protocols/phonerest.py).

Poly, "REST API Reference Manual", UC Software 6.4.0 (3725-46212-006A),
"Management.Restart"; the request and the codes as Poly's support article
walks an administrator through them (Postman, quoted from
https://eventzero.atlassian.net/wiki/pages/diffpagesbyversion.action?pageId=636616705):

    Enter the following URL: https://<phone IP address>/api/v1/mgmt/safeRestart
    Choose the "Basic Auth" as the Type and enter the following credentials:
    Username: Polycom (make sure the first letter is capitalized)
    Password: <Your phone admin pin>
    Success: 2000 API executed successfully.
    Failed: 4000 Invalid input parameters. 4001 Device busy. 4002 Line not registered.
    4003 Operation not allowed. 4004 Operation Not Supported 4005 Line does not exist.
    4006 URLs not configured. 4007 Call Does Not Exist 4008 Configuration Export Failed
    4009 Input Size Limit Exceeded 4010 Default Password Not Allowed
    5000 Failed to process request.

and a REST client of UC Software (rdbahm/Posh-UCS, UCS/UcsRest.psm1,
Restart-UcsRestPhone): "Invokes the safeRestart API endpoint to restart the
phone. The phone will not restart in the middle of a call, but will restart as
soon as possible thereafter." ``updateConfiguration`` is inferred from REST
clients (no section of the manual we could read names it).
"""

from __future__ import annotations

import base64
import json

import pytest

from phoneprov.errors import InputError
from phoneprov.protocols import phonerest
from phoneprov.protocols.phonerest import Action

QUOTED_CODES = {
    "2000": "API executed successfully",
    "4000": "Invalid input parameters",
    "4001": "Device busy",
    "4002": "Line not registered",
    "4003": "Operation not allowed",
    "4004": "Operation Not Supported",
    "4005": "Line does not exist",
    "4006": "URLs not configured",
    "4007": "Call Does Not Exist",
    "4008": "Configuration Export Failed",
    "4009": "Input Size Limit Exceeded",
    "4010": "Default Password Not Allowed",
    "5000": "Failed to process request",
}


def test_ok_every_documented_code_is_known_with_its_meaning() -> None:
    assert set(phonerest.STATUS_TEXT) == set(QUOTED_CODES)
    for code, text in QUOTED_CODES.items():
        assert phonerest.STATUS_TEXT[code].lower() == text.lower()


def test_ok_basic_auth_as_polycom_with_the_admin_password() -> None:
    header = phonerest.basic_authorization("456")
    scheme, _, token = header.partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(token).decode() == "Polycom:456"  # capital P, as the manual says
    assert phonerest.check_authorization(header, "456")
    lower = "Basic " + base64.b64encode(b"polycom:456").decode()
    assert not phonerest.check_authorization(lower, "456")
    assert not phonerest.check_authorization(header, "789")
    assert not phonerest.check_authorization(None, "456")


def test_ok_management_paths() -> None:
    assert Action.RESTART.path == "/api/v1/mgmt/safeRestart"
    assert Action.RESYNC.path == "/api/v1/mgmt/updateConfiguration"  # inferred, see above
    assert phonerest.ACTION_FOR_PATH["/api/v1/mgmt/safeRestart"] is Action.RESTART
    assert phonerest.DEVICE_INFO == "/api/v1/mgmt/device/info"


@pytest.mark.parametrize(
    ("body", "ok", "busy", "described"),
    [
        (b'{"Status": "2000"}', True, False, "Status 2000 (API executed successfully)"),
        (b'{"Status": "4001"}', False, True, "Status 4001 (device busy)"),
        (b'{"Status": 4010}', False, False, "Status 4010 (default password not allowed)"),
        (b'{"Status": "4999"}', False, False, "Status 4999 (a code Poly does not list)"),
    ],
)
def test_ok_replies(body: bytes, ok: bool, busy: bool, described: str) -> None:
    reply = phonerest.parse_reply(body)
    assert (reply.ok, reply.busy, reply.describe()) == (ok, busy, described)


def test_ok_reply_data_round_trips() -> None:
    data = {"MACAddress": "0004f2abcdef", "Firmware": {"Application": "6.4.0.1000"}}
    reply = phonerest.parse_reply(phonerest.reply_body(phonerest.SUCCESS, data))
    assert reply.ok and reply.data == data
    assert json.loads(phonerest.reply_body("4001")) == {"Status": "4001"}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html>login</html>", "not JSON"),
        (b'{"data": {}}', "no Status"),
        (b"[1, 2]", "no Status"),
        (b'{"Status": null}', "no Status"),
        (b'{"Status": "2000", "pad": "' + b"x" * phonerest.MAX_REPLY + b'"}', "at most"),
    ],
)
def test_fail_replies_that_are_not_the_phone_s(body: bytes, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        phonerest.parse_reply(body)
