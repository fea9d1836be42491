"""A boot server URL as the phone reads it from DHCP option 160/66 (SPEC §2.1).

The scheme picks the protocol, ``user:pass@`` may be embedded, and a path (or
an explicit master file name ending in ``.cfg``) may follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from phoneprov.errors import InputError

DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "tftp": 69}


@dataclass(frozen=True, slots=True)
class Endpoint:
    scheme: str  # http, https, ftp, tftp
    host: str
    port: int
    base_path: str  # "/" or "/polycom/"
    user: str | None = None
    password: str | None = None
    master_name: str | None = None  # an explicit master file in the URL

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.base_path}"

    def target(self, path: str) -> str:
        """The request target for a boot-directory path (percent-encoded)."""
        return self.base_path + quote(path, safe="/-._~")


def parse_endpoint(url: str) -> Endpoint:
    """Parse a boot server URL; InputError names what is wrong."""
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise InputError(
            f"boot server URL {url!r} cannot be read: {exc}",
            "Write an IPv6 address in brackets, e.g. https://[2001:db8::1]:8443/, "
            "and check the URL for stray '[' or ']'.",
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InputError(
            f"boot server URL {url!r} has scheme {parts.scheme or '(none)'!r}",
            "Use http://, https://, ftp:// or tftp:// followed by the host, "
            "e.g. https://prov.example.com:8443/.",
        )
    if not parts.hostname:
        raise InputError(f"boot server URL {url!r} has no host", "Add the server's name or IP.")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise InputError(f"boot server URL {url!r} has a bad port", "Use a port 1-65535.") from None
    path = unquote(parts.path) or "/"
    master = None
    last = path.rsplit("/", 1)[-1]
    if last.lower().endswith(".cfg") and len(last) >= 5:
        master, path = last, path[: -len(last)]
    if not path.endswith("/"):
        path += "/"
    return Endpoint(
        scheme=scheme,
        host=parts.hostname,
        port=port,
        base_path=path,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        master_name=master,
    )
