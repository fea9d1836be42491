"""docs/admin-api.md: its sh blocks run against a live server, in order, and every text
block after one appears in its output. The doc's ports 8444 (admin) and 8080 (HTTP) are
replaced by the ports the test server got, and its `cli:root` by this user's actor."""

from __future__ import annotations

import getpass
from pathlib import Path

from tests.integration.shdoc import run_sh_blocks
from tests.serverkit import start_server

DOC = Path(__file__).resolve().parents[2] / "docs" / "admin-api.md"


def test_ok_admin_api_doc_examples_run(site: Path, tmp_path: Path) -> None:
    server = start_server(site, protocols=("http", "https", "admin"))
    try:
        text = DOC.read_text().replace("8444", str(server.ports["admin"]))
        text = text.replace(":8080/", f":{server.ports['http']}/")
        text = text.replace("cli:root", f"cli:{getpass.getuser()}")
        copy = tmp_path / "admin-api.md"
        copy.write_text(text)
        assert run_sh_blocks(copy, site.parent, text_after_prose=True) >= 5
    finally:
        server.stop()
