"""FTP and FTPS with real clients (Python ftplib, lftp) against `phoneprov serve`.

One server per module on the demo site made by `init`, with FTPS on, a small
log size limit and three accounts set with `phoneprov account set`: the
default PlcmSpIp (made by init), a device account for the demo phone and one
for another phone, and a site account.
"""

from __future__ import annotations

import ftplib
import io
import shutil
import socket
import ssl
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.serverkit import DEMO_MAC, Server, edit_settings, run_cli, start_server

OTHER_MAC = "0004f2000002"
SECRETS = f"{DEMO_MAC}-phone-secrets.cfg"
DEVICE_PASSWORD = "device-pass-1"
OTHER_PASSWORD = "device-pass-2"
SITE_PASSWORD = "site-admin-pass"
LOG_MAX = 64 * 1024


@pytest.fixture(scope="module")
def ftp_server(site_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    site = tmp_path_factory.mktemp("ftp") / "site"
    shutil.copytree(site_template, site, symlinks=True)
    edit_settings(site, ftp={"ftps": True}, uploads={"log_max": "64KiB"})
    for name, kind, password in (
        (DEMO_MAC, "device", DEVICE_PASSWORD),
        (OTHER_MAC, "device", OTHER_PASSWORD),
        ("admin", "site", SITE_PASSWORD),
    ):
        run_cli(
            "account",
            "set",
            name,
            "--site",
            str(site),
            "--kind",
            kind,
            "--password",
            password,
            check=True,
        )
    server = start_server(site, protocols=("http", "https", "ftp"))
    yield server
    server.stop()


def login(server: Server, user: str = "PlcmSpIp", password: str = "PlcmSpIp") -> ftplib.FTP:
    client = ftplib.FTP()
    client.connect("127.0.0.1", server.ports["ftp"], timeout=10)
    client.login(user, password)
    return client


def fetch(client: ftplib.FTP, name: str) -> bytes:
    out = io.BytesIO()
    client.retrbinary(f"RETR {name}", out.write)
    return out.getvalue()


def lftp(
    server: Server, script: str, *, user: str = "PlcmSpIp,PlcmSpIp", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    assert shutil.which("lftp"), "lftp is required (make test installs it)"
    settings = "set net:max-retries 1; set net:timeout 10; set ftp:ssl-allow no; "
    return subprocess.run(
        [
            "lftp",
            "-u",
            user,
            "-e",
            settings + script + "; bye",
            f"ftp://127.0.0.1:{server.ports['ftp']}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_ok_ftplib_default_account_gets_public_master(ftp_server: Server) -> None:
    with login(ftp_server) as client:
        master = fetch(client, "000000000000.cfg").decode()
    assert 'CONFIG_FILES="initial.cfg"' in master
    assert "phone-secrets" not in master
    ftp_server.wait_for_log("access", 'method=RETR path="/000000000000.cfg" status=226')


def test_ok_lftp_default_account_gets_master_and_initial(ftp_server: Server) -> None:
    result = lftp(ftp_server, "cat 000000000000.cfg; cat initial.cfg")
    assert result.returncode == 0, result.stderr
    assert 'CONFIG_FILES="initial.cfg"' in result.stdout
    assert "device.prov.serverName" in result.stdout


def test_ok_stor_then_appe_log(ftp_server: Server) -> None:
    name = f"logs/{DEMO_MAC}-app.log"
    with login(ftp_server) as client:
        client.storbinary(f"STOR {name}", io.BytesIO(b"first line\n"))
        client.storbinary(f"APPE {name}", io.BytesIO(b"second line\n"))
    assert (ftp_server.site / "boot" / name).read_bytes() == b"first line\nsecond line\n"
    log = ftp_server.wait_for_log("access", f'method=APPE path="/{name}" status=226')
    assert f'method=STOR path="/{name}" status=226 bytes=11' in log


def test_ok_lftp_puts_boot_log_at_root_into_its_folder(ftp_server: Server, tmp_path: Path) -> None:
    (tmp_path / "boot.log").write_text("boot ok\n")
    result = lftp(ftp_server, f"put boot.log -o {DEMO_MAC}-boot.log", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (ftp_server.site / "boot" / "logs" / f"{DEMO_MAC}-boot.log").read_text() == "boot ok\n"


@pytest.mark.parametrize(
    ("user", "password", "name"),
    [
        pytest.param("PlcmSpIp", "PlcmSpIp", SECRETS, id="fail/default-account-reads-secrets"),
        pytest.param(OTHER_MAC, OTHER_PASSWORD, SECRETS, id="fail/other-phone-reads-secrets"),
        pytest.param("PlcmSpIp", "PlcmSpIp", f"{DEMO_MAC}.cfg", id="fail/default-account-mac-cfg"),
    ],
)
def test_fail_retr_of_another_phones_file_looks_missing(
    ftp_server: Server, user: str, password: str, name: str
) -> None:
    with login(ftp_server, user, password) as client:
        with pytest.raises(ftplib.error_perm) as refused:
            fetch(client, name)
        with pytest.raises(ftplib.error_perm) as missing:
            fetch(client, "no-such-file.cfg")
    assert str(refused.value) == str(missing.value) == "550 No such file."
    ftp_server.wait_for_log("security", f'path="{name}"')


def test_ok_device_account_reads_its_own_secrets(ftp_server: Server) -> None:
    with login(ftp_server, DEMO_MAC, DEVICE_PASSWORD) as client:
        secrets = fetch(client, SECRETS).decode()
        master = fetch(client, "000000000000.cfg").decode()
    assert "reg.1.auth.password" in secrets
    assert "phone-secrets.cfg" in master  # the full master file, not the public one
    ftp_server.wait_for_log("access", f"identity=device-account:{DEMO_MAC} method=RETR")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("site.cfg", id="fail/stor-shared-config"),
        pytest.param(f"{DEMO_MAC}.cfg", id="fail/stor-device-config"),
        pytest.param(f"overrides/{DEMO_MAC}-app.log", id="fail/stor-log-wrong-folder"),
        pytest.param("logs/../site.cfg", id="fail/stor-traversal"),
        pytest.param(f"logs/.{DEMO_MAC}-app.log", id="fail/stor-hidden-name"),
    ],
)
def test_fail_stor_outside_upload_names(ftp_server: Server, name: str) -> None:
    boot = ftp_server.site / "boot"
    before = sorted(path.relative_to(boot) for path in boot.rglob("*"))
    with login(ftp_server) as client, pytest.raises(ftplib.error_perm) as refused:
        client.storbinary(f"STOR {name}", io.BytesIO(b"<polycomConfig/>"))
    assert str(refused.value) == "553 File name not allowed."
    ftp_server.wait_for_log("security", name.split("/")[-1])
    assert sorted(path.relative_to(boot) for path in boot.rglob("*")) == before


def test_ok_ftps_login_and_private_data_channel(ftp_server: Server) -> None:
    context = ssl.create_default_context(cafile=str(ftp_server.site / "pki" / "ca.pem"))
    client = ftplib.FTP_TLS(context=context)
    client.connect("127.0.0.1", ftp_server.ports["ftp"], timeout=10)
    client.auth()
    assert client.sock.version() in ("TLSv1.2", "TLSv1.3")
    client.login("PlcmSpIp", "PlcmSpIp")
    client.prot_p()
    master = fetch(client, "000000000000.cfg").decode()
    client.quit()
    assert 'CONFIG_FILES="initial.cfg"' in master
    ftp_server.wait_for_log(
        "access",
        "proto=ftps ip=127.0.0.1 identity=bootstrap:PlcmSpIp "
        'method=RETR path="/000000000000.cfg" status=226',
    )


def test_ok_lftp_ftps_with_site_ca(ftp_server: Server) -> None:
    ca = ftp_server.site / "pki" / "ca.pem"
    result = subprocess.run(
        [
            "lftp",
            "-u",
            "PlcmSpIp,PlcmSpIp",
            "-e",
            f"set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:ca-file {ca}; "
            "set net:max-retries 1; cat 000000000000.cfg; bye",
            f"ftp://localhost:{ftp_server.ports['ftp']}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert 'CONFIG_FILES="initial.cfg"' in result.stdout


def test_ok_list_hides_other_phones_uploads(ftp_server: Server) -> None:
    with login(ftp_server) as client:
        client.storbinary(f"STOR logs/{DEMO_MAC}-boot.log", io.BytesIO(b"demo\n"))
        client.storbinary(f"STOR logs/{OTHER_MAC}-boot.log", io.BytesIO(b"other\n"))
        public = client.nlst("logs")
        client.cwd("logs")
        public_mlsd = [name for name, _ in client.mlsd()]
    with login(ftp_server, DEMO_MAC, DEVICE_PASSWORD) as client:
        own = client.nlst("logs")
        lines: list[str] = []
        client.retrlines("LIST logs", lines.append)
    with login(ftp_server, "admin", SITE_PASSWORD) as client:
        everything = client.nlst("logs")
    assert public == [] and public_mlsd == []
    assert f"{DEMO_MAC}-boot.log" in own and f"{OTHER_MAC}-boot.log" not in own
    assert any(line.endswith(f"{DEMO_MAC}-boot.log") for line in lines)
    assert {f"{DEMO_MAC}-boot.log", f"{OTHER_MAC}-boot.log"} <= set(everything)


def _partial_upload(client: ftplib.FTP, target: Path) -> socket.socket:
    """Start a STOR and return once the server holds part of it in its temporary file."""
    client.voidcmd("TYPE I")
    conn = client.transfercmd(f"STOR logs/{target.name}")
    conn.sendall(b"partial " * 4096)
    deadline = time.monotonic() + 5
    while not any(p.stat().st_size for p in target.parent.glob(f".{target.name}.*.part")):
        assert time.monotonic() < deadline, "the server never received the partial upload"
        time.sleep(0.01)
    return conn


def test_fail_stor_reset_midway_keeps_previous_file(ftp_server: Server) -> None:
    target = ftp_server.site / "boot" / "logs" / f"{OTHER_MAC}-app.log"
    with login(ftp_server, OTHER_MAC, OTHER_PASSWORD) as client:
        client.storbinary(f"STOR logs/{target.name}", io.BytesIO(b"complete old log\n"))
        conn = _partial_upload(client, target)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # RST: the phone lost its connection, not the end of the file
        with pytest.raises(ftplib.error_temp, match=r"^426"):
            client.voidresp()
    assert target.read_bytes() == b"complete old log\n"
    assert not list(target.parent.glob(".*.part"))


def _ftps_login(server: Server, user: str, password: str) -> ftplib.FTP_TLS:
    context = ssl.create_default_context(cafile=str(server.site / "pki" / "ca.pem"))
    client = ftplib.FTP_TLS(context=context)
    client.connect("127.0.0.1", server.ports["ftp"], timeout=10)
    client.login(user, password)
    client.prot_p()
    return client


def test_fail_ftps_stor_reset_midway_keeps_previous_file(ftp_server: Server) -> None:
    target = ftp_server.site / "boot" / "logs" / f"{OTHER_MAC}-app.log"
    client = _ftps_login(ftp_server, OTHER_MAC, OTHER_PASSWORD)
    client.storbinary(f"STOR logs/{target.name}", io.BytesIO(b"complete over tls\n"))
    assert target.read_bytes() == b"complete over tls\n"  # a clean TLS close commits
    conn = _partial_upload(client, target)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # RST without TLS close_notify
    with pytest.raises(ftplib.error_temp, match=r"^426"):
        client.voidresp()
    client.close()
    assert target.read_bytes() == b"complete over tls\n"
    assert not list(target.parent.glob(".*.part"))


def test_fail_stor_aborted_keeps_previous_file(ftp_server: Server) -> None:
    target = ftp_server.site / "boot" / "logs" / f"{OTHER_MAC}-boot.log"
    with login(ftp_server, OTHER_MAC, OTHER_PASSWORD) as client:
        client.storbinary(f"STOR logs/{target.name}", io.BytesIO(b"complete old log\n"))
        conn = _partial_upload(client, target)
        client.abort()
        conn.close()
    assert target.read_bytes() == b"complete old log\n"
    assert not list(target.parent.glob(".*.part"))


def test_fail_stor_over_size_limit_is_552(ftp_server: Server) -> None:
    name = f"logs/{DEMO_MAC}-app.log"
    target = ftp_server.site / "boot" / name
    with login(ftp_server, DEMO_MAC, DEVICE_PASSWORD) as client:
        client.storbinary(f"STOR {name}", io.BytesIO(b"small\n"))
        client.voidcmd("TYPE I")
        conn = client.transfercmd(f"STOR {name}")
        try:
            for _ in range(LOG_MAX // 4096 + 8):
                conn.sendall(b"x" * 4096)
        except OSError:
            pass  # the server closed the data connection at the limit
        conn.close()
        with pytest.raises(ftplib.error_perm, match=r"^552 upload .* over the log limit of 64 KiB"):
            client.voidresp()
    assert target.read_bytes() == b"small\n"
    ftp_server.wait_for_log("security", "reason=over-size-limit")


def test_fail_bad_password_is_530_without_the_password_in_logs(ftp_server: Server) -> None:
    client = ftplib.FTP()
    client.connect("127.0.0.1", ftp_server.ports["ftp"], timeout=10)
    with pytest.raises(ftplib.error_perm, match=r"^530"):
        client.login("PlcmSpIp", "wrong-secret-7")
    client.close()
    security = ftp_server.wait_for_log("security", "identity=user:PlcmSpIp reason=bad-password")
    assert "wrong-secret-7" not in security + ftp_server.access_log()


def test_ok_dele_own_upload_only(ftp_server: Server) -> None:
    name = f"calls/{DEMO_MAC}-calls.xml"
    with login(ftp_server, DEMO_MAC, DEVICE_PASSWORD) as client:
        client.storbinary(f"STOR {name}", io.BytesIO(b"<calls/>"))
    with (
        login(ftp_server, OTHER_MAC, OTHER_PASSWORD) as client,
        pytest.raises(ftplib.error_perm, match=r"^550"),
    ):
        client.delete(name)
    with login(ftp_server) as client, pytest.raises(ftplib.error_perm, match=r"^550"):
        client.delete(name)
    assert (ftp_server.site / "boot" / name).exists()
    with login(ftp_server, DEMO_MAC, DEVICE_PASSWORD) as client:
        assert client.delete(name).startswith("250")
    assert not (ftp_server.site / "boot" / name).exists()


def test_ok_size_and_mdtm_match_what_retr_sends(ftp_server: Server) -> None:
    with login(ftp_server) as client:
        client.voidcmd("TYPE I")
        size = client.size("000000000000.cfg")
        body = fetch(client, "000000000000.cfg")
        mdtm = client.sendcmd("MDTM initial.cfg")
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            client.size(SECRETS)
    assert size == len(body)
    assert mdtm.startswith("213 20")


def test_ok_refused_commands_never_touch_the_disk(ftp_server: Server) -> None:
    with login(ftp_server, "admin", SITE_PASSWORD) as client:
        for command in ("MKD newdir", "RMD logs", "RNFR site.cfg", "SITE CHMOD 777 site.cfg"):
            with pytest.raises(ftplib.error_perm, match=r"^55[03]"):
                client.sendcmd(command)
    assert (ftp_server.site / "boot" / "logs").is_dir()
    assert not (ftp_server.site / "boot" / "newdir").exists()
