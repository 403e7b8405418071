"""The `partdistill` command line. Thin: each command lives in `partdistill_cli.commands` and imports its
heavy dependencies (torch, open3d, transformers) only when it runs, so that `--help` starts fast."""

from __future__ import annotations

import sys

import typer

from partdistill_cli import __version__
from partdistill_cli.commands import doctor, evaluate, export, render, segment, train

app = typer.Typer(
    name="partdistill",
    help="Segment 3D shapes into named parts with no 3D labels, by distilling 2D vision-language knowledge "
    "into a 3D student network (PartDistill).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        print(f"partdistill {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Segment 3D shapes into named parts with no 3D labels (PartDistill)."""


app.command("segment")(segment.segment)
app.command("render")(render.render)
app.command("evaluate")(evaluate.evaluate)
app.command("train-category")(train.train_category)
app.command("export")(export.export)
app.command("doctor")(doctor.doctor)


def main() -> None:
    """Console-script entry point: user errors become one line on stderr and exit code 1."""
    from partdistill_cli.errors import UserError

    try:
        app()
    except UserError as exc:
        from partdistill_cli.console import console

        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        sys.exit(1)
    except (KeyboardInterrupt, ImportError) as exc:
        if isinstance(exc, ImportError) and not _interrupted(exc):
            raise
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def _interrupted(exc: BaseException) -> bool:
    """Whether `exc` was caused by a Ctrl-C: pybind11 modules (open3d, torch) turn a KeyboardInterrupt during
    their import into `ImportError: initialization failed` raised from it."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


if __name__ == "__main__":
    main()
