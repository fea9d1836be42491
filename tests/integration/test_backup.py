"""`phoneprov backup` and `restore` as an administrator runs them: backup -> wipe ->
restore -> doctor, on SQLite and on a real PostgreSQL server; refusals that write
nothing; a backup killed part way."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.integration.consoledoc import run_doc
from tests.integration.doctorkit import serve
from tests.integration.pgserver import pg_bin, postgres_url
from tests.serverkit import DEMO_MAC, Server, curl, run_cli, start_server

ROOT = Path(__file__).resolve().parents[2]
SECRETS = f"/{DEMO_MAC}-phone-secrets.cfg"
PASSPHRASE = "correct horse battery staple\n"


def as_phone(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """curl with the demo phone's device certificate, over mutual TLS."""
    site = server.site
    return curl(
        "--fail",
        "--cacert", str(site / "pki" / "ca.pem"),
        "--cert", str(site / "demo" / f"{DEMO_MAC}.pem"),
        "--key", str(site / "demo" / f"{DEMO_MAC}.key"),
        *args,
    )  # fmt: skip


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes, but the logs and the live database."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "log" not in p.relative_to(root).parts[:1]
        and not p.name.startswith("phoneprov.db")
    }  # fmt: skip


def devices(site: Path) -> list[dict[str, object]]:
    out = run_cli("device", "list", "--site", str(site), "--format", "json", check=True).stdout
    return list(json.loads(out))


def doctor_passes(site: Path) -> None:
    result = run_cli("doctor", "--site", str(site), "--format", "json", "--timeout", "2")
    report = json.loads(result.stdout)
    failing = [f for f in report["findings"] if f["severity"] != "pass"]
    assert failing == [] and result.returncode == 0, failing


def test_ok_backup_wipe_restore_doctor_serves(site: Path, tmp_path: Path) -> None:
    """A running site is backed up, deleted, restored from the archive alone, and serves
    the demo phone what it served before, with the phone's upload; doctor passes."""
    archive = tmp_path / "backups" / "site.tar.gz"
    archive.parent.mkdir()
    (tmp_path / "boot.log").write_text("boot ok\n")
    server = serve(site)
    try:
        before = as_phone(server, f"{server.https}{SECRETS}")
        assert "reg.1.auth.password" in before.stdout, before.stderr
        upload = f"{server.https}/logs/{DEMO_MAC}-boot.log"
        assert as_phone(server, "-T", str(tmp_path / "boot.log"), upload).returncode == 0
        # Online: the server keeps its database open while the snapshot is taken.
        made = run_cli("backup", str(archive), "--site", str(site), check=True)
    finally:
        server.stop()
    assert "backup written" in made.stdout
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    files, inventory = tree(site), devices(site)

    shutil.rmtree(site)
    restored = run_cli("restore", str(archive), "--site", str(site), check=True)
    assert f"into {site}" in restored.stdout

    assert tree(site) == files
    assert devices(site) == inventory
    assert (site / "boot" / "logs" / f"{DEMO_MAC}-boot.log").read_text() == "boot ok\n"
    for key in (site / "pki").glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    server = serve(site)
    try:
        doctor_passes(site)
        after = as_phone(server, f"{server.https}{SECRETS}")
        assert after.returncode == 0 and after.stdout == before.stdout
    finally:
        server.stop()


def test_ok_encrypted_backup_needs_its_passphrase(site: Path, tmp_path: Path) -> None:
    archive = tmp_path / "site.bin"
    run_cli("backup", str(archive), "--site", str(site), "--passphrase-stdin",
            input=PASSPHRASE, check=True)  # fmt: skip
    gzip_test = subprocess.run(["gzip", "-t"], stdin=archive.open("rb"), capture_output=True)
    assert gzip_test.returncode != 0, "an encrypted backup must not be a readable gzip file"
    target = tmp_path / "restored"

    without = run_cli("restore", str(archive), "--site", str(target))
    assert without.returncode == 2 and "is encrypted" in without.stderr
    wrong = run_cli("restore", str(archive), "--site", str(target), "--passphrase-stdin",
                    input="not the passphrase\n")  # fmt: skip
    assert wrong.returncode == 2 and "wrong passphrase" in wrong.stderr
    assert not target.exists()

    run_cli("restore", str(archive), "--site", str(target), "--passphrase-stdin",
            input=PASSPHRASE, check=True)  # fmt: skip
    assert tree(target) == tree(site)
    assert devices(target) == devices(site)


