"""`partdistill doctor`."""

from __future__ import annotations

import typer


def doctor() -> None:
    """Not available in this version yet (see the project's issues)."""
    from partdistill_cli.console import console

    console.print("[yellow]partdistill doctor is not available in this version yet.[/]")
    raise typer.Exit(2)
