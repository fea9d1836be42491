"""A throwaway PostgreSQL server for tests: initdb in a temp dir, unix socket only.

PostgreSQL refuses to run as root, so as root the cluster belongs to the
``postgres`` user (Debian's package creates it).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@contextmanager
def postgres_url() -> Iterator[str]:
    """Yield a SQLAlchemy URL for a fresh database; stop and remove the cluster after."""
    bindir = pg_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="phoneprov-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(base, user.pw_uid, user.pw_gid)
        os.chown(sock, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    owner = "postgres" if as_user else pwd.getpwuid(os.geteuid()).pw_name

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=60)

    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", owner, "--no-sync")
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-w",
        "-l",
        str(base / "log"),
        "-o",
        f"-k {sock} -c listen_addresses='' -c fsync=off",
        "start",
    )
    try:
        run(str(bindir / "createdb"), "-h", str(sock), "-U", owner, "phoneprov")
        yield f"postgresql+psycopg://{owner}@/phoneprov?host={sock}"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def fresh_database(url: str, prefix: str = "empty") -> Iterator[str]:
    """A database of its own in the cluster at ``url``, never migrated, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield sa.make_url(url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
