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
    """Console-script entry point: user errors become one line on stderr and exit code 1; a Ctrl-C becomes one
    line saying what was kept, and exit code 130. Either way, output folders this run made and left empty are
    removed."""
    from partdistill_cli.errors import UserError
    from partdistill_cli.io_utils import RECORD

    RECORD.reset()
    try:
        app()
    except UserError as exc:
        from partdistill_cli.console import console

        RECORD.remove_empty_outputs()
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        sys.exit(1)
    except SystemExit as exc:
        # typer turns a KeyboardInterrupt into a silent exit 130 before it gets here.
        if exc.code == 130 and _interrupted(exc):
            _report_interrupt()
        raise
    except (KeyboardInterrupt, ImportError) as exc:
        if isinstance(exc, ImportError) and not _interrupted(exc):
            raise
        _report_interrupt()
        sys.exit(130)


def _report_interrupt() -> None:
    """One line on stderr: that the run was interrupted, and the output files it had already put in place."""
    from partdistill_cli.io_utils import RECORD

    RECORD.remove_empty_outputs()
    kept = RECORD.written_outputs()
    if not kept:
        print("interrupted; nothing was written", file=sys.stderr)
        return
    from partdistill_cli.console import counted

    shown = ", ".join(map(str, kept[:3])) + (f" and {len(kept) - 3} more" if len(kept) > 3 else "")
    print(f"interrupted; kept {counted(len(kept), 'file')} written before it: {shown}", file=sys.stderr)


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
