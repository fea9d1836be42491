"""Issue 13, finding 6: password-equivalent data was world-readable.

``credentials.ha1`` (enough to log in over digest: RFC 7616 §5.2) sat in clear in
a 0644 database; logs and uploads were 0644 too, and overrides can hold
passwords users typed on the phone. HA1 values are now sealed with the site
key like SIP passwords (store/sql.py), and nothing phoneprov keeps is readable
by other users (provisioning/file_modes.py): each test below failed before.
"""

from __future__ import annotations

import ftplib
import hashlib
import io
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest

from phoneprov.config import load_settings
from phoneprov.errors import StoreError
from phoneprov.store import open_database
from tests.serverkit import DEMO_MAC, Server, curl, run_cli, start_server, status_of

CODE = ("-o", "/dev/null", "-w", "%{http_code}")
PUBLIC = ("--digest", "-u", "PlcmSpIp:PlcmSpIp")
OTHERS_OR_GROUP_WRITE = 0o027  # no file or folder of a site may have any of these bits
SEALED = "enc1:"  # store/secrets.py PREFIX


def clear_ha1(user: str, password: str, realm: str = "phoneprov") -> str:
    """MD5(user:realm:password), RFC 7616 §3.4.2: what an older phoneprov stored."""
    return hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()


def stored_ha1(site: Path) -> dict[str, str]:
    with closing(sqlite3.connect(site / "phoneprov.db")) as db:
        return dict(db.execute("SELECT username, ha1 FROM credentials").fetchall())


