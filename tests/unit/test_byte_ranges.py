"""``Range: bytes=`` for files the HTTPS listener sends (servers/phonehttp/message.py).

RFC 9110 §14.1.2: "bytes=0-499" is the first 500 bytes, "bytes=9500-" everything
from byte 9500, "bytes=-500" the last 500; a last position past the end means
the end; a first position at or past the end is unsatisfiable (416). Several
ranges in one header are answered with the whole file (a server MAY ignore
Range, §14.2), as is anything that is not one bytes range.
"""

from __future__ import annotations

import pytest

from phoneprov.servers.phonehttp.message import file_part

SIZE = 10_000


@pytest.mark.parametrize(
    ("header", "part"),
    [
        ("bytes=0-499", (0, 499)),
        ("bytes=500-999", (500, 999)),
        ("bytes=9500-", (9500, 9999)),
        ("bytes=-500", (9500, 9999)),
        ("bytes=9000-20000", (9000, 9999)),
        ("bytes=-20000", (0, 9999)),
    ],
)
def test_ok_one_range_is_the_bytes_asked(header: str, part: tuple[int, int]) -> None:
    assert file_part(header, SIZE) == part


def test_fail_range_starting_past_the_end_is_unsatisfiable() -> None:
    first, last = file_part("bytes=10000-", SIZE) or (0, 0)
    assert first >= SIZE and last < first


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-1", "bytes=-", "bytes=a-b", ""])
def test_ok_other_ranges_get_the_whole_file(header: str) -> None:
    assert file_part(header, SIZE) is None
