"""CLI error output: messages and hints print as written (no rich markup, no emoji codes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from phoneprov.cli.app import app
from phoneprov.cli.common import fail
from phoneprov.errors import PhoneprovError


def test_error_and_hint_print_literally(capsys: pytest.CaptureFixture[str]) -> None:
    error = PhoneprovError(
        "certificate 'Root [bold]x[/bold]' is not a device certificate",
        "Write the MAC as 00:04:f2:ab:cd:ef or 0004f2abcdef.",
    )
    exit_ = fail(error)
    err = capsys.readouterr().err
    assert "error: certificate 'Root [bold]x[/bold]' is not a device certificate" in err
    assert "hint: Write the MAC as 00:04:f2:ab:cd:ef or 0004f2abcdef." in err
    assert exit_.exit_code == error.exit_code != 0


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["cert", "inspect", "/missing.pem"], id="cert-inspect-missing"),
        pytest.param(["cert", "lint", "/missing.pem"], id="cert-lint-missing"),
        pytest.param(["cert", "inspect"], id="cert-inspect-nothing"),
        pytest.param(["logs", "analyze", "/missing.log"], id="logs-missing"),
        pytest.param(["firmware", "list", "--site", "/nonexistent"], id="firmware-no-site"),
        pytest.param(["doctor", "--site", "/nonexistent"], id="doctor-no-site"),
        pytest.param(["dhcp", "options", "--site", "/nonexistent"], id="dhcp-no-site"),
        pytest.param(["serve", "--site", "/nonexistent"], id="serve-no-site"),
    ],
)
def test_every_failing_command_prints_an_error_and_a_hint(args: list[str]) -> None:
    # The README promises a reason and a hint for every error, and a non-zero exit.
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code != 0, result.stdout
    assert "error: " in result.stderr and "hint: " in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_error_without_its_own_hint_points_at_help(capsys: pytest.CaptureFixture[str]) -> None:
    fail(PhoneprovError("something [ftp] went wrong at :ab:"))
    err = capsys.readouterr().err
    assert "error: something [ftp] went wrong at :ab:" in err
    assert "hint: Run `phoneprov --help` for what the command needs." in err


def test_error_without_a_hint_inside_a_command_names_that_commands_help() -> None:
    # The command path comes from typer's own (vendored) click context; click's separate
    # context stack is always empty under typer, which made every hint say `phoneprov`.
    tool = typer.Typer()

    @tool.command()
    def first() -> None:
        """A command."""

    @tool.command("sync-now")
    def sync_now() -> None:
        """Another command, which fails."""
        raise fail(PhoneprovError("the phone did not answer"))

    result = CliRunner().invoke(tool, ["sync-now"], prog_name="phoneprov")
    assert result.exit_code != 0
    assert "hint: Run `phoneprov sync-now --help` for what the command needs." in result.stderr


def test_log_findings_print_user_text_literally(tmp_path: Path) -> None:
    # A log line carries text the phone (or an attacker on its network) chose.
    log = tmp_path / "a.log"
    log.write_text(
        "0727210306|copy |4|00|Download of '[bold]x:ab:.cfg' failed on attempt 1 [ftp]\n"
    )
    result = CliRunner().invoke(app, ["logs", "analyze", str(log)], env={"COLUMNS": "300"})
    assert "'[bold]x:ab:.cfg'" in result.stdout and "[ftp]" in result.stdout