def loose_paths(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` (itself included) that others may use or the
    group may write, with its mode; symbolic links are not the site's and not counted."""
    found = {}
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        if not stat.S_ISLNK(info.st_mode) and info.st_mode & OTHERS_OR_GROUP_WRITE:
            found[str(path.relative_to(root.parent))] = oct(stat.S_IMODE(info.st_mode))
    return found


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def mtls(site: Path) -> tuple[str, ...]:
    demo = site / "demo"
    return (
        "--cacert",
        str(site / "pki" / "ca.pem"),
        "--cert",
        str(demo / f"{DEMO_MAC}.pem"),
        "--key",
        str(demo / f"{DEMO_MAC}.key"),
    )


def upload_as_phones(server: Server, tmp_path: Path) -> list[Path]:
    """Real uploads over HTTP (public account), HTTPS (the demo phone) and FTP; returns
    the files they stored, kept versions included."""
    site = server.site
    body = tmp_path / "body"
    body.write_text("boot log\n")
    boot_log = curl(*PUBLIC, *CODE, "-T", str(body), f"{server.http}/logs/{DEMO_MAC}-boot.log")
    assert status_of(boot_log) in (201, 204)
    for n in range(2):  # the second upload of each keeps the first as a version
        body.write_text(f'<polycomConfig reg.1.auth.password="typed-on-phone-{n}"/>\n')
        for path in (f"overrides/{DEMO_MAC}-phone.cfg", f"contacts/{DEMO_MAC}-directory.xml"):
            put = curl(*mtls(site), *CODE, "-T", str(body), f"{server.https}/{path}")
            assert status_of(put) in (201, 204), path
    with ftplib.FTP() as client:
        client.connect("127.0.0.1", server.ports["ftp"], timeout=10)
        client.login("PlcmSpIp", "PlcmSpIp")
        client.storbinary(f"STOR logs/{DEMO_MAC}-app.log", io.BytesIO(b"app log\n"))
    boot = site / "boot"
    stored = [
        boot / "logs" / f"{DEMO_MAC}-boot.log",
        boot / "logs" / f"{DEMO_MAC}-app.log",
        boot / "overrides" / f"{DEMO_MAC}-phone.cfg",
        boot / "contacts" / f"{DEMO_MAC}-directory.xml",
        *(site / "versions" / "overrides").iterdir(),
        *(site / "versions" / "contacts").iterdir(),
    ]
    assert len(stored) >= 6 and all(path.is_file() for path in stored)
    return stored


def test_fail_site_files_and_uploads_readable_by_others(site: Path, tmp_path: Path) -> None:
    """A site as an older phoneprov left it (0644 files, 0755 folders, an old upload),
    served, then uploaded to over HTTP, HTTPS and FTP: nothing others can read."""
    old_upload = site / "boot" / "contacts" / "0004f2000002-directory.xml"
    old_upload.parent.mkdir(parents=True, exist_ok=True)
    old_upload.write_text("<directory/>\n")
    old_upload.chmod(0o644)
    assert loose_paths(site), "the copied site should start with the old, loose modes"
    server = start_server(site, protocols=("http", "https", "ftp"))
    try:
        stored = upload_as_phones(server, tmp_path)
        failed = curl("--digest", "-u", "PlcmSpIp:wrong", *CODE, f"{server.http}/initial.cfg")
        assert status_of(failed) == 401
        server.wait_for_log("security", "reason=digest-bad-response")
        database = [site / "phoneprov.db", *site.glob("phoneprov.db-*")]
        logs = [site / "log" / "access.log", site / "log" / "security.log"]
        for path in [*stored, *database, *logs, old_upload, site / "phoneprov.toml"]:
            assert mode(path) & OTHERS_OR_GROUP_WRITE == 0, (path, oct(mode(path)))
        assert loose_paths(site) == {}
        # Keys stay owner-only; the administrator is told what changed at start.
        assert mode(site / "pki" / "store-secret.key") == 0o600
        assert any("no longer are" in line for line in server.output), server.output
    finally:
        server.stop()


def test_fail_files_made_by_the_command_are_kept_from_others(tmp_path: Path) -> None:
    """What `phoneprov init`, `account set` and `device export` write: 0640 and 0750."""
    site = tmp_path / "fresh"
    run_cli("init", "--site", str(site), "--fqdn", "localhost", "--demo", check=True)
    run_cli("account", "set", "lab", "--kind", "bootstrap", "--password", "s3cret",
            "--site", str(site), check=True)  # fmt: skip
    export = tmp_path / "inventory.csv"
    run_cli("device", "export", "--with-passwords", "--output", str(export),
            "--site", str(site), check=True)  # fmt: skip
    assert loose_paths(site) == {}
    assert mode(site / "phoneprov.db") == 0o640
    assert mode(site) == 0o750
    assert mode(export) == 0o640  # it holds SIP passwords


def test_fail_digest_ha1_stored_in_clear(site: Path) -> None:
    """Every HA1 in the database is sealed, and digest logins still work with it."""
    run_cli("account", "set", "lab", "--kind", "bootstrap", "--password", "s3cret",
            "--site", str(site), check=True)  # fmt: skip
    stored = stored_ha1(site)
    assert set(stored) >= {"PlcmSpIp", "lab"}
    assert all(value.startswith(SEALED) for value in stored.values()), stored
    assert clear_ha1("PlcmSpIp", "PlcmSpIp") not in stored.values()
    assert clear_ha1("lab", "s3cret") not in stored.values()
    server = start_server(site)
    try:
        for user, password in (("PlcmSpIp", "PlcmSpIp"), ("lab", "s3cret")):
            got = curl("--digest", "-u", f"{user}:{password}", *CODE,
                       f"{server.http}/000000000000.cfg")  # fmt: skip
            assert status_of(got) == 200, user
    finally:
        server.stop()


def test_fail_clear_ha1_of_an_older_version_is_sealed_on_upgrade(site: Path) -> None:
    """A row an older phoneprov wrote in clear keeps working, and is sealed at start."""
    with closing(sqlite3.connect(site / "phoneprov.db")) as db, db:
        db.execute(
            "UPDATE credentials SET ha1 = ? WHERE username = 'PlcmSpIp'",
            (clear_ha1("PlcmSpIp", "PlcmSpIp"),),
        )
    server = start_server(site)
    try:
        got = curl(*PUBLIC, *CODE, f"{server.http}/000000000000.cfg")
        assert status_of(got) == 200
        assert stored_ha1(site)["PlcmSpIp"].startswith(SEALED)
    finally:
        server.stop()
    assert any("sealed 1 digest HA1" in line for line in server.output), server.output


def test_fail_sealed_ha1_without_the_site_key_is_never_checked(site: Path) -> None:
    """Without the key no stand-in (empty or sealed text) may be used as the HA1: anyone
    who knew it could answer digest challenges. The error names the account and fix."""
    store = open_database(load_settings(site).database_url)
    try:
        with pytest.raises(StoreError) as refused:
            store.get_account("PlcmSpIp")
    finally:
        store.close()
    assert "PlcmSpIp" in str(refused.value) and "site key" in str(refused.value)
    assert "store-secret.key" in (refused.value.hint or "")
