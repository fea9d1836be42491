"""Site commands: init, serve, trust."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the site commands to the top-level app."""
