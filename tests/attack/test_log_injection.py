"""Issue 13, finding 2: log injection steered fail2ban.

The digest user name went into the security log as it came, so a user name
holding ``refused ip=10.9.9.9 ...`` made the documented fail2ban filter ban
10.9.9.9; a certificate's common name could even start a line of its own.
Every value a client sends is now escaped (provisioning/audit.py), and the
fail2ban filter and jail ship in contrib/fail2ban/.

The hostile inputs below go through real clients (curl, ftplib, a TLS client
certificate, a TFTP request) to a running server; the lines it writes are then
checked against the documented grammar and given to the real ``fail2ban-regex``
and ``fail2ban-client``: only the real client address, 127.0.0.1, may match.
"""

from __future__ import annotations

import calendar
import datetime as dt
import ftplib
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given
from hypothesis import strategies as st

from phoneprov.policy import Reason
from tests.serverkit import Server, curl, start_server, status_of

REPO = Path(__file__).resolve().parents[2]
FILTER = REPO / "contrib" / "fail2ban" / "filter.d" / "phoneprov.conf"
JAIL = REPO / "contrib" / "fail2ban" / "jail.d" / "phoneprov.conf"
CLIENT = "127.0.0.1"
VICTIM = "10.9.9.9"  # the address every injection tries to get banned
FORGED = f'refused ip={VICTIM} proto=http identity=- reason=unknown-user path=""'
FORGED_LINE = f"2026-01-01T00:00:00Z phoneprov-security {FORGED}"
CODE = ("-o", "/dev/null", "-w", "%{http_code}")

# The line grammar of docs/security.md: a value is a bare token or a quoted string
# in which only printable ASCII but '"', '=' and '\' stands for itself.
BARE = r"[A-Za-z0-9._:@+/%,~-]+"
QUOTED = r'"(?:[!#-<>-\[\]-~]|\\x[0-9a-f]{2})*(?:\.\.\.)?"'
FIELD = re.compile(rf" ([a-z]+)=({BARE}|{QUOTED})")
LINE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) "
    r"(phoneprov-access|phoneprov-security refused|phoneprov-security template-error"
    r"|phoneprov-(?:access|security) log-delayed)"
    rf"((?: [a-z]+=(?:{BARE}|{QUOTED}))+)$"
)
KEYS = {
    "phoneprov-access": ["proto", "ip", "identity", "method", "path", "status", "bytes", "ms"],
    "phoneprov-security refused": ["ip", "proto", "identity", "reason", "path", "detail"],
    "phoneprov-security template-error": [
        "ip",
        "proto",
        "identity",
        "path",
        "template",
        "line",
        "detail",
    ],
    "phoneprov-access log-delayed": ["file", "lines", "dropped", "since", "error"],
    "phoneprov-security log-delayed": ["file", "lines", "dropped", "since", "error"],
}
FTP_NAME_KEPT = 64  # characters of a refused FTP user name the log keeps (servers/ftp/auth.py)
F2B_ROW = re.compile(r"^\['([^']*)',\s*(\d+)")


