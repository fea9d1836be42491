"""``phoneprov rollout``: firmware rollouts in waves that halt themselves; and
``phoneprov firmware compliance``."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import typer
from rich.markup import escape

from phoneprov.cli.common import SiteOption, console, handle_errors, print_json, site_path
from phoneprov.config import Settings, load_settings
from phoneprov.protocols.rollout_plan import DEFAULT_WAVES, PhoneState, Plan, RolloutState
from phoneprov.provisioning.compliance import ComplianceReport, firmware_compliance
from phoneprov.provisioning.rollouts import (
    RolloutView,
    abort_rollout,
    check_rollout,
    halt_rollout,
    list_rollouts,
    plan_rollout,
    resume_rollout,
    rollout_status,
    start_rollout,
)

app = typer.Typer(
    help="Move phones to a firmware version wave by wave; a wave that goes wrong halts it.",
    no_args_is_help=True,
)
NameArgument = typer.Argument(..., help="The rollout's name (letters, digits, _ . -).")
JsonOption = typer.Option(False, "--json", help="The rollout as JSON.")
ReasonOption = typer.Option("", "--reason", help="Why, for the record.")
STATES = tuple(state.value for state in PhoneState)


def _split(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _clock(when: float | None) -> str:
    return dt.datetime.fromtimestamp(when).strftime("%H:%M:%S") if when else "-"


def _say(text: str) -> None:
    console.print(escape(text), highlight=False)


def _show(view: RolloutView, as_json: bool, settings: Settings, *, phones: bool = False) -> None:
    if as_json:
        print_json(view.to_json())
        return
    r, plan = view.record, view.plan
    waves = f"{view.waves} wave{'s' if view.waves != 1 else ''}"
    _say(f"rollout {r.name}: {r.version} for {len(view.phones)} phones in {waves}, {r.state}")
    deadline = plan.deadline or settings.fleet.report_deadline
    if r.wave and r.wave_started:
        until = (
            f"; its phones have until {_clock(r.wave_started + deadline)} to report {r.version}"
            if r.state == RolloutState.RUNNING
            else ""
        )
        _say(f"wave {r.wave} started {_clock(r.wave_started)}{until}; checked {_clock(r.checked)}")
    _say(f"  {'wave':<6}{'phones':>7}" + "".join(f"{s:>9}" for s in STATES))
    for number in range(1, view.waves + 1):
        counts = view.counts(number)
        total = sum(counts.values())
        _say(f"  {number:<6}{total:>7}" + "".join(f"{counts[s]:>9}" for s in STATES))
    canary = f"; canary group {plan.canary_group}" if plan.canary_group else ""
    _say(
        f"waves {','.join(plan.waves)}{canary}; window {plan.window}; deadline {deadline:g} s; "
        f"{plan.max_failures} failed phones allowed per wave"
    )
    if r.reason:
        _say(f"reason: {r.reason}")
    shown = [p for p in view.phones if phones or p.state in (PhoneState.FAILED, PhoneState.MOVED)]
    for p in shown:
        _say(f"  {p.mac}  wave {p.wave}  {p.state:<8} {p.detail}".rstrip())
    if r.state == RolloutState.PLANNED:
        _say(f"start it with: phoneprov rollout start {r.name}")


def _settings(site: Path | None) -> Settings:
    return load_settings(site_path(site))


@app.command("plan")
@handle_errors
def plan(
    name: str = NameArgument,
    version: str = typer.Option(..., help="The version to move the phones to (in the catalog)."),
    models: str = typer.Option("", help="Only phones of these models, e.g. VVX410,VVX500."),
    groups: str = typer.Option("", help="Only phones of these inventory groups."),
    sites: str = typer.Option("", help="Only phones of these inventory sites."),
    canary_group: str = typer.Option("", help="This group's phones form the first wave."),
    waves: str = typer.Option(
        ",".join(DEFAULT_WAVES),
        help="Cumulative wave sizes over the other phones: counts or shares, ending at 100%.",
    ),
    window: str = typer.Option(
        "always", help="When waves may start: HH:MM-HH:MM server time (may cross midnight)."
    ),
    deadline: float = typer.Option(
        0.0, help="Seconds a wave's phones have to report it (0: \\[fleet] report_deadline)."
    ),
    max_failures: int = typer.Option(
        0, min=0, help="Failed phones a wave may have without halting the rollout."
    ),
    as_json: bool = JsonOption,
    site: Path | None = SiteOption,
) -> None:
    """Plan a rollout: which phones, in which waves. Nothing changes until `rollout start`."""
    wanted = Plan(
        version=version,
        models=_split(models),
        groups=_split(groups),
        sites=_split(sites),
        canary_group=canary_group,
        waves=_split(waves),
        window=window,
        deadline=deadline,
        max_failures=max_failures,
    )
    settings = _settings(site)
    _show(plan_rollout(settings, name, wanted), as_json, settings, phones=True)


@app.command("start")
@handle_errors
def start(
    name: str = NameArgument, as_json: bool = JsonOption, site: Path | None = SiteOption
) -> None:
    """Start a planned rollout: its first wave is offered the version and restarted."""
    settings = _settings(site)
    _show(start_rollout(settings, name), as_json, settings)


@app.command("status")
@handle_errors
def status(
    name: str = typer.Argument("", help="A rollout; all of them when left out."),
    wait: float = typer.Option(
        0.0, help="Wait up to this many seconds for the rollout to complete or halt."
    ),
    phones: bool = typer.Option(False, "--phones", help="Every phone, not only the ones to watch."),
    as_json: bool = JsonOption,
    site: Path | None = SiteOption,
) -> None:
    """Where a rollout stands, as the server's last check left it (`rollout check` checks now).

    With --wait, exit status 0 once it completed, 1 when it halted, was aborted or is
    still running when the time is up.
    """
    settings = _settings(site)
    if not name:
        views = list_rollouts(settings)
        if as_json:
            print_json([v.to_json() for v in views])
        elif not views:
            _say("no rollouts yet: plan one with `phoneprov rollout plan NAME --version V`")
        for v in [] if as_json else views:
            r = v.record
            _say(f"{r.name:<24} {r.version:<16} {r.state:<10} wave {r.wave} of {v.waves}")
        return
    view = rollout_status(settings, name)
    until = time.monotonic() + wait
    while view.record.state == RolloutState.RUNNING and time.monotonic() < until:
        time.sleep(min(settings.fleet.poll_interval, 1.0))
        view = rollout_status(settings, name)
    _show(view, as_json, settings, phones=phones)
    if wait and view.record.state != RolloutState.COMPLETED:
        raise typer.Exit(1)


@app.command("check")
@handle_errors
def check(
    name: str = NameArgument, as_json: bool = JsonOption, site: Path | None = SiteOption
) -> None:
    """Judge a running rollout now, as `phoneprov serve` does every \\[fleet] poll_interval:
    halt it on a breach, or start its next wave once the wave is healthy."""
    settings = _settings(site)
    _show(check_rollout(settings, name), as_json, settings)


@app.command("halt")
@handle_errors
def halt(
    name: str = NameArgument,
    reason: str = ReasonOption,
    as_json: bool = JsonOption,
    site: Path | None = SiteOption,
) -> None:
    """Stop a running rollout: phones of waves not started stay on their old version."""
    settings = _settings(site)
    _show(halt_rollout(settings, name, reason), as_json, settings)


@app.command("resume")
@handle_errors
def resume(
    name: str = NameArgument, as_json: bool = JsonOption, site: Path | None = SiteOption
) -> None:
    """Continue a halted rollout; the failed phones of its wave are offered the version again."""
    settings = _settings(site)
    _show(resume_rollout(settings, name), as_json, settings)


@app.command("abort")
@handle_errors
def abort(
    name: str = NameArgument,
    reason: str = ReasonOption,
    as_json: bool = JsonOption,
    site: Path | None = SiteOption,
) -> None:
    """End a rollout: every phone is offered its group's or model's version again (phones
    that moved go back at their next boot; `device restart` makes that now)."""
    settings = _settings(site)
    _show(abort_rollout(settings, name, reason), as_json, settings)


def register_compliance(firmware_app: typer.Typer) -> None:
    """Add ``compliance`` to the ``firmware`` command group."""

    @firmware_app.command("compliance")
    @handle_errors
    def compliance(
        output: str = typer.Option(
            "table", "--format", help="table, csv or json.", case_sensitive=False
        ),
        phones: bool = typer.Option(False, "--phones", help="One line per phone (table, csv)."),
        site: Path | None = SiteOption,
    ) -> None:
        """Which version each phone runs against what it is assigned, per model and group."""
        report = firmware_compliance(_settings(site))
        kind = output.lower()
        if kind == "json":
            print_json(report.to_json())
        elif kind == "csv":
            typer.echo(report.to_csv(phones=phones), nl=False)
        elif kind == "table":
            _table(report, phones)
        else:
            raise typer.BadParameter(f"{output!r}: use table, csv or json", param_hint="--format")


def _table(report: ComplianceReport, phones: bool) -> None:
    if phones:
        for p in report.phones:
            _say(
                f"{p.mac}  {p.model:<10} {p.group or '-':<12} {p.status:<10} runs "
                f"{p.running or '-'}, assigned {p.assigned or '-'} ({p.source or 'nothing'})"
            )
        return
    _say(f"{'model':<10} {'group':<12} {'phones':>6} {'compliant':>9} {'behind':>6} "
         f"{'unknown':>7} {'unassigned':>10}  assigned / running")  # fmt: skip
    for r in report.rows:
        _say(
            f"{r.model:<10} {r.group or '-':<12} {r.phones:>6} {r.compliant:>9} {r.behind:>6} "
            f"{r.unknown:>7} {r.unassigned:>10}  {' '.join(r.assigned) or '-'} / "
            f"{' '.join(r.running) or '-'}"
        )
