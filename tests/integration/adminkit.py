"""A live `phoneprov serve` with its admin listener and one API token per role, for the
admin API tests (tests/integration/test_admin_api*.py)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.serverkit import Server, start_server

from phoneprov.config import load_settings
from phoneprov.provisioning import admins

ROLES = ("viewer", "operator", "admin")


@dataclass
class Api:
    server: Server
    tokens: dict[str, str]
    context: ssl.SSLContext

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.server.ports['admin']}"

    def call(
        self,
        method: str,
        path: str,
        role: str | None = None,
        body: bytes | None = None,
        token: str | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": content_type}
        secret = token if token is not None else (self.tokens[role] if role else None)
        if secret is not None:
            headers["Authorization"] = f"Bearer {secret}"
        request = urllib.request.Request(self.base + path, body, headers, method=method)
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=30) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def json(self, method: str, path: str, role: str | None = None, **kw: Any) -> Any:
        status, _, body = self.call(method, path, role, **kw)
        assert status < 300, (status, body)
        return json.loads(body) if body else None


@contextmanager
def live_api(site: Path) -> Iterator[Api]:
    settings = load_settings(site)
    tokens = {role: admins.create_token(settings, role, role).secret for role in ROLES}
    # The site's own CA signed the server certificate for 127.0.0.1: real verification.
    context = ssl.create_default_context(cafile=str(site / "pki" / "ca.pem"))
    server = start_server(site, protocols=("http", "https", "admin"))
    try:
        yield Api(server, tokens, context)
    finally:
        server.stop()
