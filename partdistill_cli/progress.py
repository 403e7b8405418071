"""Progress of long work, the one reporter of `segment` (one shape or a batch), `train-category` and `evaluate`.

On a terminal: a rich bar per level, the items of the run (shapes, methods) and below it the epochs of the
student in training, each with its ETA and the item being worked on now (not the last one finished). Anywhere
else (a log file, CI, a cluster job) no bars, which would print nothing useful: one plain line per finished
item with its time, so that an hour-long log stays readable. Either way a training ends with one line saying
how many epochs ran and why it stopped.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING

from partdistill_cli.console import counted

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from partdistill_cli.student import DistillConfig


def seconds_text(seconds: float) -> str:
    """A duration as people read it: "0.4 s", "12 s", "3 min 05 s", "2 h 07 min"."""
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Reporter:
    """Reports the progress of a run on the console (stderr).

    Args:
        enabled: report at all (off: every call is silent, nothing is drawn).
        live: draw bars; default: when the console is a terminal.
        announce_training: print the line that ends each training (off where the caller folds it into its
            own line, as batch segment does; it is kept in `last_training` either way).
        console: the rich console to draw on (default: partdistill's stderr console).

    Use it as a context manager around the work when it has levels (`level`); `training` starts and stops the
    bars by itself when nothing else has.
    """

    def __init__(
        self,
        enabled: bool = True,
        *,
        live: bool | None = None,
        announce_training: bool = True,
        console: Console | None = None,
    ) -> None:
        if console is None:
            from partdistill_cli.console import console
        self.console = console
        self.enabled = enabled
        self.live = enabled and (console.is_terminal if live is None else live)
        self.announce_training = announce_training
        self.last_training: str | None = None
        self._bars: Progress | None = None
        self._depth = 0

    def __enter__(self) -> Reporter:
        if self.live and self._depth == 0:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bars = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[status]}"),
                console=self.console,
                transient=True,
            )
            self._bars.start()
        self._depth += 1
        return self

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._depth -= 1
        if self._depth == 0 and self._bars is not None:
            self._bars.stop()
            self._bars = None

    def say(self, message: str) -> None:
        """Print one line (above the bars while they are drawn)."""
        if self.enabled:
            self.console.print(message, soft_wrap=True, highlight=False)

    def level(self, what: str, total: int) -> Level:
        """A level of `total` items (shapes, methods), e.g. `level("shapes", 20)`."""
        return Level(self, what, total)

    def training(self, config: DistillConfig, mode: str, fine_tune: bool = False) -> Training:
        """The epochs of one student trained with `config` in `mode` ("forward" | "full"); `fine_tune` when it
        continues a trained student. Pass its `on_epoch` to `student.distill`."""
        return Training(self, config, mode, fine_tune)

    def _add(self, description: str, total: int) -> TaskID | None:
        return self._bars.add_task(description, total=total, status="") if self._bars is not None else None

    def _update(self, task: TaskID | None, **fields) -> None:
        if task is not None and self._bars is not None:
            self._bars.update(task, **fields)

    def _remove(self, task: TaskID | None) -> None:
        if task is not None and self._bars is not None:
            self._bars.remove_task(task)


class Level:
    """`total` items worked through one after another (or several at once on workers).

    Live, the bar's label names the item being worked on (`start`) and its stage (`stage`); `done` advances it.
    Plain, `done` prints "[i/total] item: note (time)".
    """

    def __init__(self, reporter: Reporter, what: str, total: int) -> None:
        self.reporter = reporter
        self.what = what
        self.total = total
        self.count = 0
        self._task = reporter._add(what, total)

    def start(self, item: str, stage: str = "") -> None:
        """`item` is being worked on now (live: the bar's label says so)."""
        self.reporter._update(self._task, description=f"{self.what}: {item}", status=stage)

    def stage(self, stage: str) -> None:
        """The stage the current item (or the work in flight) is in."""
        self.reporter._update(self._task, status=stage)

    def done(self, item: str, seconds: float | None = None, note: str = "done") -> None:
        """`item` is finished (`note`: how it ended, e.g. "done", "failed at load: ...")."""
        self.count += 1
        self.reporter._update(self._task, completed=self.count)
        if not self.reporter.live:
            took = f" ({seconds_text(seconds)})" if seconds is not None else ""
            self.reporter.say(f"[{self.count}/{self.total}] {item}: {note}{took}")


class Training:
    """The epochs of one student: a bar while it trains (live) and, when it ends, one line saying how many
    epochs ran, why it stopped and how long it took (the first two also kept in `reporter.last_training`)."""

    def __init__(self, reporter: Reporter, config: DistillConfig, mode: str, fine_tune: bool) -> None:
        self.reporter = reporter
        self.config = config
        self.mode = mode
        self.fine_tune = fine_tune
        self.last_epoch = 0
        self.first_backward: int | None = None
        self.resumed_in_backward = False
        self._task = None
        self._started = 0.0

    def __enter__(self) -> Training:
        self.reporter.__enter__()
        self._started = time.perf_counter()
        total = self.config.max_forward_epochs + (self.config.backward_epochs if self.mode == "full" else 0)
        self._task = self.reporter._add("fine-tuning" if self.fine_tune else "student epochs", max(total, 1))
        return self

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.reporter._remove(self._task)
        self.reporter.__exit__(kind, exc, tb)
        if kind is None:
            self.reporter.last_training = self.summary()
            if self.reporter.announce_training:
                self.reporter.say(f"{self.summary()} in {seconds_text(time.perf_counter() - self._started)}")

    def on_epoch(self, epoch: int, max_epochs: int, loss: float, phase: str) -> None:
        """The `student.distill` hook: epoch `epoch` of at most `max_epochs` ended with `loss` in `phase`."""
        if phase == "backward" and self.first_backward is None:
            self.first_backward = epoch
            # A training resumed from a checkpoint inside its backward phase never reports its forward epochs.
            self.resumed_in_backward = self.last_epoch == 0 and epoch > 1
        self.last_epoch = epoch
        self.reporter._update(self._task, completed=epoch, total=max_epochs, status=f"{phase} loss {loss:.4f}")

    def summary(self) -> str:
        """How many epochs ran and why the forward phase stopped, e.g. "distilled 14 epochs (6 forward, stopped
        when the loss flattened; then 8 backward)"."""
        if self.fine_tune:
            return f"fine-tuned {counted(self.last_epoch, 'epoch')}"
        if self.resumed_in_backward:
            return f"distilled {counted(self.last_epoch, 'epoch')} (resumed from a checkpoint in the backward phase)"
        forward = self.last_epoch if self.first_backward is None else self.first_backward - 1
        backward = self.last_epoch - forward
        lo, hi = self.config.min_forward_epochs, self.config.max_forward_epochs
        if lo == hi:
            why = "a fixed schedule"
        elif forward < hi:
            why = "stopped when the loss flattened"
        else:
            why = f"reached the maximum of {hi}"
        if self.mode != "full":
            return f"distilled {counted(forward, 'epoch')} ({why})"
        return f"distilled {counted(forward + backward, 'epoch')} ({forward} forward, {why}; then {backward} backward)"


__all__ = ["Level", "Reporter", "Training", "seconds_text"]
