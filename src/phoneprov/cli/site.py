"""Site commands: ``init``, ``serve``, ``trust``, ``account``."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from phoneprov.cli.common import (
    SiteOption,
    console,
    handle_errors,
    site_path,
    with_bind,
    with_ports,
)
from phoneprov.config import Settings, load_settings
from phoneprov.errors import InputError
from phoneprov.provisioning import audit, file_modes
from phoneprov.provisioning.phone_accounts import list_accounts, remove_account, set_account
from phoneprov.provisioning.site import DEMO_ADMIN, demo_commands, init_site
from phoneprov.provisioning.trust import add_trusted_ca, trusted_cas
from phoneprov.servers.systemd import notify

trust_app = typer.Typer(
    help="Device trust anchors: CAs whose device certificates HTTPS accepts.", no_args_is_help=True
)
account_app = typer.Typer(
    help="Accounts for HTTP digest and FTP (stored hashed).", no_args_is_help=True
)


def dhcp_hint(settings: Settings, http_port: int) -> str:
    """The option 160/66 value for the bootstrap phase (phones' default credentials)."""
    return f"http://{settings.primary_fqdn}:{http_port}/"


@handle_errors
def init(
    site: Path | None = SiteOption,
    fqdn: list[str] = typer.Option(
        [], "--fqdn", help="Name or IP phones use to reach this server (repeat for more)."
    ),
    http_user: str = typer.Option("PlcmSpIp", help="Bootstrap digest user (phones' default)."),
    http_password: str = typer.Option("PlcmSpIp", help="Bootstrap digest password."),
    demo: bool = typer.Option(False, "--demo", help="Add a demo phone with a device certificate."),
    database: str = typer.Option(
        "",
        help="Database URL shared by several nodes, e.g. "
        "postgresql+psycopg://phoneprov@db.example.com/phoneprov (default: SQLite in the site).",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace an existing site's settings, CA "
        "and boot files (uploads and the database are kept).",
    ),
) -> None:
    """Create a site: settings, CA, server certificates, trust store and boot directory."""
    report = init_site(
        site_path(site),
        fqdn or ["localhost"],
        http_user=http_user,
        http_password=http_password,
        demo=demo,
        force=force,
        database=database,
    )
    settings = report.settings
    console.print(f"[green]site created in {escape(str(report.site_dir))}[/]")
    for path in report.created:
        console.print(f"  {escape(str(path))}", highlight=False)
    console.print(f"\nServe it:  phoneprov serve --site {escape(str(report.site_dir))}")
    console.print(f"DHCP option 160 (and 66): {dhcp_hint(settings, settings.http.port)}")
    if report.demo_cert and report.demo_key:
        console.print("\nBoot the demo phone by hand, as the phone would:")
        for command in demo_commands(settings, report.demo_cert, report.demo_key):
            console.print(f"  {escape(command)}", highlight=False, soft_wrap=True)
    if report.demo_password:
        console.print(
            f"\nWeb console (the admin URL `serve` prints, under /console/): log in as "
            f"{DEMO_ADMIN} with the password in {escape(str(report.demo_password))} "
            "(readable by you only).",
            highlight=False,
        )


@handle_errors
def serve(
    site: Path | None = SiteOption,
    http_port: int | None = typer.Option(None, help="HTTP (digest) port; overrides the site."),
    https_port: int | None = typer.Option(None, help="HTTPS (mutual TLS) port."),
    ftp_port: int | None = typer.Option(None, help="FTP port."),
    tftp_port: int | None = typer.Option(None, help="TFTP port."),
    admin_port: int | None = typer.Option(
        None, help="Admin API (HTTPS) port, 0 for any free one; overrides [admin] port."
    ),
    bind: str | None = typer.Option(
        None,
        "--bind",
        help="Address every listener binds (e.g. 127.0.0.1, 0.0.0.0, ::); overrides the site.",
    ),
    workers: int = typer.Option(1, min=1, max=64, help="Processes sharing the ports."),
    quiet: bool = typer.Option(False, "--quiet", help="Log to files only, not the console."),
    node_name: str | None = typer.Option(
        None,
        "--node-name",
        help="This node's name in `phoneprov cluster status` (default: [cluster] node_name, "
        "else the host name).",
    ),
) -> None:
    """Serve the site's boot directory over HTTP, HTTPS, FTP and TFTP until Ctrl-C."""
    settings = with_bind(
        with_ports(load_settings(site_path(site)), http_port, https_port, ftp_port, tftp_port),
        bind,
    )
    if node_name is not None:
        settings = dataclasses.replace(
            settings, cluster=dataclasses.replace(settings.cluster, node_name=node_name)
        )
    if admin_port is not None:
        settings = dataclasses.replace(
            settings, admin=dataclasses.replace(settings.admin, port=admin_port)
        )
    _tighten(settings)
    # Set by systemd for a Type=notify unit (docs/service.md); read here, at the edge.
    notify_socket = os.environ.get("NOTIFY_SOCKET", "")
    audit.configure(settings.log_dir, console=not quiet)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # Alembic says which DDL mode it assumes on every schema check: not the administrator's news.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if settings.https.legacy_tls:
        console.print(
            "[bold yellow]warning:[/] legacy_tls is on: TLS 1.0/1.1 and weak cipher "
            "suites are accepted. Keep it only while 2009-era phones are in the fleet."
        )

    def ready(urls: dict[str, str], ports: dict[str, int]) -> None:
        console.print(f"[green]phoneprov serving site {escape(str(settings.site_dir))}[/]")
        for name in ("http", "https", "edge", "ftp", "tftp", "admin", "console"):
            if name in urls:
                console.print(f"  {name:5} {escape(urls[name])}", highlight=False)
        if "http" in ports:
            console.print(
                f"DHCP option 160 (and 66): {dhcp_hint(settings, ports['http'])}", highlight=False
            )
        console.print(
            f"logs: {escape(str(settings.log_dir))}/access.log, security.log", highlight=False
        )
        if notify_socket:
            _tell_systemd(notify_socket, urls)

    if workers > 1:
        console.print(f"starting {workers} worker processes on the same ports")
    # Imported here: the listeners' modules (aiohttp, the admin API, the console) take
    # half a second to load, which every other command would pay for nothing.
    from phoneprov.servers.runner import run_workers

    code = run_workers(settings, workers, on_ready=ready)
    if code:
        raise typer.Exit(code)


def _tell_systemd(socket_path: str, urls: dict[str, str]) -> None:
    """READY=1 once every listener is bound: systemd then counts the service as started."""
    try:
        notify(socket_path, "READY=1\nSTATUS=serving " + " ".join(urls.values()))
    except OSError as error:
        console.print(
            f"[bold yellow]warning:[/] cannot tell systemd the server is ready: "
            f"{escape(socket_path)}: {escape(error.strerror or str(error))}",
            highlight=False,
        )


def _tighten(settings: Settings) -> None:
    """Take other users' permissions from the site's files before anything opens them."""
    tightened = file_modes.tighten(settings.site_dir)
    if tightened.changed:
        console.print(
            f"{tightened.changed} file(s) and folder(s) in the site were readable by other "
            "users or writable by the group; they no longer are (docs/security.md)",
            highlight=False,
        )
    if tightened.failed_count:
        shown = " ".join(escape(str(path)) for path in tightened.failed)
        console.print(
            f"[bold yellow]warning:[/] {tightened.failed_count} path(s) in the site belong to "
            f"another user and stay readable by others: {shown}. Fix: chown them to the user "
            "phoneprov runs as, or chmod g-w,o-rwx them.",
            highlight=False,
        )


@trust_app.command("add")
@handle_errors
def trust_add(
    file: Path = typer.Argument(..., help="PEM file with one or more CA certificates."),
    site: Path | None = SiteOption,
    name: str | None = typer.Option(None, help="File name in the trust directory."),
) -> None:
    """Trust device certificates issued by another CA (a lab CA, another vendor)."""
    for ca in add_trusted_ca(load_settings(site_path(site)), file, name):
        console.print(f"trusted: {escape(ca.subject)}", highlight=False)
    console.print(
        "Reload the server to use it: systemctl reload phoneprov (or kill -HUP the "
        "`phoneprov serve` process)."
    )


@trust_app.command("list")
@handle_errors
def trust_list(site: Path | None = SiteOption) -> None:
    """List the CAs whose device certificates the HTTPS listener accepts."""
    cas = trusted_cas(load_settings(site_path(site)))
    table = Table("subject", "not after", "file")
    for ca in cas:
        table.add_row(escape(ca.subject), str(ca.not_after), escape(ca.file))
    console.print(table)
    if not cas:
        raise InputError("the trust directory is empty", "Run `phoneprov trust add FILE.pem`.")


@account_app.command("set")
@handle_errors
def account_set(
    username: str = typer.Argument(..., help="User name; for a device account, its MAC."),
    site: Path | None = SiteOption,
    password: str = typer.Option(
        ...,
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        help="Password (asked when not given).",
    ),
    kind: str = typer.Option("site", help="bootstrap (public, phones' default), site, or device."),
) -> None:
    """Create or change an HTTP digest / FTP account."""
    account = set_account(load_settings(site_path(site)), username, kind, password)
    console.print(f"account {escape(account.username)} ({account.kind}) saved")


@account_app.command("list")
@handle_errors
def account_list(site: Path | None = SiteOption) -> None:
    """List accounts (never their passwords)."""
    table = Table("user", "kind", "mac", "realm")
    for account in list_accounts(load_settings(site_path(site))):
        table.add_row(escape(account.username), account.kind, account.mac, escape(account.realm))
    console.print(table)


@account_app.command("remove")
@handle_errors
def account_remove(username: str, site: Path | None = SiteOption) -> None:
    """Remove an account."""
    remove_account(load_settings(site_path(site)), username)
    console.print(f"account {escape(username)} removed")


def register(app: typer.Typer) -> None:
    """Add the site commands to the top-level app."""
    app.command("init")(init)
    app.command("serve")(serve)
    app.add_typer(trust_app, name="trust")
    app.add_typer(account_app, name="account")
