"""The request and response of the phone listeners, whatever server carries them.

A request's body is read with ``body.read(size)`` (``b""`` at its end); a client
that goes away mid-body raises ConnectionError. A response carries bytes or a
file to send; the server writes it (ranges and HEAD included, ``file_part``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, unquote


class Body(Protocol):
    def read(self, size: int) -> bytes: ...


class NoBody:
    def read(self, size: int) -> bytes:
        return b""


@dataclass(slots=True, eq=False)
class PhoneRequest:
    """One request: ``headers`` keys are lower case; ``target`` is the request-target as
    sent (query included); ``peer_cert`` the verified client certificate (DER), if any."""

    method: str
    target: str
    headers: Mapping[str, str]
    ip: str
    body: Body = field(default_factory=NoBody)
    peer_cert: bytes | None = None

    @property
    def raw_path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def path(self) -> str:
        """The path, percent-decoded (what the logs show)."""
        return unquote(self.raw_path)

    @property
    def query(self) -> dict[str, str]:
        _, _, query = self.target.partition("?")
        return dict(parse_qsl(query, keep_blank_values=True))

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None and value.isdigit() else None


@dataclass(slots=True, eq=False)
class PhoneResponse:
    """Bytes (``body``) or a file (``file``, ``size`` bytes); ``headers`` as sent."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    file: Path | None = None
    size: int = 0

    @classmethod
    def text(cls, status: int, text: str, headers: dict[str, str] | None = None) -> PhoneResponse:
        body = text.encode()
        merged = {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}
        return cls(status, merged, body=body, size=len(body))

    @classmethod
    def data(
        cls, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> PhoneResponse:
        return cls(
            200, {"Content-Type": content_type, **(headers or {})}, body=body, size=len(body)
        )

    @classmethod
    def empty(cls, status: int, headers: dict[str, str] | None = None) -> PhoneResponse:
        return cls(status, dict(headers or {}))


RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def file_part(range_header: str, size: int) -> tuple[int, int] | None:
    """The (first, last) byte of one ``Range: bytes=`` range within ``size`` bytes (RFC 9110
    §14.1.2), or None when the header asks for none we serve (then the whole file)."""
    match = RANGE.fullmatch(range_header.strip())
    if match is None or not (match[1] or match[2]):
        return None
    if match[1]:
        first = int(match[1])
        last = min(int(match[2]), size - 1) if match[2] else size - 1
    else:
        first, last = max(0, size - int(match[2])), size - 1
    return (first, last) if first <= last else (size, size - 1)
