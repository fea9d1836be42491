"""The ``Content-Range`` of a phone's log append (RFC 9110 §14.4), and the 416 answer.

Phones append their logs over HTTP(S): ``HEAD`` for the size of the server's
copy, then ``PUT`` with ``Content-Range: bytes FIRST-LAST/*`` and only the new
tail as the body (SPEC §6, docs/decisions/0012). Pure: header text in, values out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# "bytes 1200-1299/*" or "bytes 1200-1299/1300"; whitespace as RFC 9110 allows around it.
_RANGE_RE = re.compile(r"^\s*bytes\s+(\d{1,18})-(\d{1,18})/(\*|\d{1,18})\s*$", re.IGNORECASE)


class BadContentRange(ValueError):
    """The header is not ``bytes FIRST-LAST/LENGTH`` with FIRST <= LAST (answer 400)."""


@dataclass(frozen=True, slots=True)
class ContentRange:
    first: int
    last: int
    complete: int | None  # the length the whole file will have; None for "*"

    @property
    def length(self) -> int:
        """The bytes the body must carry."""
        return self.last - self.first + 1


def parse_content_range(header: str) -> ContentRange:
    """Parse a PUT's ``Content-Range``; raises BadContentRange naming what is wrong."""
    match = _RANGE_RE.match(header)
    if match is None:
        raise BadContentRange(
            f"Content-Range {header[:80]!r} is not 'bytes FIRST-LAST/*' (RFC 9110 §14.4)"
        )
    first, last = int(match.group(1)), int(match.group(2))
    complete = None if match.group(3) == "*" else int(match.group(3))
    if last < first:
        raise BadContentRange(f"Content-Range {header[:80]!r} ends before it starts")
    if complete is not None and complete <= last:
        raise BadContentRange(f"Content-Range {header[:80]!r} ends past its complete length")
    return ContentRange(first, last, complete)


def unsatisfied(size: int) -> str:
    """The ``Content-Range`` of a 416 answer: the size the server's copy has now."""
    return f"bytes */{size}"
