"""Evaluation harness: labeled data sets x methods -> metrics (DESIGN.md section 6).

Ground truth is read here and only here: the simulated teacher corrupts it into 2D knowledge, and the metrics
compare predictions with it. Methods only ever see the shape and its knowledge. With a real teacher
(`EvalConfig.teacher`), each shape is taught through the pipeline as `segment` teaches it (prompts from the
data set's part names and category, knowledge cached per shape), which is the paper's protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from partdistill_cli.knowledge import Knowledge, Labels
from partdistill_cli.metrics import coverage, part_ious
from partdistill_cli.parts import PartList
from partdistill_cli.pipeline import OTHER, Pipeline, RenderSettings, SegmentConfig, save_teach_result
from partdistill_cli.shapes import Shape, triangle_areas
from partdistill_cli.teachers.simulated import NoiseConfig, SimulatedTeacher
from partdistill_cli.vote import vote

if TYPE_CHECKING:
    from partdistill_cli.progress import Reporter

Protocol = Literal["per-shape", "category"]
# A method labels a group of shapes from their knowledge alone: the per-shape protocol calls it with one shape
# at a time, the category protocol with all shapes of a category at once.
# `overrides` are student settings (DistillConfig fields) that replace the defaults; `progress` (optional) shows
# the epochs of each student trained.
Method = Callable[[list[tuple[Shape, Knowledge]], int, "dict | None", "Reporter | None"], list[Labels]]


def _vote(items: list[tuple[Shape, Knowledge]], seed: int, overrides=None, progress=None) -> list[Labels]:
    return [vote(k) for _, k in items]


def _vote_fill(items: list[tuple[Shape, Knowledge]], seed: int, overrides=None, progress=None) -> list[Labels]:
    return [vote(k, s.points, fill=True) for s, k in items]


def _student_config(seed: int, overrides: dict | None):
    from partdistill_cli.student import DistillConfig

    return DistillConfig.from_dict({"seed": seed, **(overrides or {})})


def _distilled(items: list[tuple[Shape, Knowledge]], config, mode: str, progress: Reporter | None, init=None):
    """`student.distill` of `items`, its epochs shown by `progress` when given."""
    from partdistill_cli.student import distill

    if progress is None:
        return distill(items, config, mode=mode, init=init, show_progress=False)
    with progress.training(config, mode) as training:
        return distill(items, config, mode=mode, init=init, show_progress=False, on_epoch=training.on_epoch)


def _student(mode: str) -> Method:
    def run(
        items: list[tuple[Shape, Knowledge]], seed: int, overrides: dict | None = None, progress=None
    ) -> list[Labels]:
        student = _distilled(items, _student_config(seed, overrides), mode, progress)
        return [student.predict(s, knowledge=k) for s, k in items]

    return run


def _forward_then_full(
    items: list[tuple[Shape, Knowledge]], seed: int, overrides: dict | None = None, progress: Reporter | None = None
) -> tuple[list[Labels], list[Labels]]:
    """Both student methods from one training: `full` continues the `forward` student with backward
    distillation (what `full` does anyway after its forward phase), which halves the work of `--method all`."""
    from dataclasses import replace

    config = _student_config(seed, overrides)
    forward = _distilled(items, config, "forward", progress)
    backward_only = replace(config, min_forward_epochs=0, max_forward_epochs=0)
    full = _distilled(items, backward_only, "full", progress, init=forward)
    return [forward.predict(s, knowledge=k) for s, k in items], [full.predict(s, knowledge=k) for s, k in items]


METHODS: dict[str, Method] = {
    "vote": _vote,
    "vote-fill": _vote_fill,
    "forward": _student("forward"),
    "full": _student("full"),
}
# Methods whose result does not depend on which shapes are grouped together.
SHAPE_LOCAL = {"vote", "vote-fill"}


def expand_methods(spec: str) -> list[str]:
    """ "all" or a comma list -> method names, validated."""
    names = list(METHODS) if spec == "all" else [m.strip() for m in spec.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        raise ValueError(f"unknown method(s) {', '.join(unknown) or spec!r}; choose from all, {', '.join(METHODS)}")
    return names


@dataclass
class EvalConfig:
    """What `evaluate` runs: `methods` on shapes taught by `teacher`, seen with `settings`.

    `teacher` is "simulated" (ground truth corrupted with `noise`) or a vision-language teacher with its
    `weights` options, `threshold`, `device` and knowledge cache root `cache_dir` (as for `segment`).
    `other` adds the background part: "on", "off", or "auto" where a category's ground truth has points of
    no listed part (PartNetE). `student` holds student settings (`DistillConfig` fields) that replace the
    defaults of the student methods.
    """

    methods: list[str]
    noise: NoiseConfig
    noise_name: str = "default"
    settings: RenderSettings = field(default_factory=RenderSettings)
    protocol: Protocol = "per-shape"
    seed: int = 0
    other: Literal["auto", "on", "off"] = "auto"
    student: dict = field(default_factory=dict)
    teacher: str = "simulated"
    weights: dict[str, str] = field(default_factory=dict)
    threshold: float | None = None
    device: str = "auto"
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        self.segment_config()

    def segment_config(self) -> SegmentConfig:
        """The pipeline settings that teach the shapes (validated: ConfigError for a bad teacher setting)."""
        return SegmentConfig(
            teacher=self.teacher,
            weights=self.weights,
            threshold=self.threshold,
            render=self.settings,
            seed=self.seed,
            device=self.device,
            cache_dir=self.cache_dir,
        )

    def to_dict(self) -> dict:
        return {
            "student": dict(self.student),
            "methods": self.methods,
            "teacher": self.teacher,
            "noise": self.noise_name,
            "noise_config": self.noise.to_dict(),
            "render": self.settings.to_dict(),
            "protocol": self.protocol,
            "seed": self.seed,
            "other": self.other,
        }


def _use_other(config: EvalConfig, items) -> bool:
    # "auto": the data set itself says its part list is partial (PartNetE-style "no part" points exist), which
    # is a property of the task definition, not something a method learns from.
    if config.other == "auto":
        return any((ls.point_labels < 0).any() for ls in items)
    return config.other == "on"


def score_shape(
    pred: np.ndarray,
    gt: np.ndarray,
    parts: list[str],
    other_index: int | None,
    faces: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> dict:
    """Per-shape metrics; a prediction of the background part counts as "no part" (-1).

    Args:
        pred, gt: (N,) predicted / ground-truth labels of the evaluation points.
        parts: the data set's C part names (without the background part).
        other_index: label index of the background part in `pred`, or None.
        faces: for meshes, (F,) predicted and (F,) ground-truth face labels and (F,) face areas: adds
            `face_miou`, the surface-area-weighted IoU of the face labels (what a user's per-face output scores).
    `part_share` is each part's share of the ground-truth points (of the surface, for meshes).
    """
    cov = coverage(pred)
    if other_index is not None:
        pred = np.where(pred == other_index, -1, pred)
    ious = part_ious(pred, gt, len(parts))
    share = np.bincount(gt[gt >= 0], minlength=len(parts))[: len(parts)] / max(len(gt), 1)
    out = {
        "miou": float(ious.mean()),
        "coverage": cov,
        "part_iou": dict(zip(parts, map(float, ious), strict=True)),
        "part_share": dict(zip(parts, map(float, share), strict=True)),
    }
    if faces is not None:
        face_pred, face_gt, area = faces
        if other_index is not None:
            face_pred = np.where(face_pred == other_index, -1, face_pred)
        face_ious = part_ious(face_pred, face_gt, len(parts), weights=area)
        out["face_miou"] = float(face_ious.mean())
        out["face_part_iou"] = dict(zip(parts, map(float, face_ious), strict=True))
    return out


def face_prediction(shape: Shape, labels: Labels) -> np.ndarray:
    """(F,) face labels of a mesh result: the method's own, else from its point probabilities (-1 where no
    sample of a face, nor the sample nearest to it, was labeled)."""
    if labels.face_labels is not None:
        return labels.face_labels
    from partdistill_cli.knowledge import face_labels_from_points

    faces = face_labels_from_points(shape, labels.probs)
    if labels.coverage < 1.0:
        votes = np.zeros(len(shape.faces))
        np.add.at(votes, shape.face_ids, labels.probs.sum(axis=1))
        faces = np.where(votes <= 0, -1, faces)
    return faces


def run_evaluation(
    data: list,
    config: EvalConfig,
    save_knowledge: Path | None = None,
    progress: Reporter | None = None,
    *,
    workers: int | None = None,
    address: str | None = None,
) -> dict:
    """Evaluate `config.methods` on `data` (a list of `datasets.LabeledShape`); returns the JSON report.

    The shapes are taught through `batch.make_runner` (in this process, or on Ray with `workers` / `address`);
    `progress` reports each shape taught and each (method, category) scored.

    Report: {"config": {...}, "results": [{"method", "category", "miou", "coverage", "shapes": [{"name",
    "miou", "coverage", "part_iou": {part: iou}}]}], "summary": {method: {"mean_over_categories",
    "mean_over_shapes"}}}; all values in [0, 1].
    """
    import time

    from partdistill_cli.batch import Job, make_runner, teach_all
    from partdistill_cli.console import counted
    from partdistill_cli.progress import Reporter

    if not data:
        raise ValueError("no shapes to evaluate")
    progress = progress if progress is not None else Reporter(enabled=False)
    by_category: dict[str, list[int]] = {}
    for i, ls in enumerate(data):
        by_category.setdefault(ls.category, []).append(i)
    other_flags = {}
    for cat, idx in by_category.items():
        other_flags[cat] = _use_other(config, [data[i] for i in idx])
    segment_config = config.segment_config()
    simulated = config.teacher == "simulated"
    jobs = []
    for i, ls in enumerate(data):
        teacher = (
            SimulatedTeacher(ls.primitive_labels, config.noise, shape_seed=config.seed * 100003 + i)
            if simulated
            else None
        )
        # The simulated teacher's name does not say which shape's errors it drew, so its answers are not cached.
        jobs.append(
            Job(i, ls.shape, PartList(tuple(ls.parts), background=other_flags[ls.category]), ls.category, ls.name,
                segment=False, teacher=teacher, need_views=save_knowledge is not None, cache=not simulated)
        )  # fmt: skip
    pipeline = Pipeline(segment_config, verbose=False, progress=progress)
    with make_runner(segment_config, workers=workers, address=address, progress=progress, pipeline=pipeline) as runner:
        results = teach_all(runner, jobs, progress.level("teaching", len(data)))
    teacher_name = results[-1].teacher
    taught: list[tuple[Shape, Knowledge]] = []
    for i, (ls, res) in enumerate(zip(data, results, strict=True)):
        if save_knowledge is not None:
            save_teach_result(res, Path(save_knowledge) / f"{i:04d}_{_safe(ls.name)}")
        taught.append((ls.shape, res.knowledge))
    results = []
    level = progress.level("methods", len(config.methods) * len(by_category))
    shared = {"forward", "full"} <= set(config.methods)
    done: dict[tuple[str, str], list[Labels]] = {}
    for method in config.methods:
        fn = METHODS[method]
        for cat, idx in by_category.items():
            started = time.perf_counter()
            item = f"{method} · {cat} ({counted(len(idx), 'shape')})"
            level.start(item)
            trained_before = (method, cat) in done
            if trained_before:
                labels = done[(method, cat)]
            elif shared and method in ("forward", "full"):
                groups = [idx] if config.protocol == "category" else [[i] for i in idx]
                pairs = []
                for g in groups:
                    if len(g) == 1:
                        level.stage(data[g[0]].name)
                    pairs.append(_forward_then_full([taught[i] for i in g], config.seed, config.student, progress))
                done[("forward", cat)] = [lab for fwd, _ in pairs for lab in fwd]
                done[("full", cat)] = [lab for _, full in pairs for lab in full]
                labels = done[(method, cat)]
            elif config.protocol == "category" and method not in SHAPE_LOCAL:
                labels = fn([taught[i] for i in idx], config.seed, config.student, progress)
            else:
                labels = []
                for i in idx:
                    level.stage(data[i].name)
                    labels.append(fn([taught[i]], config.seed, config.student, progress)[0])
            shapes_out = []
            for i, lab in zip(idx, labels, strict=True):
                ls = data[i]
                other_index = len(ls.parts) if other_flags[cat] else None
                faces = None
                if ls.face_labels is not None and ls.shape.is_mesh:
                    faces = (face_prediction(ls.shape, lab), ls.face_labels, face_areas(ls.shape))
                shapes_out.append(
                    {"name": ls.name, **score_shape(lab.point_labels, ls.point_labels, ls.parts, other_index, faces)}
                )
            miou = float(np.mean([s["miou"] for s in shapes_out]))
            results.append(
                {
                    "method": method,
                    "category": cat,
                    "miou": miou,
                    "coverage": float(np.mean([s["coverage"] for s in shapes_out])),
                    "shapes": shapes_out,
                }
            )
            # `full` continues the `forward` training when both are asked for: its time is in forward's line.
            note = f"mIoU {miou * 100:.1f}"
            if shared and method in ("forward", "full"):
                note += " (trained with forward)" if trained_before else " (full trained on from it)"
            level.done(item, time.perf_counter() - started, note)
    report_config = config.to_dict()
    if not simulated:
        report_config["teacher"] = teacher_name  # the name says which weights and settings
    return {"config": report_config, "results": results, "summary": summarize(results)}


def summarize(results: list[dict]) -> dict:
    """Per method: means over categories and over shapes of the point mIoU, coverage, and for meshes the
    face-level mIoU (`face_mean_over_categories`, over the categories that have meshes)."""
    out = {}
    for method in dict.fromkeys(r["method"] for r in results):
        rows = [r for r in results if r["method"] == method]
        shapes = [s for r in rows for s in r["shapes"]]
        out[method] = {
            "mean_over_categories": float(np.mean([r["miou"] for r in rows])),
            "mean_over_shapes": float(np.mean([s["miou"] for s in shapes])),
            "coverage": float(np.mean([s["coverage"] for s in shapes])),
        }
        face_rows = [[s["face_miou"] for s in r["shapes"] if "face_miou" in s] for r in rows]
        face_rows = [f for f in face_rows if f]
        if face_rows:
            out[method]["face_mean_over_categories"] = float(np.mean([np.mean(f) for f in face_rows]))
    return out


def face_areas(shape: Shape) -> np.ndarray:
    """(F,) float64 area of each face of a mesh shape (normalised coordinates)."""
    return triangle_areas(shape.vertices, shape.faces)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]


__all__ = ["METHODS", "OTHER", "EvalConfig", "expand_methods", "run_evaluation", "score_shape", "summarize"]
