"""Pure parts of the FTP adapter: virtual paths and the identity written in logs."""

from __future__ import annotations

import pytest

from phoneprov.provisioning.audit import escape
from phoneprov.servers.ftp.auth import identity_of
from phoneprov.servers.ftp.filesystem import PolicyFS, normalized


@pytest.mark.parametrize(
    ("cwd", "given", "expected"),
    [
        pytest.param("/", "000000000000.cfg", "/000000000000.cfg", id="ok/relative-at-root"),
        pytest.param(
            "/logs",
            "0004f2000001-boot.log",
            "/logs/0004f2000001-boot.log",
            id="ok/relative-in-folder",
        ),
        pytest.param("/logs", "/initial.cfg", "/initial.cfg", id="ok/absolute"),
        pytest.param("/logs", "../site.cfg", "/logs/../site.cfg", id="fail/dotdot-kept-for-gate"),
        pytest.param("/", "../../etc/passwd", "/../../etc/passwd", id="fail/traversal-kept"),
    ],
)
def test_file_paths_keep_dotdot_for_the_gate(cwd: str, given: str, expected: str) -> None:
    fs = PolicyFS("/", object())
    fs.cwd = cwd
    assert fs.ftp2fs(given) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param("/logs/..", "/", id="ok/cdup"),
        pytest.param("/../..", "/", id="ok/never-above-root"),
        pytest.param("logs/./", "/logs", id="ok/dot"),
        pytest.param("//logs", "/logs", id="ok/double-slash"),
    ],
)
def test_folder_paths_are_resolved_for_navigation(given: str, expected: str) -> None:
    assert normalized(given) == expected


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        pytest.param("PlcmSpIp", "user:PlcmSpIp", id="ok/plain"),
        pytest.param(
            "evil user=x reason=ok",
            '"user:evil\\x20user\\x3dx\\x20reason\\x3dok"',
            id="ok/no-key-injection",
        ),
        pytest.param('a\rb"c', '"user:a\\x0db\\x22c"', id="ok/no-control-or-quote"),
        pytest.param("x" * 200, "user:" + "x" * 64, id="ok/bounded"),
    ],
)
def test_login_names_are_safe_in_log_lines(user: str, expected: str) -> None:
    # As the security log writes it: the audit escapes what identity_of keeps.
    assert escape(identity_of(user)) == expected
