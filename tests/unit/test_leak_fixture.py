"""The ``no_leaks`` fixture of tests/conftest.py fails leaky tests and passes clean ones.

The cases run in a pytest of their own (a subprocess), so the leaks they make on
purpose stay out of this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CASES = """
import socket
import threading
import time

import pytest

kept = []


def test_fail_socket_left_open():
    kept.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))


def test_fail_file_left_open(tmp_path):
    kept.append(open(tmp_path / "x", "w"))


def test_fail_thread_left_running():
    never = threading.Event()
    kept.append(never)
    threading.Thread(target=never.wait, name="leaky-thread", daemon=True).start()


@pytest.fixture
def unclosed_server():
    server = socket.create_server(("127.0.0.1", 0))
    kept.append(server)
    yield server  # no close: the fixture leaks


def test_fail_function_fixture_leaks(unclosed_server):
    pass


def test_ok_socket_closed():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))


def test_ok_thread_stopping_within_grace():
    threading.Thread(target=time.sleep, args=(0.2,), name="stopping").start()


def test_ok_unreferenced_cycle_collected():
    class Holder:
        pass

    holder = Holder()
    holder.me = holder
    holder.sock = socket.socket()


@pytest.fixture(scope="module")
def module_socket():
    with socket.socket() as sock:
        yield sock


def test_ok_module_fixture_resources_first(module_socket):
    pass


def test_ok_module_fixture_resources_again(module_socket):
    pass
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each case's outcome: "passed", or "error" when its teardown (the leak check) failed."""
    base = tmp_path_factory.mktemp("leak-cases")
    (base / "conftest.py").write_text(
        "import tests.conftest\n"
        "from tests.conftest import no_leaks  # noqa: F401\n"
        "tests.conftest.LEAK_GRACE = 1.0  # the leaky cases wait this long each\n"
    )
    (base / "test_cases.py").write_text(textwrap.dedent(CASES))
    report = base / "report.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"],
        cwd=base,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("name", "")
        error = case.find("error")
        if error is not None:
            found[name] = "error: " + (error.get("message", "") + (error.text or ""))
        elif case.find("failure") is not None:
            found[name] = "failure"
        else:
            found.setdefault(name, "passed")
    return found


@pytest.mark.parametrize(
    ("case", "named"),
    [
        pytest.param("test_fail_socket_left_open", "socket:[", id="fail/socket"),
        pytest.param("test_fail_file_left_open", "/x", id="fail/file"),
        pytest.param("test_fail_thread_left_running", "'leaky-thread'", id="fail/thread"),
        pytest.param("test_fail_function_fixture_leaks", "tcp port", id="fail/fixture-socket"),
    ],
)
def test_leak_fails_the_test_and_names_the_resource(
    outcomes: dict[str, str], case: str, named: str
) -> None:
    outcome = outcomes[case]
    assert outcome.startswith("error: "), outcome
    assert "the test left open" in outcome and named in outcome, outcome


@pytest.mark.parametrize(
    "case",
    [
        pytest.param("test_ok_socket_closed", id="ok/socket-closed"),
        pytest.param("test_ok_thread_stopping_within_grace", id="ok/thread-stopping"),
        pytest.param("test_ok_unreferenced_cycle_collected", id="ok/garbage-collected"),
        pytest.param("test_ok_module_fixture_resources_first", id="ok/module-fixture"),
        pytest.param("test_ok_module_fixture_resources_again", id="ok/module-fixture-reused"),
    ],
)
def test_clean_test_passes(outcomes: dict[str, str], case: str) -> None:
    assert outcomes[case] == "passed"
