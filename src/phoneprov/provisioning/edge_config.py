"""The nginx configuration of edge mode (``phoneprov edge nginx-config``).

nginx terminates mutual TLS with the site's server certificates, verifies the phone's
certificate against the trust directory (the Polycom factory chain and the site CA,
gathered into one file, ``edge/client-cas.pem``, since nginx reads one), and proxies to
the edge socket with the certificate, nginx's verdict and the phone's address in
headers it always sets itself, so a phone cannot supply them (servers/edge.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2

from phoneprov.config import Settings
from phoneprov.errors import InputError
from phoneprov.pki.files import write_atomic
from phoneprov.pki.trust import load_trust_anchors

DEFAULT_SOCKET = "/run/phoneprov/edge.sock"
BUNDLE = Path("edge") / "client-cas.pem"
SERVER_CERTS = ("server-ec", "server-rsa")
# Polycom's chain: device <- Equipment Issuing CA <- Equipment Policy CA <- root, so two
# intermediates between the device and the root; one more for a site CA with an
# intermediate of its own.
VERIFY_DEPTH = 3
LISTEN = re.compile(r"(?:(?:\d{1,3}\.){3}\d{1,3}:|\[[0-9A-Fa-f:.]+\]:)?(\d{1,5})")
UNSAFE = re.compile(r'[\x00-\x1f\x7f$"\\;{}]')


@dataclass(frozen=True)
class EdgeConfig:
    text: str  # the nginx configuration (a server block for the http context)
    bundle: Path  # the client CA file it names, just written
    socket_configured: bool  # phoneprov.toml's [edge] socket is the one the text names


def _quoted(value: object) -> str:
    text = str(value)
    if UNSAFE.search(text):
        raise InputError(
            f"{text!r} cannot be written into an nginx configuration",
            "Use a site folder and socket path without quotes, $, ;, braces or backslashes.",
        )
    return f'"{text}"'


def _listen(value: str) -> str:
    match = LISTEN.fullmatch(value)
    if match is None or not 0 < int(match.group(1)) < 65536:
        raise InputError(
            f"--listen {value!r} is not a port or address:port",
            "Write 443, 10.0.0.5:443 or [2001:db8::5]:443.",
        )
    return value


def _templates() -> jinja2.Environment:
    folder = resources.files("phoneprov") / "templates"
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: (folder / name).read_text()),
        autoescape=False,  # nginx syntax: every value goes through the quoted filter
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["quoted"] = _quoted
    return env


def write_bundle(settings: Settings) -> Path:
    """Every certificate of the trust directory in one PEM file, for nginx."""
    anchors = load_trust_anchors(settings.trust_dir)
    if not anchors:
        raise InputError(
            f"no trust anchors (*.pem) in {settings.trust_dir}",
            "Run `phoneprov trust add FILE.pem` to add device CAs.",
        )
    pems = sorted(settings.trust_dir.glob("*.pem"))
    data = b"".join(path.read_bytes().rstrip(b"\n") + b"\n" for path in pems)
    return write_atomic(settings.site_dir / BUNDLE, data)


def nginx_config(settings: Settings, listen: str, socket: str | None) -> EdgeConfig:
    """The configuration for ``listen`` proxying to ``socket`` (default: ``[edge] socket``).

    Raises InputError for a bad --listen, ConfigError when the site has no server
    certificate, CertificateError when the trust directory cannot be read.
    """
    chosen = socket or settings.edge.socket or DEFAULT_SOCKET
    certs = [
        (settings.pki_dir / f"{stem}.pem", settings.pki_dir / f"{stem}.key")
        for stem in SERVER_CERTS
        if (settings.pki_dir / f"{stem}.pem").is_file()
        and (settings.pki_dir / f"{stem}.key").is_file()
    ]
    if not certs:
        raise InputError(
            f"no server certificate in {settings.pki_dir} (server-ec or server-rsa)",
            "Run `phoneprov ca issue-server --fqdn <name>`.",
        )
    bundle = write_bundle(settings)
    uploads = settings.uploads
    text = (
        _templates()
        .get_template("nginx-edge.conf.j2")
        .render(
            site=settings.site_dir.resolve(),
            listen=_listen(listen),
            names=" ".join(settings.fqdns),
            certs=[(cert.resolve(), key.resolve()) for cert, key in certs],
            bundle=bundle.resolve(),
            verify="optional" if settings.https.tolerate_expired_device_certs else "on",
            depth=VERIFY_DEPTH,
            legacy=settings.https.legacy_tls,
            max_body=max(uploads.log_max, uploads.config_max, uploads.core_max),
            socket=chosen,
        )
    )
    return EdgeConfig(text, bundle, chosen == settings.edge.socket)
