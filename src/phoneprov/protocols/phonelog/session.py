"""One TLS connection as the phone's libcurl trace shows it, step by step.

Technical Bulletin 52609 (Troubleshooting) quotes a phone fetching its
``<MAC>.cfg`` from IIS over mutual TLS. The trace shows two handshakes on one
connection: a first, one-way one (Client hello, Server hello, CERT, Server
finished, ... ``SSL certificate verify ok.``: the phone verified the server),
then, after the server's ``Hello request (0)``, a renegotiation in which the
server sends ``Request CERT (13)``, the phone answers with its certificate
(``CERT (11)``) and proves it holds the key with ``CERT verify (15)``: mutual
TLS is established. A server that asks for the certificate in its first
handshake (TLS 1.2 and later, no renegotiation) shows the same ``Request CERT``
and ``CERT verify`` steps without the ``Hello request``.
"""

from __future__ import annotations

from phoneprov.protocols.phonelog.kinds import Detail


class TlsSession:
    """Steps seen since libcurl's ``Connected to <host> (<ip>) port <port>`` line."""

    __slots__ = ("cipher", "host", "lines", "port", "renegotiated", "requested")

    def __init__(self, host: str | None = None, port: int | None = None) -> None:
        self.host = host
        self.port = port
        self.cipher: str | None = None
        self.renegotiated = False
        self.requested = False
        self.lines: list[int] = []

    def facts(self) -> Detail:
        """Host, port and cipher, as far as the trace named them."""
        detail: Detail = {}
        if self.host:
            detail["host"] = self.host
        if self.port:
            detail["port"] = self.port
        if self.cipher:
            detail["cipher"] = self.cipher
        return detail

    def step(self, step: str, line: int) -> Detail | None:
        """Record one handshake step; return the mutual-TLS facts when ``step``
        completes mutual TLS (a ``CERT verify`` after the server's ``Request CERT``)."""
        if step == "hello request":
            self.renegotiated = True
            self.lines.append(line)
        elif step == "request cert":
            self.requested = True
            self.lines.append(line)
        elif step == "cert verify" and self.requested:
            self.lines.append(line)
            self.requested = False
            return {**self.facts(), "renegotiated": self.renegotiated}
        return None
