"""Security lines about refused and expired connections: at most one per address a minute."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from phoneprov.policy import Reason
from phoneprov.provisioning.audit import SECURITY_LOGGER, Audit
from phoneprov.servers.connections import LOG_EVERY, ConnectionReports


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def lines() -> Iterator[list[str]]:
    handler = Lines()
    logger = logging.getLogger(SECURITY_LOGGER)
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)


def test_fail_flood_from_one_address_writes_one_line_a_minute(lines: list[str]) -> None:
    clock = Clock()
    reports = ConnectionReports(Audit(), clock)
    for _ in range(500):
        reports.note("192.0.2.7", "http", Reason.TOO_MANY_CONNECTIONS, "open:2000,limit:2000")
    for _ in range(20):
        reports.note("192.0.2.7", "https", Reason.SLOW_CLIENT, "no-request-headers-after:30s")
    assert len(lines) == 1 and "reason=too-many-connections" in lines[0]
    clock.now += LOG_EVERY
    reports.note("192.0.2.7", "http", Reason.SLOW_CLIENT, "no-request-headers-after:30s")
    assert len(lines) == 2
    assert "reason=slow-client" in lines[1]
    # What the quiet minute held is counted on the next line.
    assert "not-logged-since-last-line:slow-client:20/too-many-connections:499" in lines[1]


def test_ok_other_addresses_get_their_own_line(lines: list[str]) -> None:
    reports = ConnectionReports(Audit(), Clock())
    for address in ("192.0.2.7", "192.0.2.8", "2001:db8::1"):
        reports.note(address, "http", Reason.SERVER_FULL, "open:10000,limit:10000")
        reports.note(address, "http", Reason.SERVER_FULL, "open:10000,limit:10000")
    assert [line.split(" ip=")[1].split()[0] for line in lines] == [
        "192.0.2.7",
        "192.0.2.8",
        "2001:db8::1",
    ]