def test_fail_existing_site_needs_force_and_is_kept(site: Path, tmp_path: Path) -> None:
    archive = tmp_path / "site.tar.gz"
    run_cli("backup", str(archive), "--site", str(site), check=True)
    backed_up = tree(site)
    (site / "boot" / "after-the-backup.cfg").write_text("made later\n")
    current = tree(site)

    refused = run_cli("restore", str(archive), "--site", str(site))
    assert refused.returncode == 1
    assert "is not empty" in refused.stderr and "--force" in refused.stderr
    assert tree(site) == current

    run_cli("restore", str(archive), "--site", str(site), "--force", check=True)
    assert tree(site) == backed_up
    (kept,) = tmp_path.glob("site.before-restore-*")
    assert tree(kept) == current
    assert [p.name for p in tmp_path.iterdir() if ".restoring-" in p.name] == []


def test_fail_backup_refuses_to_overwrite_or_to_hold_itself(site: Path, tmp_path: Path) -> None:
    existing = tmp_path / "existing.tar.gz"
    existing.write_text("an older backup\n")
    refused = run_cli("backup", str(existing), "--site", str(site))
    assert refused.returncode == 2 and "already exists" in refused.stderr
    assert existing.read_text() == "an older backup\n"
    inside = run_cli("backup", str(site / "boot" / "b.tar.gz"), "--site", str(site))
    assert inside.returncode == 2 and "inside the site folder" in inside.stderr
    assert not (site / "boot" / "b.tar.gz").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_fail_restore_where_no_folder_can_be_made(site: Path, tmp_path: Path) -> None:
    archive = tmp_path / "site.tar.gz"
    run_cli("backup", str(archive), "--site", str(site), check=True)
    (tmp_path / "a-file").write_text("not a folder\n")
    result = run_cli("restore", str(archive), "--site", str(tmp_path / "a-file" / "site"))
    assert result.returncode == 1
    assert "restore not done: " in result.stderr and "a-file" in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr


def _tampered(archive: Path, work: Path) -> Path:
    """The archive re-made by tar with one site file changed and its old manifest."""
    unpacked = work / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(unpacked)], check=True)
    (unpacked / "site" / "phoneprov.toml").write_text('[site]\nname = "evil"\n')
    remade = work / "tampered.tar.gz"
    subprocess.run(
        ["tar", "-czf", str(remade), "-C", str(unpacked), "database", "site", "MANIFEST.json"],
        check=True,
    )
    return remade


