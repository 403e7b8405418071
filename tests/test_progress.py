"""The progress reporter: bars that name the current item on a terminal, plain timed lines elsewhere, and the line
that ends a training (how many epochs, and why it stopped), fed by `student.distill`'s on_epoch hook."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from rich.console import Console

from partdistill_cli.knowledge import Knowledge
from partdistill_cli.progress import Reporter, seconds_text
from partdistill_cli.student import DistillConfig, distill

SMALL = DistillConfig(k=8, widths=(16,), global_dim=16, head=(16,), points_per_shape=64, batch=1, min_epoch_steps=1,
                      min_forward_epochs=2, max_forward_epochs=5, backward_epochs=2, tta=1)  # fmt: skip


def console(terminal: bool) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=terminal, width=200, highlight=False), buffer


def test_plain_lines_say_each_item_with_its_time_and_no_bar_is_drawn():
    con, buffer = console(terminal=False)
    reporter = Reporter(console=con)
    assert not reporter.live
    with reporter:
        level = reporter.level("shapes", 2)
        level.start("a.obj", "teaching")
        level.done("a.obj", 12.34, "done")
        level.start("b.obj")
        level.done("b.obj", 75, "failed at load: b.obj: the file is empty")
    assert buffer.getvalue().splitlines() == [
        "[1/2] a.obj: done (12 s)",
        "[2/2] b.obj: failed at load: b.obj: the file is empty (1 min 15 s)",
    ]


def test_live_bars_name_the_item_being_worked_on_with_an_eta():
    con, buffer = console(terminal=True)
    reporter = Reporter(console=con)
    assert reporter.live
    with reporter:
        level = reporter.level("methods", 3)
        level.start("forward · chair", "training")
        (task,) = reporter._bars.tasks
        assert task.description == "methods: forward · chair" and task.fields["status"] == "training"
        assert task.completed == 0  # the label names the item in progress, not the last one finished
        level.done("forward · chair", 3.0)
        assert task.completed == 1
        reporter._bars.refresh()
    drawn = buffer.getvalue()
    assert "methods: forward · chair" in drawn and "eta" in drawn
    assert "[1/3]" not in drawn  # no plain lines on a terminal


def test_a_disabled_reporter_says_nothing():
    con, buffer = console(terminal=True)
    reporter = Reporter(enabled=False, console=con)
    with reporter, reporter.training(SMALL, "forward") as training:
        training.on_epoch(1, 7, 0.5, "forward")
        reporter.level("shapes", 1).done("a", 1.0)
        reporter.say("hello")
    assert buffer.getvalue() == "" and reporter.last_training == "distilled 1 epoch (stopped when the loss flattened)"


@pytest.mark.parametrize(
    ("config", "mode", "epochs", "expected"),
    [
        (SMALL, "forward", ["forward"] * 3, "distilled 3 epochs (stopped when the loss flattened)"),
        (SMALL, "forward", ["forward"] * 5, "distilled 5 epochs (reached the maximum of 5)"),
        (replace(SMALL, min_forward_epochs=4, max_forward_epochs=4), "forward", ["forward"] * 4,
         "distilled 4 epochs (a fixed schedule)"),
        (SMALL, "full", ["forward"] * 3 + ["backward"] * 2,
         "distilled 5 epochs (3 forward, stopped when the loss flattened; then 2 backward)"),
    ],
)  # fmt: skip
def test_the_training_line_says_how_many_epochs_ran_and_why_it_stopped(config, mode, epochs, expected):
    con, buffer = console(terminal=False)
    reporter = Reporter(console=con)
    with reporter.training(config, mode) as training:
        for epoch, phase in enumerate(epochs, 1):
            training.on_epoch(epoch, 7, 0.1, phase)
    assert reporter.last_training == expected
    (line,) = buffer.getvalue().splitlines()
    assert line.startswith(expected + " in ")


def test_resumed_and_fine_tuned_trainings_are_told_apart():
    reporter = Reporter(enabled=False)
    with reporter.training(SMALL, "full") as training:
        training.on_epoch(6, 7, 0.1, "backward")  # resumed from a checkpoint after epoch 5
        training.on_epoch(7, 7, 0.1, "backward")
    assert reporter.last_training == "distilled 7 epochs (resumed from a checkpoint in the backward phase)"
    with reporter.training(SMALL, "forward", fine_tune=True) as training:
        training.on_epoch(1, 1, 0.1, "forward")
    assert reporter.last_training == "fine-tuned 1 epoch"


def test_distill_calls_on_epoch_once_per_epoch():
    rng = np.random.default_rng(0)
    from partdistill_cli.shapes import from_points

    shape = from_points(rng.normal(size=(200, 3)), None, "blob")
    halves = [np.flatnonzero(shape.points[:, 0] < 0), np.flatnonzero(shape.points[:, 0] >= 0)]
    knowledge = Knowledge(np.array([0, 1]), np.array([0.9, 0.8], np.float32), np.zeros(2, np.int64),
                          np.array([0, len(halves[0]), 200]), np.concatenate(halves), 200, ["left", "right"])  # fmt: skip
    calls = []
    student = distill([(shape, knowledge)], SMALL, mode="full", show_progress=False,
                      on_epoch=lambda *args: calls.append(args))  # fmt: skip
    epochs = student.history["epochs"]
    forward = student.history["backward_epoch"]
    assert [c[0] for c in calls] == list(range(1, epochs + 1))
    assert {c[1] for c in calls} == {SMALL.max_forward_epochs + SMALL.backward_epochs}
    assert [c[3] for c in calls] == ["forward"] * forward + ["backward"] * SMALL.backward_epochs
    assert [c[2] for c in calls] == pytest.approx(student.history["loss"])


def test_seconds_read_as_people_read_them():
    assert [seconds_text(s) for s in (0.04, 9.96, 42, 185, 7620)] == [
        "0.0 s",
        "10 s",
        "42 s",
        "3 min 05 s",
        "2 h 07 min",
    ]


def two_halves(shape) -> Knowledge:
    """Knowledge that calls the x < 0 half of `shape` "left" and the rest "right", one unit each."""
    halves = [np.flatnonzero(shape.points[:, 0] < 0), np.flatnonzero(shape.points[:, 0] >= 0)]
    return Knowledge(np.array([0, 1]), np.array([0.9, 0.8], np.float32), np.zeros(2, np.int64),
                     np.array([0, len(halves[0]), shape.n_points]), np.concatenate(halves), shape.n_points,
                     ["left", "right"])  # fmt: skip


@pytest.mark.parametrize("terminal", [False, True])
def test_segment_says_how_many_epochs_ran_when_training_stopped_early(monkeypatch, tmp_path, terminal):
    import partdistill_cli.student as student_pkg
    from partdistill_cli.config import SegmentConfig
    from partdistill_cli.pipeline import Pipeline
    from partdistill_cli.shapes import from_points

    shape = from_points(np.random.default_rng(0).normal(size=(200, 3)), None, "blob")
    early = replace(SMALL, min_forward_epochs=2, max_forward_epochs=40, backward_epochs=1)
    con, buffer = console(terminal)
    pipeline = Pipeline(
        SegmentConfig(method="forward", device="cpu", cache_dir=tmp_path), progress=Reporter(console=con)
    )
    monkeypatch.setattr(pipeline, "distill_config", lambda: early)
    trained = []
    distill_ = student_pkg.distill
    monkeypatch.setattr(student_pkg, "distill", lambda *a, **kw: trained.append(distill_(*a, **kw)) or trained[-1])
    labels = pipeline.label(shape, two_halves(shape), teacher_name="t")
    assert labels.point_labels.shape == (200,)
    epochs = trained[0].history["epochs"]
    assert 2 <= epochs < 40  # the loss flattened long before the maximum
    lines = buffer.getvalue().splitlines()
    assert lines[-1].startswith(f"distilled {epochs} epochs (stopped when the loss flattened) in ")
    if terminal:  # the epochs' bar was drawn, and is gone once the line says how it ended
        assert "student epochs" in buffer.getvalue() and "forward loss" in buffer.getvalue()
    else:
        assert lines == [lines[-1]]  # no bar in a log, just the line


def test_evaluate_names_the_item_in_progress_and_logs_each_with_its_time(monkeypatch):
    import partdistill_cli.evaluate as evaluate
    from partdistill_cli.pipeline import RenderSettings
    from partdistill_cli.procedural import procedural_dataset
    from partdistill_cli.teachers.simulated import load_noise

    data = procedural_dataset(["mug", "chair"], per_category=1, seed=0, n_points=256)
    config = evaluate.EvalConfig(["vote", "vote-fill"], load_noise("clean"), "clean", RenderSettings(2, 64))

    con, buffer = console(terminal=False)
    evaluate.run_evaluation(data, config, progress=Reporter(console=con))
    lines = buffer.getvalue().splitlines()
    assert [line.split(": ")[0] for line in lines] == [
        "[1/2] mug_0",
        "[2/2] chair_0",
        "[1/4] vote · mug (1 shape)",
        "[2/4] vote · chair (1 shape)",
        "[3/4] vote-fill · mug (1 shape)",
        "[4/4] vote-fill · chair (1 shape)",
    ]
    assert all(line.endswith(" s)") for line in lines) and "mIoU" in lines[-1]

    # Live: while a method runs, the methods bar names that very (method, category) and counts those before it.
    con, _ = console(terminal=True)
    reporter = Reporter(console=con)
    seen = []

    def watched(method):
        def run(*args, **kwargs):
            task = reporter._bars.tasks[-1]
            seen.append((method, task.description, task.completed))
            return original[method](*args, **kwargs)

        return run

    original = dict(evaluate.METHODS)
    for method in ("vote", "vote-fill"):
        monkeypatch.setitem(evaluate.METHODS, method, watched(method))
    with reporter:
        evaluate.run_evaluation(data, config, progress=reporter)
    assert seen == [
        ("vote", "methods: vote · mug (1 shape)", 0),
        ("vote", "methods: vote · chair (1 shape)", 1),
        ("vote-fill", "methods: vote-fill · mug (1 shape)", 2),
        ("vote-fill", "methods: vote-fill · chair (1 shape)", 3),
    ]


def test_evaluate_draws_the_epochs_of_every_student_it_trains(monkeypatch):
    import partdistill_cli.evaluate as evaluate
    from partdistill_cli import progress as progress_module
    from partdistill_cli.pipeline import RenderSettings
    from partdistill_cli.procedural import procedural_dataset
    from partdistill_cli.teachers.simulated import load_noise

    seen = []
    real = progress_module.Training.on_epoch

    def watched(self, epoch, max_epochs, loss, phase):
        real(self, epoch, max_epochs, loss, phase)
        task = self.reporter._bars.tasks[-1]  # the newest bar: this student's
        seen.append((task.description, int(task.completed), phase))

    monkeypatch.setattr(progress_module.Training, "on_epoch", watched)
    data = procedural_dataset(["mug"], per_category=2, seed=0, n_points=256)
    fixed = {**SMALL.to_dict(), "min_forward_epochs": 2, "max_forward_epochs": 2, "backward_epochs": 1}
    config = evaluate.EvalConfig(
        ["forward", "full"], load_noise("clean"), "clean", RenderSettings(2, 64), student=fixed
    )
    con, _ = console(terminal=True)
    reporter = Reporter(console=con)
    with reporter:
        evaluate.run_evaluation(data, config, progress=reporter)
    # Per shape: the forward student's two epochs, then the backward epoch that makes `full` of it.
    per_shape = [("student epochs", 1, "forward"), ("student epochs", 2, "forward"), ("student epochs", 1, "backward")]
    assert seen == per_shape * 2
