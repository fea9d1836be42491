"""Log appends as phones make them, with curl as the phone (the firmware uses libcurl).

SPEC §6 and docs/decisions/0012: the phone sends ``HEAD`` for the size of the
server's copy of its log, then ``PUT`` with ``Content-Range: bytes FIRST-LAST/*``
and only the new tail. The phone's settings for it, as public configurations
set them (a Trio logging preset: ``log.render.file.upload.append="1"``,
``log.render.file.upload.append.sizeLimit="40000"``,
``log.render.file.upload.append.limitMode="delete"``), and a public deployment
write-up: "The log files auto-purge by default when a file size based on these
two configs: log.render.file.upload.append.sizeLimit="512" (in KB) and
log.render.file.upload.append.limitMode="delete"." We found no Polycom document
in our sources that describes the HTTP exchange itself: the HEAD-then-ranged-PUT
sequence is inferred from the phone's log message that a HEAD without
Content-Length leaves it unable to set the Content-Range header (SPEC §6).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.serverkit import DEMO_MAC, Server, curl, edit_settings, make_site, start_server

DIGEST = ["--digest", "-u", "PlcmSpIp:PlcmSpIp"]
APP_LOG = f"logs/{DEMO_MAC}-app.log"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(make_site(tmp_path_factory.mktemp("append") / "site"))
    yield running
    running.stop()


def _mtls(server: Server) -> list[str]:
    demo = server.site / "demo"
    return [
        "--cacert",
        str(server.site / "pki" / "ca.pem"),
        "--cert",
        str(demo / f"{DEMO_MAC}.pem"),
        "--key",
        str(demo / f"{DEMO_MAC}.key"),
    ]


def _last_answer(text: str) -> tuple[int, dict[str, str]]:
    """The status and headers of the last answer curl printed (digest: a 401 comes first)."""
    blocks = [b for b in text.replace("\r", "").split("\n\n") if b.startswith("HTTP/")]
    assert blocks, text
    lines = blocks[-1].splitlines()
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:]) if k}
    return int(lines[0].split()[1]), headers


def _head(auth: list[str], url: str) -> tuple[int, dict[str, str]]:
    """HEAD as the phone does before an append: the status and the answer's headers."""
    return _last_answer(curl(*auth, "-I", url).stdout)


def _put(
    auth: list[str], url: str, body: Path, content_range: str | None = None
) -> subprocess.CompletedProcess[str]:
    """PUT as the phone does: the whole log, or only the tail with a Content-Range."""
    extra = ["-H", f"Content-Range: {content_range}"] if content_range else []
    return curl(*auth, *extra, "-D", "-", "-o", "/dev/null", "-T", str(body), url)


def _status(result: subprocess.CompletedProcess[str]) -> int:
    return _last_answer(result.stdout)[0]


def _append_sequence(server: Server, auth: list[str], base: str, tmp_path: Path) -> None:
    """The phone's sequence twice over: no copy yet, whole PUT, then HEAD + ranged PUT."""
    url = f"{base}/{APP_LOG}"
    stored = server.site / "boot" / APP_LOG
    stored.unlink(missing_ok=True)
    status, _ = _head(auth, url)
    assert status == 404  # no copy yet
    first = tmp_path / "first.log"
    first.write_bytes(b"0727210309|copy |3|00|boot line 1\n")
    assert _status(_put(auth, url, first)) == 204
    status, headers = _head(auth, url)
    assert status == 200
    size = int(headers["content-length"])
    assert size == first.stat().st_size
    tail = tmp_path / "tail.log"
    tail.write_bytes(b"0727210312|copy |3|00|boot line 2\n0727210313|so   |3|00|line 3\n")
    span = f"bytes {size}-{size + tail.stat().st_size - 1}/*"
    assert _status(_put(auth, url, tail, span)) == 204
    assert stored.read_bytes() == first.read_bytes() + tail.read_bytes()
    status, headers = _head(auth, url)
    assert int(headers["content-length"]) == stored.stat().st_size
    # A tail that does not start where the copy ends: 416 with the copy's size, nothing kept.
    before = stored.read_bytes()
    stale = _put(auth, url, tail, f"bytes 3-{3 + tail.stat().st_size - 1}/*")
    assert _status(stale) == 416
    assert _last_answer(stale.stdout)[1]["content-range"] == f"bytes */{len(before)}"
    assert stored.read_bytes() == before
    # A malformed range: 400, nothing kept.
    assert _status(_put(auth, url, tail, "bytes=0-10")) == 400
    assert _status(_put(auth, url, tail, f"bytes {len(before)}-{len(before) + 1}/*")) == 400
    assert stored.read_bytes() == before
    # A PUT without Content-Range still replaces the whole file.
    assert _status(_put(auth, url, first)) == 204
    assert stored.read_bytes() == first.read_bytes()


def test_ok_http_digest_head_then_ranged_put_appends(server: Server, tmp_path: Path) -> None:
    _append_sequence(server, DIGEST, server.http, tmp_path)


def test_ok_https_client_cert_head_then_ranged_put_appends(server: Server, tmp_path: Path) -> None:
    _append_sequence(server, _mtls(server), server.https, tmp_path)


def test_fail_head_refused_like_put_for_a_phone_not_enrolled(
    server: Server, tmp_path: Path
) -> None:
    """HEAD on an upload is asked as a write: the refusal a PUT gets, not a hidden 404."""
    url = f"{server.http}/logs/0004f2bbbbbb-app.log"
    body = tmp_path / "x.log"
    body.write_bytes(b"x\n")
    status, _ = _head(DIGEST, url)
    assert status == _status(_put(DIGEST, url, body)) == 403


def test_ok_log_limit_truncate_keeps_newest_lines_or_refuse_413(tmp_path: Path) -> None:
    """log_limit_mode: "truncate" drops the oldest lines, "refuse" answers 413."""
    site = make_site(tmp_path / "site")
    stored = site / "boot" / APP_LOG
    for mode in ("truncate", "refuse"):
        edit_settings(site, uploads={"log_max": "1KiB", "log_limit_mode": mode})
        server = start_server(site)
        try:
            stored.parent.mkdir(parents=True, exist_ok=True)
            old = b"".join(b"old %03d " % n + b"." * 50 + b"\n" for n in range(15))  # 900 bytes
            stored.write_bytes(old)
            tail = tmp_path / "tail.log"
            tail.write_bytes(b"".join(b"new %03d\n" % n for n in range(30)))  # 240 bytes
            span = f"bytes {len(old)}-{len(old) + tail.stat().st_size - 1}/*"
            result = _put(DIGEST, f"{server.http}/{APP_LOG}", tail, span)
            if mode == "truncate":
                assert _status(result) == 204
                kept = stored.read_bytes()
                assert len(kept) <= 1024 and kept.endswith(tail.read_bytes())
                assert kept.startswith(b"old ")  # cut at a whole line
                assert (old + tail.read_bytes()).endswith(kept)
            else:
                assert _status(result) == 413
                assert stored.read_bytes() == old
        finally:
            server.stop()
