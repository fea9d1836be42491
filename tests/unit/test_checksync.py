"""The PBX commands that send a phone ``Event: check-sync`` (protocols/checksync.py).

Asterisk, configs/samples/pjsip_notify.conf.sample::

    ; Polycom
    [polycom-check-cfg]
    Event=>check-sync

and res/res_pjsip_notify.c: "Usage: pjsip send notify <type> {endpoint|uri}
<peer> [<peer>...]". FreeSWITCH, src/mod/endpoints/mod_sofia/mod_sofia.c, the
sofia usage: "sofia profile <name> ... check_sync [<call_id> | <[user]@domain>]".
"""

from __future__ import annotations

import shlex

from phoneprov.protocols.checksync import Pbx, command


def test_ok_asterisk_pjsip_send_notify_to_the_endpoint() -> None:
    found = command(Pbx.ASTERISK, "1001")
    assert found == "asterisk -rx 'pjsip send notify polycom-check-cfg endpoint 1001'"
    assert found is not None and shlex.split(found)[2].split() == [
        "pjsip", "send", "notify", "polycom-check-cfg", "endpoint", "1001",
    ]  # fmt: skip


def test_ok_freeswitch_check_sync_user_at_domain() -> None:
    found = command(Pbx.FREESWITCH, "1001", "pbx.example.com", "internal")
    assert found == "fs_cli -x 'sofia profile internal check_sync 1001@pbx.example.com'"


def test_fail_values_that_would_change_the_command_are_refused() -> None:
    assert command(Pbx.ASTERISK, "1001; reboot") is None
    assert command(Pbx.ASTERISK, "$(id)") is None
    assert command(Pbx.FREESWITCH, "1001", "pbx.example.com'; id; '") is None
    assert command(Pbx.FREESWITCH, "1001", "pbx", "internal external") is None
