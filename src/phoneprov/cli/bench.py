"""``phoneprov bench storm``: a boot storm of simulated phones against one boot server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from phoneprov.cli.common import OutputFormat, console, err_console, handle_errors, print_json
from phoneprov.errors import InputError
from phoneprov.model import MacAddress
from phoneprov.provisioning.certificates import DeviceCertIssuer
from phoneprov.sim.certs import device_pair
from phoneprov.sim.phone import Phone, model_token
from phoneprov.sim.runner import BootReport, StageChoice
from phoneprov.sim.storm import StormOptions, StormPhone, run_storm, storm_macs

app = typer.Typer(
    name="bench", help="Load generators: boot storms of simulated phones.", no_args_is_help=True
)

FIRST_MAC = "0004f2f00000"


@app.callback()
def bench() -> None:
    """Load generators: boot storms of simulated phones."""


def _cert_dir_pairs(folder: Path) -> list[tuple[MacAddress, Path, Path]]:
    """``<mac>.pem`` + ``<mac>.key`` pairs in ``folder``, in MAC order."""
    pairs = []
    for cert in sorted(folder.glob("*.pem")):
        mac = MacAddress.maybe(cert.stem)
        key = cert.with_suffix(".key")
        if mac is not None and key.is_file():
            pairs.append((mac, cert, key))
    if not pairs:
        raise InputError(
            f"no <mac>.pem + <mac>.key pairs in {folder}",
            "Put one device certificate and key per phone there, named by MAC, "
            "or use --site to issue them from the site's CA.",
        )
    return pairs


def _phones(
    count: int, model: str, first: MacAddress, certs: Path | None, site: Path | None
) -> list[StormPhone]:
    token = model_token(model)
    if certs is not None:
        pairs = _cert_dir_pairs(certs)
        # More phones than certificates: the same phones boot again (a second storm wave).
        return [
            StormPhone(
                Phone(pairs[i % len(pairs)][0], token),
                str(pairs[i % len(pairs)][1]),
                str(pairs[i % len(pairs)][2]),
            )
            for i in range(count)
        ]
    macs = storm_macs(first, count)
    if site is None:
        return [StormPhone(Phone(mac, token)) for mac in macs]
    issuer = DeviceCertIssuer(site / "pki")
    members = []
    for mac in macs:
        cert, key = device_pair(site, mac, issuer)
        members.append(StormPhone(Phone(mac, token), str(cert), str(key)))
    return members


def _text(summary: dict[str, Any]) -> None:
    table = Table(title="Boot storm", show_header=False)
    latency = summary["latency_ms"]
    rows = [
        ("phones / concurrency", f"{summary['phones']} / {summary['concurrency']}"),
        ("wall time", f"{summary['seconds']:.2f} s"),
        ("boots ok / failed", f"{summary['boots_ok']} / {summary['boots_failed']}"),
        ("boots/s", f"{summary['boots_per_second']:.2f}"),
        (
            "requests (requests/s)",
            f"{summary['requests']} ({summary['requests_per_second']:.1f}/s)",
        ),
        (
            "latency p50 / p95 / p99 / max",
            f"{latency['p50']:.1f} / {latency['p95']:.1f} / {latency['p99']:.1f} / "
            f"{latency['max']:.1f} ms",
        ),
        ("failed attempts (retried)", str(summary["failed_requests"])),
        ("warnings", str(summary["warnings"])),
    ]
    for name, value in rows:
        table.add_row(name, value)
    for reason, count in sorted(summary["failures"].items()):
        table.add_row(f"failed boots: {escape(reason)}", str(count), style="red")
    for reason, count in sorted(summary["request_errors"].items()):
        table.add_row(f"failed attempts: {escape(reason)}", str(count), style="yellow")
    console.print(table)


@app.command("storm")
@handle_errors
def storm(
    url: str = typer.Option(..., "--url", help="Boot server URL the phones get from DHCP."),
    phones: int = typer.Option(100, "--phones", min=1, max=1_000_000, help="Boots to run."),
    concurrency: int = typer.Option(
        50, "--concurrency", min=1, max=10_000, help="Phones booting at the same time."
    ),
    certs: Path | None = typer.Option(
        None,
        "--certs",
        help="Folder of <mac>.pem + <mac>.key device certificates (one phone per pair).",
    ),
    site: Path | None = typer.Option(
        None,
        "--site",
        help="A phoneprov site: its CA verifies the "
        "server and issues device certificates (kept in <site>/sim/).",
    ),
    ca: Path | None = typer.Option(None, "--ca", help="CA that verifies the HTTPS server."),
    stage: str = typer.Option("both", "--stage", help="updater, application or both."),
    model: str = typer.Option("VVX410", "--model", help="Phone model of every phone."),
    first_mac: str = typer.Option(
        FIRST_MAC,
        "--first-mac",
        help="MAC of the first phone (the others count up) when --certs is not given.",
    ),
    user: str | None = typer.Option(None, "--user", help="Digest/FTP user."),
    password: str | None = typer.Option(None, "--password", help="Digest/FTP password."),
    app_url: str | None = typer.Option(None, "--app-url", help="Application-stage URL override."),
    max_seconds: float = typer.Option(
        600.0,
        "--max-seconds",
        min=1.0,
        help="Stop after this long; unfinished boots count as failed.",
    ),
    rate: float | None = typer.Option(
        None,
        "--rate",
        min=0.01,
        help="Start at most this many boots per second (default: as many as --concurrency "
        "allows). Below the server's capacity, the latency is what phones see on a busy day.",
    ),
    output: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json."),
) -> None:
    """Boot many simulated phones at once; print rates, latency and failures by reason.

    Exit 0 when every boot completed, 1 otherwise.
    """
    if stage not in ("updater", "application", "both"):
        raise InputError(
            f"--stage {stage!r} is not updater, application or both",
            "Use --stage both, or application for an HTTPS-only server.",
        )
    if certs is not None and not certs.is_dir():
        raise InputError(f"--certs {certs} is not a folder", "Give the folder of <mac>.pem files.")
    members = _phones(phones, model, MacAddress.parse(first_mac), certs, site)
    cafile = ca if ca is not None else (site / "pki" / "ca.pem" if site is not None else None)
    options = StormOptions(
        url=url,
        phones=members,
        concurrency=concurrency,
        stage=cast(StageChoice, stage),
        cafile=str(cafile) if cafile is not None else None,
        user=user,
        password=password,
        app_url=app_url,
        max_seconds=max_seconds,
        rate=rate,
    )
    progress = Progress(
        TextColumn("boot storm"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    failed = 0
    with progress:
        task = progress.add_task("storm", total=phones, failed=0)

        def advance(report: BootReport) -> None:
            nonlocal failed
            failed += 0 if report.ok else 1
            progress.update(task, advance=1, failed=failed)

        result = asyncio.run(run_storm(options, advance))
    summary = result.summary()
    summary["url"] = url
    if output is OutputFormat.json:
        print_json(summary)
    else:
        _text(summary)
    if summary["boots_failed"]:
        raise typer.Exit(1)
