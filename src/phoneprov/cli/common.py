"""Shared CLI plumbing: the --site option, output formats, and error reporting."""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.text import Text
from typer._click.globals import get_current_context  # typer vendors click (app.py too)

from phoneprov.config import Settings
from phoneprov.errors import InputError, PhoneprovError

# No emoji codes anywhere: a MAC hint like 00:04:f2:ab:cd:ef must not print an emoji.
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)

P = ParamSpec("P")
R = TypeVar("R")


def default_site() -> Path:
    """``PHONEPROV_SITE`` or ``./site``: read here, at the edge, and nowhere else."""
    return Path(os.environ.get("PHONEPROV_SITE", "./site"))


SiteOption = typer.Option(
    None,
    "--site",
    help="Site directory (default: $PHONEPROV_SITE or ./site).",
    show_default=False,
)


def site_path(value: Path | None) -> Path:
    return value if value is not None else default_site()


class OutputFormat(enum.StrEnum):
    text = "text"
    json = "json"


def print_json(data: Any) -> None:
    """Print stable JSON (sorted keys, two-space indent) to stdout."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def existing_file(path: Path, expected: str) -> Path:
    """Return ``path`` when it is a file; raise InputError naming it and ``expected``
    (what the command reads, e.g. "a certificate in PEM, DER or PKCS#7 form") otherwise."""
    if path.is_file():
        return path
    what = "a directory, not a file" if path.is_dir() else "no such file"
    raise InputError(
        f"{path}: {what}",
        f"Check the path (looked for {path.absolute()}); give {expected}.",
    )


def fail(error: PhoneprovError) -> typer.Exit:
    """Print an error and its hint on stderr; return the Exit to raise.

    Both print as written (Text objects: no markup, no emoji codes), and every
    error gets a hint: its own, or where to read about the command.
    """
    err_console.print(
        Text.assemble(("error:", "bold red"), " ", str(error)), highlight=False, soft_wrap=True
    )
    err_console.print(
        Text.assemble(("hint:", "yellow"), " ", error.hint or _help_hint()),
        highlight=False,
        soft_wrap=True,
    )
    return typer.Exit(error.exit_code)


def _help_hint() -> str:
    context = get_current_context(silent=True)
    command = context.command_path if context is not None else "phoneprov"
    return f"Run `{command} --help` for what the command needs."


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn PhoneprovError into a one-line reason, a hint and a non-zero exit."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except PhoneprovError as error:
            raise fail(error) from None

    return wrapper


def with_ports(
    settings: Settings, http: int | None, https: int | None, ftp: int | None, tftp: int | None
) -> Settings:
    """Settings with the ``--http-port`` / ``--https-port`` / ``--ftp-port`` /
    ``--tftp-port`` overrides that ``serve`` and ``doctor`` take."""
    if http is not None:
        settings = dataclasses.replace(settings, http=dataclasses.replace(settings.http, port=http))
    if https is not None:
        settings = dataclasses.replace(
            settings, https=dataclasses.replace(settings.https, port=https)
        )
    if ftp is not None:
        settings = dataclasses.replace(settings, ftp=dataclasses.replace(settings.ftp, port=ftp))
    if tftp is not None:
        settings = dataclasses.replace(settings, tftp=dataclasses.replace(settings.tftp, port=tftp))
    return settings


def with_bind(settings: Settings, bind: str | None) -> Settings:
    """Settings with ``serve --bind``: one address for the HTTP, HTTPS, FTP and TFTP
    listeners. Raises InputError when it is not an IP address."""
    if bind is None:
        return settings
    try:
        address = str(ipaddress.ip_address(bind))
    except ValueError:
        raise InputError(
            f"--bind {bind!r} is not an IP address",
            "Give the address of one of this machine's interfaces, 127.0.0.1 for this "
            "machine only, or 0.0.0.0 (IPv4) or :: (IPv6) for all of them.",
        ) from None
    return dataclasses.replace(
        settings,
        http=dataclasses.replace(settings.http, bind=address),
        https=dataclasses.replace(settings.https, bind=address),
        ftp=dataclasses.replace(settings.ftp, bind=address),
        tftp=dataclasses.replace(settings.tftp, bind=address),
    )
