"""One rich console (stderr, so that stdout stays clean for data) and a progress bar factory."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True, highlight=False)


def progress(transient: bool = False) -> Progress:
    """A progress bar showing description, bar, done/total and elapsed time."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=transient,
    )


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and `noun` in agreement, thousands separated: "1 view", "3 views", "10,000 points", "2 bodies" (with
    `plural`)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