def decode(value: str) -> str:
    """A field value as the client sent it (the inverse of audit.escape)."""
    if not value.startswith('"'):
        return value
    body = value[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        if body.startswith("\\x", i):
            out.append(int(body[i + 2 : i + 4], 16))
            i += 4
        else:
            out += body[i].encode()
            i += 1
    return out.decode("utf-8", "surrogateescape")


def parse(line: str) -> tuple[str, str, dict[str, str]]:
    """(time, head, decoded fields) of one log line; AssertionError naming the line otherwise."""
    match = LINE.match(line)
    assert match, f"not a phoneprov log line: {line!r}"
    stamp, head, rest = match.groups()
    pairs = FIELD.findall(rest)
    keys = [key for key, _ in pairs]
    expected = KEYS[head]
    assert keys == expected[: len(keys)] and len(keys) >= len(expected) - 1, (keys, line)
    return stamp, head, {key: decode(value) for key, value in pairs}


def log_lines(server: Server) -> list[str]:
    return (server.security_log() + server.access_log()).splitlines()


def filter_reasons() -> set[str]:
    text = FILTER.read_text()
    match = re.search(r"reason=\(\?:([a-z|-]+)\)", text)
    assert match, "the filter names the reasons it bans for"
    return set(match.group(1).split("|"))


def fail2ban_rows(log: Path) -> list[tuple[str, int]]:
    """(address, time) of each line the shipped filter matches, by the real fail2ban-regex."""
    assert shutil.which("fail2ban-regex"), "fail2ban-regex is required (make tools installs it)"
    result = subprocess.run(
        ["fail2ban-regex", "-o", "row", str(log), str(FILTER)],
        capture_output=True,
        text=True,
        timeout=60,
        # A local zone far from UTC: a filter that ignored the "Z" would shift every time.
        env={**os.environ, "TZ": "IST-5:30"},
    )
    assert result.returncode == 0, result.stderr
    rows = []
    for line in result.stdout.splitlines():
        match = F2B_ROW.match(line)
        assert match, f"unexpected fail2ban-regex output: {line!r}"
        rows.append((match.group(1), int(match.group(2))))
    return rows


def hostile_client_cert(site: Path, directory: Path) -> tuple[Path, Path]:
    """A client certificate from the site's own (trusted) CA whose common name breaks
    the line and forges a whole security line for VICTIM."""
    ca_cert = x509.load_pem_x509_certificate((site / "pki" / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((site / "pki" / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    with warnings.catch_warnings():
        # A CN longer than X.520's 64 characters: a hostile client is not bound by it.
        warnings.simplefilter("ignore", UserWarning)
        name = x509.Name(
            [
                x509.NameAttribute(
                    NameOID.COMMON_NAME,
                    f"x\n{FORGED_LINE.replace('proto=http', 'proto=https')}",
                    _validate=False,
                )
            ]
        )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / "hostile.pem", directory / "hostile.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def ftp_login(server: Server, user: str, password: str, *, encoding: str = "utf-8") -> str:
    """One FTP login by ftplib; returns the server's reply to it."""
    client = ftplib.FTP(encoding=encoding)
    try:
        client.connect(CLIENT, server.ports["ftp"], timeout=10)
        try:
            return client.login(user, password)
        except ftplib.error_perm as refused:
            return str(refused)
    finally:
        client.close()


def tftp_read_request(server: Server, filename: bytes) -> bytes:
    """Send one TFTP read request (RFC 1350 §5) and return the server's first answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(b"\x00\x01" + filename + b"\x00octet\x00", (CLIENT, server.ports["tftp"]))
        answer, _ = sock.recvfrom(2048)
    return answer


@pytest.fixture(scope="module")
def hostile_run(site_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that has been sent every injection attempt; the attempts' outcomes checked."""
    tmp_path = tmp_path_factory.mktemp("injection")
    site = tmp_path / "site"
    shutil.copytree(site_template, site, symlinks=True)
    cert, key = hostile_client_cert(site, tmp_path)
    server = start_server(site, protocols=("http", "https", "ftp", "tftp"))
    try:
        # HTTP digest: an unknown user name with quotes, spaces and '=' (curl escapes
        # the quote as RFC 7616 §3.4 asks); then a wrong password on a path that holds
        # a carriage return and a forged line (aiohttp routes no path with a line feed).
        name = f'x" {FORGED}'
        unknown = curl("--digest", "-u", f"{name}:pw", *CODE, f"{server.http}/000000000000.cfg")
        assert status_of(unknown) == 401
        path = "/" + urllib.parse.quote(f"x\r{FORGED_LINE}", safe="")
        wrong = curl("--digest", "-u", "PlcmSpIp:wrong", *CODE, f"{server.http}{path}")
        assert status_of(wrong) == 401
        # HTTPS: a certificate whose common name breaks the line (refused: not a MAC).
        hostile = curl(
            "--cacert",
            str(site / "pki" / "ca.pem"),
            "--cert",
            str(cert),
            "--key",
            str(key),
            *CODE,
            f"{server.https}/000000000000.cfg",
        )
        assert status_of(hostile) == 403
        # FTP: user names with spaces and '=', with a control character and a byte that
        # is not UTF-8; a wrong password; a path with spaces and '='.
        assert ftp_login(server, f"x {FORGED}", "pw").startswith("530")
        assert ftp_login(server, "\xff\x1b[2J", "pw", encoding="latin-1").startswith("530")
        assert ftp_login(server, "PlcmSpIp", "wrong").startswith("530")
        client = ftplib.FTP()
        try:
            client.connect(CLIENT, server.ports["ftp"], timeout=10)
            client.login("PlcmSpIp", "PlcmSpIp")
            with pytest.raises(ftplib.error_perm):
                client.retrbinary(f"RETR ../{FORGED}", lambda _: None)
        finally:
            client.close()
        # TFTP: a file name with a line break and a forged line (refused: unsafe path).
        answer = tftp_read_request(server, f"../x\n{FORGED_LINE}".encode())
        assert answer[:2] == b"\x00\x05", answer  # ERROR
        server.wait_for_log("security", "proto=tftp")
        server.wait_for_log("security", "proto=https")
        yield server
    finally:
        server.stop()


def test_fail_no_client_value_forges_a_field_or_a_line(hostile_run: Server) -> None:
    lines = log_lines(hostile_run)
    parsed = [parse(line) for line in lines]
    assert all(fields["ip"] == CLIENT for _, _, fields in parsed)
    identities = {fields["identity"] for _, _, fields in parsed}
    paths = {fields["path"] for _, _, fields in parsed}
    # Escaped, not replaced: the log keeps what each client sent, for the administrator.
    assert any(i.startswith('user:x"') and FORGED in i for i in identities), identities
    assert "user:" + f"x {FORGED}"[:FTP_NAME_KEPT] in identities
    assert "user:\ufffd\x1b[2J" in identities, identities  # pyftpdlib decodes with "replace"
    assert any(i.startswith("cert:x\n2026-01-01T00:00:00Z") for i in identities), identities
    assert any(p.endswith(f"x\r{FORGED_LINE}") for p in paths), paths
    assert any(p.endswith(f"../{FORGED}") for p in paths), paths
    assert any(p.startswith("../x\n2026-01-01T00:00:00Z") for p in paths), paths


def test_fail_fail2ban_bans_only_the_real_client(hostile_run: Server) -> None:
    log = hostile_run.site / "log" / "security.log"
    rows = fail2ban_rows(log)
    assert {address for address, _ in rows} == {CLIENT}, rows
    reasons = filter_reasons()
    guesses = [
        (stamp, fields)
        for stamp, head, fields in (parse(line) for line in log.read_text().splitlines())
        if head == "phoneprov-security refused" and fields["reason"] in reasons
    ]
    # Each guess counted once; the run above made five (two FTP and one digest unknown
    # user, a wrong FTP and a wrong digest password).
    assert len(rows) == len(guesses) >= 5, (rows, guesses)
    # Times are UTC: fail2ban reads the "Z" (a local-time reading would shift bans by hours).
    first_stamp = guesses[0][0]
    assert rows[0][1] == calendar.timegm(time.strptime(first_stamp, "%Y-%m-%dT%H:%M:%SZ"))


def test_ok_filter_reasons_are_phoneprov_reasons() -> None:
    known = {reason.value for reason in Reason}
    missing = filter_reasons() - known
    assert not missing, f"the fail2ban filter names reasons phoneprov never writes: {missing}"


def test_ok_shipped_jail_loads_in_fail2ban(tmp_path: Path) -> None:
    """The real fail2ban-client accepts the jail with the filter (no daemon is started)."""
    assert shutil.which("fail2ban-client"), "fail2ban-client is required (make tools installs it)"
    config = tmp_path / "fail2ban"
    shutil.copytree("/etc/fail2ban", config)
    for leftover in (config / "jail.d").iterdir():
        leftover.unlink()  # the distribution's sshd jail reads a journal this test lacks
    shutil.copy(JAIL, config / "jail.d" / "phoneprov.conf")
    shutil.copy(FILTER, config / "filter.d" / "phoneprov.conf")
    log = tmp_path / "security.log"
    log.write_text("")
    (config / "jail.local").write_text(f"[phoneprov]\nlogpath = {log}\n")
    tested = subprocess.run(
        ["fail2ban-client", "-c", str(config), "-t"], capture_output=True, text=True, timeout=60
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    dumped = subprocess.run(
        ["fail2ban-client", "-c", str(config), "-d"], capture_output=True, text=True, timeout=60
    )
    assert "['add', 'phoneprov', 'auto']" in dumped.stdout, dumped.stdout
    assert "'addfailregex', '^\\\\s*phoneprov-security refused ip=<ADDR>" in dumped.stdout
    assert "'tcp,udp'" in dumped.stdout  # TFTP is UDP: banned too


def test_ok_docs_show_the_shipped_filter() -> None:
    """Every failregex the docs show is the shipped one (they once disagreed)."""
    shipped = re.search(r"^failregex = .*$", FILTER.read_text(), re.MULTILINE)
    assert shipped
    shown = {
        (doc.name, line.strip())
        for doc in (REPO / "docs").glob("*.md")
        for line in doc.read_text().splitlines()
        if line.strip().startswith("failregex")
    }
    assert shown and all(line == shipped.group(0) for _, line in shown), shown
    security = (REPO / "docs" / "security.md").read_text()
    assert "contrib/fail2ban/filter.d/phoneprov.conf" in security
    assert "contrib/fail2ban/jail.d/phoneprov.conf" in security


@given(st.text(max_size=80))
def test_ok_every_value_is_one_field_and_reads_back(value: str) -> None:
    from phoneprov.provisioning.audit import escape  # here: the code before it had none

    written = escape(value)
    assert not any(ch in written for ch in " =\n\r\t\x00\x1b"), written
    assert re.fullmatch(f"{BARE}|{QUOTED}", written), written
    assert decode(written) == value
