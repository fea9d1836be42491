"""Upgrades: `phoneprov --version`, `db upgrade [--check]` from the previous release's
database, and docs/upgrade.md run as written against one."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.integration.consoledoc import run_doc
from tests.serverkit import DEMO_MAC, curl, run_cli, start_server

from phoneprov import __version__
from phoneprov.protocols.digest import ha1
from phoneprov.provisioning.accounts import hash_password
from phoneprov.store import SCHEMA_VERSION, schema

ROOT = Path(__file__).resolve().parents[2]
# phoneprov 0.1.0 shipped three migrations: v1, ucupdate_requests, inventory.
PREVIOUS_RELEASE_SCHEMA = 3
OLD_SIP_PASSWORD = "sip-password-from-0.1.0"


def previous_release_database(site: Path, level: int = PREVIOUS_RELEASE_SCHEMA) -> Path:
    """Replace the site's database by one an older phoneprov left: the first ``level``
    migrations only, in WAL mode, the bootstrap account with its digest HA1 in clear
    (as 0.1.0 stored it) and, from level 3, the demo phone with a SIP line."""
    for old in site.glob("phoneprov.db*"):
        old.unlink()
    path = site / "phoneprov.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            schema.schema_version.create(conn)
            for number, migration in enumerate(schema.MIGRATIONS[:level], start=1):
                migration(conn)
                conn.execute(schema.schema_version.insert().values(version=number))
            conn.execute(
                sa.text(
                    "INSERT INTO credentials (username, kind, mac, realm, ha1, password_hash,"
                    " created) VALUES ('PlcmSpIp', 'bootstrap', '', 'phoneprov', :ha1, :hash, 0)"
                ),
                {
                    "ha1": ha1("PlcmSpIp", "phoneprov", "PlcmSpIp"),
                    "hash": hash_password("PlcmSpIp"),
                },
            )
            if level >= 3:
                conn.execute(
                    sa.text(
                        "INSERT INTO devices (mac, status, model, group_name, label) VALUES "
                        "(:mac, 'known', 'VVX410', 'pilot', 'Front desk')"
                    ),
                    {"mac": DEMO_MAC},
                )
                conn.execute(
                    sa.text(
                        "INSERT INTO device_lines (mac, line, ext, user, password, server) "
                        "VALUES (:mac, 1, '1001', '1001', :password, 'pbx.example.com')"
                    ),
                    {"mac": DEMO_MAC, "password": OLD_SIP_PASSWORD},
                )
    finally:
        engine.dispose()
    return path


def previous_release_lync_catalog(site: Path) -> dict[str, object]:
    """The ``ucupdate/catalog.json`` 0.1.0 kept beside its database: the demo CX700
    package (its file is in ``ucupdate/objects/``), run by everyone and by ``pilot``."""
    image = (site / "demo" / "CPE.nbt").read_bytes()
    key = dict(type="UCPhone", vendor="Polycom", model="CX700", revision="A", locale="ENU")
    stored = {"name": "CPE.nbt", "sha256": hashlib.sha256(image).hexdigest(), "size": len(image)}
    package = {**key, "version": "1.0.522.101", "module": "CPE", "added": 1700000000.0}
    data: dict[str, object] = {
        "packages": [{**package, "files": [stored]}],
        "assignments": [
            {**key, "group": "", "version": "1.0.522.101"},
            {**key, "group": "pilot", "version": "1.0.522.101"},
        ],
    }
    (site / "ucupdate" / "catalog.json").write_text(json.dumps(data, indent=2) + "\n")
    return data


def dump(path: Path) -> list[str]:
    """The database as SQL text (sqlite3's iterdump): equal dumps, equal databases."""
    with sqlite3.connect(path) as conn:
        lines = list(conn.iterdump())
    conn.close()
    return lines


def stored_ha1(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        (value,) = conn.execute(
            "SELECT ha1 FROM credentials WHERE username = 'PlcmSpIp'"
        ).fetchone()
    conn.close()
    return str(value)


def test_ok_version_flag_and_command_agree() -> None:
    flag = run_cli("--version", check=True).stdout.strip()
    assert flag == run_cli("version", check=True).stdout.strip() == __version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", flag)
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {__version__} " in changelog, "CHANGELOG.md has no section for this version"


def test_ok_upgrade_from_the_previous_release(site: Path, tmp_path: Path) -> None:
    """stop (nothing runs), back up, db upgrade, start: the old account and SIP line work."""
    db = previous_release_database(site)
    lync_catalog = previous_release_lync_catalog(site)
    clear = stored_ha1(db)
    before = dump(db)

    check = run_cli("db", "upgrade", "--check", "--site", str(site))
    assert check.returncode == 1
    assert f"database schema version {PREVIOUS_RELEASE_SCHEMA};" in check.stdout
    assert f"needs version {SCHEMA_VERSION}" in check.stdout
    assert dump(db) == before, "--check changed the database"

    archive = tmp_path / "before-upgrade.tar.gz"
    run_cli("backup", str(archive), "--site", str(site), check=True)
    assert dump(db) == before, "backup changed the database"

    done = run_cli("db", "upgrade", "--site", str(site), check=True)
    assert done.stdout.strip() == (
        f"database schema upgraded from version {PREVIOUS_RELEASE_SCHEMA} to {SCHEMA_VERSION} "
        f"({SCHEMA_VERSION - PREVIOUS_RELEASE_SCHEMA} migration(s) applied)"
    )
    assert stored_ha1(db) != clear, "the upgrade left the digest HA1 in clear"
    again = run_cli("db", "upgrade", "--site", str(site), check=True)
    assert "already current, nothing to do" in again.stdout
    assert run_cli("db", "upgrade", "--check", "--site", str(site)).returncode == 0

    # The Lync catalog 0.1.0 kept in a file moves into the database on first use.
    listed = run_cli("firmware", "list-ucupdate", "--format", "json", "--site", str(site),
                     check=True)  # fmt: skip
    assert json.loads(listed.stdout) == lync_catalog
    assert not (site / "ucupdate" / "catalog.json").exists()
    adopted = json.loads((site / "ucupdate" / "catalog.json.adopted").read_text())
    assert adopted == lync_catalog

    server = start_server(site)
    try:
        master = curl("--fail", "--digest", "-u", "PlcmSpIp:PlcmSpIp",
                      f"{server.http}/000000000000.cfg")  # fmt: skip
        assert 'CONFIG_FILES="initial.cfg"' in master.stdout, master.stderr
        secrets = curl(
            "--fail",
            "--cacert", str(site / "pki" / "ca.pem"),
            "--cert", str(site / "demo" / f"{DEMO_MAC}.pem"),
            "--key", str(site / "demo" / f"{DEMO_MAC}.key"),
            f"{server.https}/{DEMO_MAC}-phone-secrets.cfg",
        )  # fmt: skip
        assert OLD_SIP_PASSWORD in secrets.stdout, secrets.stderr
    finally:
        server.stop()

    # The backup taken before the upgrade still holds the previous release's database.
    rolled_back = tmp_path / "rolled-back"
    run_cli("restore", str(archive), "--site", str(rolled_back), check=True)
    assert dump(rolled_back / "phoneprov.db") == before


@pytest.mark.parametrize(
    "level", range(1, len(schema.MIGRATIONS) + 1), ids=lambda n: f"ok/from-schema-{n}"
)
def test_ok_every_older_schema_upgrades(site: Path, level: int) -> None:
    """Any database the custom migrations left (1 to 5, before Alembic) is brought to the
    head: the baseline revision runs the steps it lacks, then the later revisions."""
    previous_release_database(site, level)
    assert run_cli("db", "upgrade", "--check", "--site", str(site)).returncode == 1
    done = run_cli("db", "upgrade", "--site", str(site), check=True)
    assert f"from version {level} to {SCHEMA_VERSION}" in done.stdout
    assert run_cli("db", "upgrade", "--check", "--site", str(site)).returncode == 0


def test_fail_database_newer_than_the_code_is_refused(site: Path) -> None:
    """A revision this code does not know: db upgrade and serve refuse, nothing changes."""
    db = site / "phoneprov.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (f"{SCHEMA_VERSION + 1:04}",))
    conn.close()
    before = dump(db)
    for args in (("db", "upgrade", "--check"), ("db", "upgrade"), ("serve",)):
        result = run_cli(*args, "--site", str(site))
        assert result.returncode == 1
        assert f"version {SCHEMA_VERSION + 1}, newer than phoneprov {__version__}" in result.stderr
        assert "hint:" in result.stderr
    assert dump(db) == before


def test_fail_serve_refuses_an_older_schema_until_db_upgrade(site: Path) -> None:
    """serve (and every other command) on an older database names `phoneprov db upgrade`
    and changes nothing; after the upgrade the same command works."""
    db = previous_release_database(site)
    before = dump(db)
    for args in (("serve",), ("device", "list")):
        refused = run_cli(*args, "--site", str(site))
        assert refused.returncode == 1, refused.stdout
        assert (
            f"the database schema is version {PREVIOUS_RELEASE_SCHEMA}; phoneprov "
            f"{__version__} needs version {SCHEMA_VERSION}"
        ) in refused.stderr
        assert "phoneprov db upgrade" in refused.stderr
    assert dump(db) == before
    run_cli("db", "upgrade", "--site", str(site), check=True)
    assert run_cli("device", "list", "--site", str(site)).returncode == 0


def test_ok_upgrade_doc_runs_as_written(site_template: Path, tmp_path: Path) -> None:
    """docs/upgrade.md against a previous-release database at /var/lib/phoneprov (staged)."""
    site = tmp_path / "var" / "lib" / "phoneprov"
    shutil.copytree(site_template, site, symlinks=True)
    previous_release_database(site)
    (tmp_path / "var" / "backups").mkdir()
    ran = run_doc(
        ROOT / "docs" / "upgrade.md",
        tmp_path,
        skipped={
            "git pull",
            "make install",
            "sudo systemctl stop phoneprov",
            "sudo systemctl start phoneprov",
            "sudo .venv/bin/phoneprov service install",
        },
    )
    assert any(step.command.startswith("sudo .venv/bin/phoneprov restore") for step in ran)
    assert (tmp_path / "var" / "backups" / "phoneprov-before-upgrade.tar.gz").is_file()
    assert list(tmp_path.glob("var/lib/phoneprov.before-restore-*"))
