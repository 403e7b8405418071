"""The `partdistill` command line. Thin: each command lives in `partdistill_cli.commands` and imports its
heavy dependencies (torch, open3d, transformers) only when it runs, so that `--help` starts fast."""

from __future__ import annotations

import re
import sys

import typer
from typer.core import TyperCommand

from partdistill_cli import __version__
from partdistill_cli.commands import doctor, evaluate, export, render, segment, train


class Command(TyperCommand):
    """A command whose help shows no type after a flag (a flag takes no value: typer prints `<bool>`, which
    invites `--preview true`, which is refused) and names its arguments in capitals, as the help text does
    (SHAPE; typer's usage line would say `{shape}`)."""

    # typer carries its own copy of click, so parameters are told apart by their kind, not their class.
    def get_params(self, ctx: typer.Context) -> list:
        params = super().get_params(ctx)
        for param in params:
            if param.param_type_name == "option" and param.is_flag and not param.count:
                param.metavar = ""
            elif param.param_type_name == "argument" and param.metavar is None:
                param.metavar = param.name.upper()
        return params

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        # "{SHAPE}" and, for an argument taking several values, "{SHAPE}..." lose their braces.
        return [re.sub(r"^\{(.*)\}(\.\.\.)?$", r"\1\2", piece) for piece in super().collect_usage_pieces(ctx)]


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


app.command("segment", cls=Command)(segment.segment)
app.command("render", cls=Command)(render.render)
app.command("evaluate", cls=Command)(evaluate.evaluate)
app.command("train-category", cls=Command)(train.train_category)
app.command("export", cls=Command)(export.export)
app.command("doctor", cls=Command)(doctor.doctor)


def main() -> None:
    """Console-script entry point: user errors become one line on stderr and exit code 1; a Ctrl-C becomes one
    line saying what was kept, and exit code 130. Either way, output folders this run made and left empty are
    removed."""
    from partdistill_cli.errors import UserError
    from partdistill_cli.io_utils import RECORD

    RECORD.start()
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
    finally:
        RECORD.stop()


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
