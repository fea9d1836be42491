"""The lines a simulated phone reports it would register (sim/registrations)."""

from __future__ import annotations

from phoneprov.sim.registrations import Registration, registrations


def test_ok_lines_with_their_servers_users_and_labels() -> None:
    params = {
        "reg.2.address": "1002",
        "reg.2.server.1.address": "pbx.example.com",
        "reg.2.server.1.port": "5061",
        "reg.2.server.2.address": "backup.example.com",
        "reg.1.address": "1001",
        "reg.1.auth.userId": "alice",
        "reg.1.auth.password": "secret",
        "reg.1.label": "Front desk",
        "reg.3.address": "",  # no address: the line does not register
        "voIpProt.server.1.address": "proxy.example.com",
    }
    assert registrations(params) == (
        Registration(1, "1001", "alice", "Front desk", ("proxy.example.com",), True),
        Registration(2, "1002", "1002", "", ("pbx.example.com:5061", "backup.example.com"), False),
    )
