"""The HTTPS listener's permit gate serves waiting connections oldest first (issue 16).

Under a storm the GIL is handed out in no particular order, so without the gate
late requests were served while early ones timed out; these tests pin the order.
"""

from __future__ import annotations

import threading
import time

from phoneprov.servers.phonehttp.gate import FifoGate


def _wait_for_waiters(gate: FifoGate, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(gate._waiting) < count:
        assert time.monotonic() < deadline, "waiters never queued"
        time.sleep(0.001)


def test_waiters_get_permits_in_arrival_order_not_in_call_order() -> None:
    gate = FifoGate(1)
    gate.acquire(0.0)
    served: list[float] = []
    lock = threading.Lock()

    def worker(since: float) -> None:
        gate.acquire(since)
        with lock:
            served.append(since)
        gate.release()

    threads = []
    for queued, since in enumerate((30.0, 10.0, 20.0), start=1):
        thread = threading.Thread(target=worker, args=(since,))
        thread.start()
        threads.append(thread)
        _wait_for_waiters(gate, queued)
    gate.release()
    for thread in threads:
        thread.join(5)
    assert served == [10.0, 20.0, 30.0]


def test_a_stalled_holder_gives_its_permit_to_the_next_waiter() -> None:
    gate = FifoGate(1)
    gate.acquire(1.0)
    got = threading.Event()

    def other() -> None:
        gate.acquire(2.0)
        got.set()
        gate.release()

    thread = threading.Thread(target=other)
    thread.start()
    _wait_for_waiters(gate, 1)
    with gate.released(1.0):
        assert got.wait(5), "the waiting connection never ran while the holder waited"
    thread.join(5)
    assert not gate._waiting
    assert gate._free == 0  # the holder has its permit back
