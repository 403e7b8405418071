"""`partdistill export`."""

from __future__ import annotations

import typer


def export() -> None:
    """Not available in this version yet (see the project's issues)."""
    from partdistill_cli.console import console

    console.print("[yellow]partdistill export is not available in this version yet.[/]")
    raise typer.Exit(2)
