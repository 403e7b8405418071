"""`partdistill train-category`."""

from __future__ import annotations

import typer


def train_category() -> None:
    """Not available in this version yet (see the project's issues)."""
    from partdistill_cli.console import console

    console.print("[yellow]partdistill train-category is not available in this version yet.[/]")
    raise typer.Exit(2)
