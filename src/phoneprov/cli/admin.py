"""``phoneprov admin``: administrators and API tokens of the admin API (docs/admin-api.md)."""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from phoneprov.cli.common import SiteOption, console, handle_errors, print_json, site_path
from phoneprov.config import Settings, load_settings
from phoneprov.errors import InputError
from phoneprov.provisioning import admins

app = typer.Typer(
    help="Administrators and API tokens of the admin API (roles: viewer, operator, admin).",
    no_args_is_help=True,
)
user_app = typer.Typer(help="Administrators: add, list, remove, passwd.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")

RoleOption = typer.Option(
    ..., "--role", help="viewer (reads all but secrets), operator (also changes phones), admin."
)
PasswordStdin = typer.Option(
    False,
    "--password-stdin",
    help="Read the password from the first line of standard input instead of the terminal.",
)


def _settings(site: Path | None) -> Settings:
    return load_settings(site_path(site))


def _when(stamp: float) -> str:
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _password(from_stdin: bool) -> str:
    """The new password: one line of stdin, or typed twice at the terminal (not echoed)."""
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise InputError(
                "--password-stdin read no password", "Pipe it in: `... --password-stdin < file`."
            )
        return line
    if not sys.stdin.isatty():
        raise InputError(
            "no terminal to read the password from",
            "Type it at a terminal, or pass --password-stdin and pipe it in.",
        )
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@user_app.command("add")
@handle_errors
def user_add(
    name: str = typer.Argument(..., help="Login name."),
    role: str = RoleOption,
    password_stdin: bool = PasswordStdin,
    site: Path | None = SiteOption,
) -> None:
    """Create an administrator (password typed twice, or from stdin)."""
    settings = _settings(site)
    admins.check_name(name)
    admins.check_role(role)
    record = admins.add_admin(settings, name, role, _password(password_stdin))
    console.print(Text(f"administrator {record.name} added with role {record.role}"))


@user_app.command("passwd")
@handle_errors
def user_passwd(
    name: str, password_stdin: bool = PasswordStdin, site: Path | None = SiteOption
) -> None:
    """Set an administrator's password."""
    settings = _settings(site)
    admins.set_password(settings, name, _password(password_stdin))
    console.print(Text(f"password of {name} changed"))


@user_app.command("remove")
@handle_errors
def user_remove(name: str, site: Path | None = SiteOption) -> None:
    """Remove an administrator (their tokens keep working until revoked)."""
    admins.remove_admin(_settings(site), name)
    console.print(Text(f"administrator {name} removed"))


@user_app.command("list")
@handle_errors
def user_list(
    site: Path | None = SiteOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List administrators and their roles."""
    records = admins.list_admins(_settings(site))
    if as_json:
        print_json([{"name": r.name, "role": r.role, "created": r.created} for r in records])
        return
    table = Table("name", "role", "created")
    for r in records:
        table.add_row(Text(r.name), r.role, _when(r.created))
    console.print(table)


@token_app.command("create")
@handle_errors
def token_create(
    name: str = typer.Argument(..., help="What the token is for, e.g. pbx-sync."),
    role: str = RoleOption,
    expires: str | None = typer.Option(None, "--expires", help="Lifetime: 90d, 12h or 30m."),
    site: Path | None = SiteOption,
) -> None:
    """Create an API token and print it once (only its hash is kept)."""
    created = admins.create_token(_settings(site), name, role, expires)
    sys.stdout.write(created.secret + "\n")
    until = _when(created.record.expires) if created.record.expires else "never"
    sys.stderr.write(
        f"token {name} ({role}, expires: {until}) created; it is shown only this once\n"
    )


@token_app.command("revoke")
@handle_errors
def token_revoke(name: str, site: Path | None = SiteOption) -> None:
    """Revoke a token: the next request with it is refused."""
    admins.revoke_token(_settings(site), name)
    console.print(Text(f"token {name} revoked"))


@token_app.command("list")
@handle_errors
def token_list(
    site: Path | None = SiteOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List tokens: name, role, who created it, when it expires."""
    now = time.time()
    tokens = admins.list_tokens(_settings(site))
    rows = [
        {
            "name": t.name,
            "role": t.role,
            "created": _when(t.created),
            "created_by": t.created_by,
            "expires": admins.describe_expiry(t, now),
        }
        for t in tokens
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "role", "created", "by", "expires")
    for row in rows:
        table.add_row(
            *(Text(str(row[k])) for k in ("name", "role", "created", "created_by")),
            Text(str(row["expires"])),
        )
    console.print(table)
