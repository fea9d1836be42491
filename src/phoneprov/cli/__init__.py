"""Command line: typer + rich, thin, one module per verb group."""
