"""CLI error output: messages and hints print as written (no rich markup, no emoji codes)."""

from __future__ import annotations

import pytest

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
