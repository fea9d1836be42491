"""The phone's REST API (Poly UC Software 5.9 and later): requests, replies, Status codes.

Pure: builds request heads and bodies, parses the JSON replies. The phone's web
server answers over HTTPS with Basic authentication as the user ``Polycom`` and
the phone's administrator password, and every reply is a JSON object with a
``Status`` code (Poly, "REST API Reference Manual", UC Software 6.4.0,
3725-46212-006A, "Management.Restart"; the code list as Poly support gives it):

    2000 API executed successfully.
    4000 Invalid input parameters.      4001 Device busy.
    4002 Line not registered.           4003 Operation not allowed.
    4004 Operation Not Supported        4005 Line does not exist.
    4006 URLs not configured.           4007 Call Does Not Exist
    4008 Configuration Export Failed    4009 Input Size Limit Exceeded
    4010 Default Password Not Allowed   5000 Failed to process request.

``POST /api/v1/mgmt/safeRestart`` restarts the phone once no call is up
(Management.Restart). ``POST /api/v1/mgmt/updateConfiguration`` makes it fetch
its configuration files; that path is what REST clients of UC Software 6.1 call
("Update Configuration"), not a section we could read in Poly's manual, so it
is marked inferred. ``GET /api/v1/mgmt/device/info`` answers the phone's
``MACAddress`` and ``Firmware`` (as the same clients show it).
"""

from __future__ import annotations

import base64
import enum
import json
from dataclasses import dataclass
from typing import Any

from phoneprov.errors import InputError

USER = "Polycom"  # the REST API's only user (Basic auth), with the phone's admin password
DEFAULT_PORT = 443  # the phone's web server; httpd.cfg.secureTunnelPort changes it
DEVICE_INFO = "/api/v1/mgmt/device/info"

SUCCESS = "2000"
BUSY = "4001"
DEFAULT_PASSWORD = "4010"
STATUS_TEXT: dict[str, str] = {
    SUCCESS: "API executed successfully",
    "4000": "invalid input parameters",
    BUSY: "device busy",
    "4002": "line not registered",
    "4003": "operation not allowed",
    "4004": "operation not supported",
    "4005": "line does not exist",
    "4006": "URLs not configured",
    "4007": "call does not exist",
    "4008": "configuration export failed",
    "4009": "input size limit exceeded",
    DEFAULT_PASSWORD: "default password not allowed",
    "5000": "failed to process request",
}
MAX_REPLY = 64 * 1024  # a management reply is a few hundred bytes
REQUEST_BODY = b"{}"  # the management calls take no parameters


class Action(enum.StrEnum):
    """What phoneprov asks a phone to do."""

    RESYNC = "resync"
    RESTART = "restart"

    @property
    def path(self) -> str:
        return _PATHS[self]


_PATHS = {
    Action.RESYNC: "/api/v1/mgmt/updateConfiguration",
    Action.RESTART: "/api/v1/mgmt/safeRestart",
}
ACTION_FOR_PATH = {path: action for action, path in _PATHS.items()}


@dataclass(frozen=True, slots=True)
class Reply:
    """A parsed reply: the ``Status`` code and the ``data`` member (may be empty)."""

    status: str
    data: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == SUCCESS

    @property
    def busy(self) -> bool:
        return self.status == BUSY

    def describe(self) -> str:
        """``Status 4001 (device busy)``; unknown codes are named as such."""
        return f"Status {self.status} ({STATUS_TEXT.get(self.status, 'a code Poly does not list')})"


def basic_authorization(password: str) -> str:
    """The ``Authorization`` header value for the phone's admin password."""
    token = base64.b64encode(f"{USER}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def check_authorization(header: str | None, password: str) -> bool:
    """True when ``header`` is Basic auth as ``Polycom`` with ``password``."""
    return header is not None and header == basic_authorization(password)


def reply_body(status: str, data: dict[str, Any] | None = None) -> bytes:
    """A reply as the phone sends it: ``{"Status": "2000"}`` plus ``data`` when given."""
    payload: dict[str, Any] = {"Status": status}
    if data is not None:
        payload["data"] = data
    return json.dumps(payload).encode()


def parse_reply(body: bytes) -> Reply:
    """Parse a phone's JSON reply; InputError naming what is wrong when it is not one."""
    if len(body) > MAX_REPLY:
        raise InputError(
            f"the phone's reply is {len(body)} bytes; a management reply is at most {MAX_REPLY}",
            "Check that the address belongs to a Poly phone's web server.",
        )
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InputError(
            "the phone's reply is not JSON",
            "Check that the address belongs to a Poly phone with apps.restapi.enabled=1.",
        ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("Status"), str | int):
        raise InputError(
            "the phone's reply has no Status code",
            "Check that the address belongs to a Poly phone with apps.restapi.enabled=1.",
        )
    data = payload.get("data")
    return Reply(str(payload["Status"]), data if isinstance(data, dict) else {})