@pytest.mark.parametrize("damage", ["tampered", "cut-short", "flipped-byte", "no-manifest"])
def test_fail_damaged_archive_writes_nothing(site: Path, tmp_path: Path, damage: str) -> None:
    archive = tmp_path / "site.tar.gz"
    run_cli("backup", str(archive), "--site", str(site), check=True)
    data = archive.read_bytes()
    if damage == "tampered":
        archive = _tampered(archive, tmp_path)
        expected = "does not match its manifest"
    elif damage == "cut-short":
        archive.write_bytes(data[: len(data) * 2 // 3])
        expected = "not a whole phoneprov backup"
    elif damage == "flipped-byte":
        middle = len(data) // 2
        archive.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
        expected = "phoneprov backup"
    else:
        unpacked = tmp_path / "unpacked"
        unpacked.mkdir()
        subprocess.run(["tar", "-xzf", str(archive), "-C", str(unpacked)], check=True)
        subprocess.run(["tar", "-czf", str(archive), "-C", str(unpacked), "database", "site"],
                       check=True)  # fmt: skip
        expected = "has no manifest"
    target = tmp_path / "restored"
    result = run_cli("restore", str(archive), "--site", str(target))
    assert result.returncode == 2, result.stdout
    assert expected in result.stderr
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if ".restoring-" in p.name] == []


def _reading(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open and has read some of it (/proc fdinfo)."""
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                pos = Path(f"/proc/{pid}/fdinfo/{fd}").read_text().split()[1]
                return int(pos) > 0
    except (FileNotFoundError, ProcessLookupError):
        pass
    return False


def test_fail_killed_backup_leaves_no_archive_that_looks_complete(
    site: Path, tmp_path: Path
) -> None:
    # A 1 GiB firmware image (sparse: no disk space), so the backup is killed mid-file.
    image = site / "boot" / "sip.ld"
    with image.open("wb") as handle:
        handle.truncate(1024**3)
    archive = tmp_path / "site.tar.gz"
    process = subprocess.Popen(
        [shutil.which("phoneprov") or str(Path(os.sys.executable).with_name("phoneprov")),
         "backup", str(archive), "--site", str(site)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not _reading(process.pid, image.resolve()):
            assert process.poll() is None, "backup ended before it could be killed"
            assert time.monotonic() < deadline, "backup never read the firmware image"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert not archive.exists()
    (partial,) = tmp_path.glob(".site.tar.gz.*.partial")
    result = run_cli("restore", str(partial), "--site", str(tmp_path / "restored"))
    assert result.returncode == 2
    assert "not a whole phoneprov backup" in result.stderr or "no manifest" in result.stderr
    assert not (tmp_path / "restored").exists()


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    if pg_bin() is None or shutil.which("pg_dump") is None:
        pytest.skip("PostgreSQL server or client tools not installed (make tools)")
    with postgres_url() as url:
        yield url


def test_ok_postgres_backup_wipe_restore(pg_url: str, tmp_path: Path) -> None:
    """pg_dump into the archive; the database wiped; pg_restore brings the inventory back."""
    site = tmp_path / "site"
    run_cli("init", "--site", str(site), "--demo", "--fqdn", "localhost", "--fqdn",
            "127.0.0.1", "--database", pg_url, check=True)  # fmt: skip
    assert not (site / "phoneprov.db").exists()
    inventory = devices(site)
    archive = tmp_path / "pg.tar.gz"
    run_cli("backup", str(archive), "--site", str(site), check=True)
    listed = subprocess.run(["tar", "-tzf", str(archive)], capture_output=True, text=True)
    assert "database/phoneprov.pgdump" in listed.stdout.splitlines()

    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
    shutil.rmtree(site)

    # An empty database: restored without --force.
    run_cli("restore", str(archive), "--site", str(site), check=True)
    assert devices(site) == inventory
    server = start_server(site)
    try:
        assert "reg.1.auth.password" in as_phone(server, f"{server.https}{SECRETS}").stdout
    finally:
        server.stop()

    # The database now holds a schema: a second restore elsewhere needs --force.
    other = tmp_path / f"other-{uuid.uuid4().hex[:6]}"
    refused = run_cli("restore", str(archive), "--site", str(other))
    assert refused.returncode == 1 and "already holds a phoneprov schema" in refused.stderr
    assert not other.exists()
    run_cli("restore", str(archive), "--site", str(other), "--force", check=True)
    assert devices(other) == inventory


def test_ok_backup_doc_runs_as_written(site_template: Path, tmp_path: Path) -> None:
    """docs/backup.md with the demo site at /var/lib/phoneprov (staged under tmp_path)."""
    site = tmp_path / "var" / "lib" / "phoneprov"
    shutil.copytree(site_template, site, symlinks=True)
    (tmp_path / "root").mkdir(mode=0o700)  # root's home, where the doc keeps the passphrase
    run_doc(ROOT / "docs" / "backup.md", tmp_path, skipped=set())
    backups = tmp_path / "var" / "backups" / "phoneprov"
    assert sorted(p.name for p in backups.iterdir()) == ["offsite.bin", "site.tar.gz"]
    assert stat.S_IMODE((tmp_path / "root" / "phoneprov-backup.pass").stat().st_mode) == 0o600
    copy = tmp_path / "srv" / "phoneprov-copy"
    assert tree(copy) == tree(site) and devices(copy) == devices(site)
