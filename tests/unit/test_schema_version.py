"""The code's schema version, read from the revision files' names, is Alembic's head.

store/migrate.py avoids importing Alembic outside upgrades; this holds its shortcut
to what Alembic itself computes from the revisions' ``down_revision`` chain.
"""

from __future__ import annotations

import subprocess
import sys

from alembic.config import Config
from alembic.script import ScriptDirectory

from phoneprov.store import migrate


def test_schema_version_is_alembics_single_head() -> None:
    config = Config()
    config.set_main_option("script_location", str(migrate.SCRIPTS))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert heads == [f"{migrate.SCHEMA_VERSION:04}"]


def test_commands_that_open_the_store_do_not_load_alembic() -> None:
    probe = (
        "import sys, tempfile, pathlib\n"
        "from phoneprov.store.migrate import migrate\n"
        "import sqlalchemy as sa\n"
        "path = pathlib.Path(tempfile.mkdtemp()) / 'x.db'\n"
        "engine = sa.create_engine(f'sqlite:///{path}')\n"
        "migrate(engine, 'as-is', 'test')\n"
        "print('alembic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
