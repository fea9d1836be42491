"""systemd's readiness protocol: one datagram to ``$NOTIFY_SOCKET`` (sd_notify(3)).

A ``Type=notify`` unit is "started" only once the service sends ``READY=1``, so
units ordered after phoneprov, and ``systemctl start`` itself, wait until every
listener is bound. libsystemd is not needed for this: the protocol is a plain
AF_UNIX datagram of ``KEY=value`` lines.
"""

from __future__ import annotations

import socket


def notify(socket_path: str, state: str) -> None:
    """Send ``state`` (``KEY=value`` lines, e.g. ``READY=1``) to systemd.

    ``socket_path`` is ``$NOTIFY_SOCKET`` as systemd set it; one starting with
    ``@`` names an abstract socket. Raises OSError when the socket cannot be reached.
    """
    address = "\0" + socket_path[1:] if socket_path.startswith("@") else socket_path
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(state.encode())
