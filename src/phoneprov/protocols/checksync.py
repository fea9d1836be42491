"""The PBX command that makes a phone resync: a SIP NOTIFY with ``Event: check-sync``.

phoneprov sends no SIP itself; the PBX the phone registers with does, so the
NOTIFY reaches the phone through its registration (NAT included). Sources:

- Asterisk ``configs/samples/pjsip_notify.conf.sample``: ``[polycom-check-cfg]``
  ``Event=>check-sync``; ``res/res_pjsip_notify.c``: "Usage: pjsip send notify
  <type> {endpoint|uri} <peer> [<peer>...]".
- FreeSWITCH ``mod_sofia.c`` (``sofia profile <name> check_sync [<call_id> |
  <[user]@domain>]``): syncs the registrations matching the user.

The phone resyncs; it reboots only when needed with
``voIpProt.SIP.specialEvent.checkSync.alwaysReboot="0"`` ("0 will only reboot
if the files on the settings server have changed", the sip-notify gem's note
on Polycom), and on every NOTIFY with ``"1"``.
"""

from __future__ import annotations

import enum
import re
import shlex

_SAFE = re.compile(r"[A-Za-z0-9_.+\-]{1,64}")
_DOMAIN = re.compile(r"[A-Za-z0-9.\-]{1,253}|\[[0-9A-Fa-f:.]+\]")


class Pbx(enum.StrEnum):
    ASTERISK = "asterisk"
    FREESWITCH = "freeswitch"


def command(pbx: Pbx, user: str, domain: str = "", profile: str = "internal") -> str | None:
    """The shell command for the PBX host; None when ``user`` or ``domain`` is not plain
    enough to name in a command (it is never pasted into one unchecked)."""
    if not _SAFE.fullmatch(user) or not _SAFE.fullmatch(profile):
        return None
    if pbx is Pbx.ASTERISK:
        inner = f"pjsip send notify polycom-check-cfg endpoint {user}"
        return f"asterisk -rx {shlex.quote(inner)}"
    if not _DOMAIN.fullmatch(domain):
        return None
    return f"fs_cli -x {shlex.quote(f'sofia profile {profile} check_sync {user}@{domain}')}"
