"""The pipeline (DESIGN.md section 1): one shape through the stages, as one typed object.

    load(source) -> Shape                          shapes: a file, a trimesh mesh or an array of points
    teach(shape, parts, category) -> TeachResult   render -> teacher -> lift (+ background units), cached
    label(shape, knowledge, category) -> Labels    votes, or a cached / distilled student; face labels
    result(...) -> SegmentResult                   what `SegmentResult.save` writes (`partdistill segment`)

`Pipeline` holds the settings (`SegmentConfig`), the one knowledge store and the teacher, built on first use and
kept for every later shape. `partdistill segment`, `train-category`, `evaluate` and the Python API
(`partdistill_cli.api`) all go through it. Each stage takes and returns plain data, so the stages can also run
apart (another process, another machine) given the same config.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from partdistill_cli.config import RenderSettings, SegmentConfig
from partdistill_cli.console import counted
from partdistill_cli.datasets import load_source
from partdistill_cli.device import resolve_device
from partdistill_cli.errors import ConfigError, UserError
from partdistill_cli.knowledge import Detection, Knowledge, Labels, face_labels_from_points
from partdistill_cli.lift import MIN_COMPONENT_PX, lift
from partdistill_cli.outputs import SegmentResult, make_result
from partdistill_cli.parts import BACKGROUND_PART, PartList, spaces_warning
from partdistill_cli.progress import Reporter
from partdistill_cli.render import render, resolve_renderer
from partdistill_cli.render.base import Views
from partdistill_cli.shapes import Shape, ShapeError, from_mesh, from_points
from partdistill_cli.store import KnowledgeStore, check_cache_root, find_student, load_student
from partdistill_cli.teachers import make_teacher
from partdistill_cli.teachers.base import Teacher
from partdistill_cli.teachers.specs import teacher_spec

if TYPE_CHECKING:
    from partdistill_cli.student import DistillConfig, Student

OTHER = BACKGROUND_PART  # older code imports the background part's name from here
OTHER_SCORE = 0.5


@dataclass
class TeachResult:
    """What the 2D stages produced for one shape.

    Attributes:
        views: the renderings the teacher saw, or None when the knowledge came from the cache.
        detections: the teacher's 2D answers (empty when from the cache).
        knowledge: the lifted knowledge over the shape's points.
        teacher: the teacher's name (it identifies its weights and settings).
    """

    views: Views | None
    detections: list[Detection]
    knowledge: Knowledge
    teacher: str = ""


def other_units(knowledge: Knowledge, views: Views, score: float = OTHER_SCORE) -> Knowledge:
    """Append the background part (`parts.BACKGROUND_PART`) to `knowledge`: per view, one unit of the visible
    points that no detection of that view claims.

    Used when the part list does not cover the whole shape (e.g. `--parts lid` on a bottle): without it every
    point would be forced into some listed part.
    """
    parts = PartList(tuple(knowledge.parts), background=True).names
    visible = views.pixel_of_point >= 0
    claimed = np.zeros_like(visible)
    for v in range(views.n_views):
        ks = np.flatnonzero(knowledge.views == v)
        if len(ks):
            idx = np.concatenate([knowledge.unit(k) for k in ks])
            claimed[v, idx] = True
    members = [np.flatnonzero(visible[v] & ~claimed[v]) for v in range(views.n_views)]
    keep = [v for v in range(views.n_views) if len(members[v])]
    extra = Knowledge(
        np.full(len(keep), len(parts) - 1, dtype=np.int64),
        np.full(len(keep), score, dtype=np.float32),
        np.asarray(keep, dtype=np.int64),
        np.concatenate([[0], np.cumsum([len(members[v]) for v in keep])]).astype(np.int64),
        np.concatenate([members[v] for v in keep]).astype(np.int64) if keep else np.zeros(0, np.int64),
        knowledge.n_points,
        parts,
    )
    base = replace(knowledge, parts=parts)
    return Knowledge.concatenate([base, extra])


def render_views(shape: Shape, settings: RenderSettings, device: str | None = None) -> Views:
    """The views of `shape` the teacher is shown, drawn as `settings` say (`device` steers the "auto" renderer)."""
    return render(shape, settings.cameras(), settings.renderer, settings.tolerance, device)


def lift_knowledge(
    detections: list[Detection],
    views: Views,
    parts: list[str],
    other: bool = False,
    min_component_px: int = MIN_COMPONENT_PX,
) -> Knowledge:
    """The teacher's `detections` in `views` lifted to `Knowledge` over the shape's points, with the background
    part's units after them when `other` (see `other_units`)."""
    knowledge = lift(detections, views, list(parts), min_component_px)
    return other_units(knowledge, views) if other else knowledge


def teach(
    shape: Shape,
    teacher: Teacher,
    parts: list[str],
    settings: RenderSettings,
    category: str | None = None,
    other: bool = False,
    min_component_px: int = MIN_COMPONENT_PX,
    device: str | None = None,
) -> TeachResult:
    """Render `shape`, ask `teacher` for `parts` in every view, and lift the answers to `Knowledge` (with the
    background part's units after them when `other`). `device` steers the "auto" renderer."""
    views = render_views(shape, settings, device)
    detections = teacher.detect(views, list(parts), category)
    knowledge = lift_knowledge(detections, views, parts, other, min_component_px)
    return TeachResult(views, detections, knowledge, teacher.name)


def save_teach_result(result: TeachResult, folder: Path) -> None:
    """Write cameras, pixel->point maps, detections and knowledge of one shape into `folder`, so that other
    tools can be fed the same 2D knowledge. Masks are stored bit-packed."""
    import json

    from partdistill_cli.io_utils import atomic_path, make_dirs, write_text

    make_dirs(folder)
    write_text(folder / "cameras.json", json.dumps([c.to_dict() for c in result.views.cameras], indent=1))
    with atomic_path(folder / "pixel_map.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, result.views.pixel_of_point)
    h, w = result.views.size
    dets = result.detections
    masks = np.stack([d.mask for d in dets if d.mask is not None]) if any(d.mask is not None for d in dets) else None
    with atomic_path(folder / "detections.npz") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            view=np.array([d.view for d in dets], dtype=np.int64),
            part=np.array([d.part for d in dets], dtype=np.int64),
            score=np.array([d.score for d in dets], dtype=np.float32),
            has_mask=np.array([d.mask is not None for d in dets], dtype=bool),
            boxes=np.array([d.box if d.box is not None else [np.nan] * 4 for d in dets], dtype=np.float64).reshape(
                -1, 4
            ),
            masks_packed=np.packbits(masks, axis=-1) if masks is not None else np.zeros((0, h, (w + 7) // 8), np.uint8),
            image_size=np.array([h, w]),
        )
    result.knowledge.save(folder / "knowledge.npz")


def distill_config(seed: int, device: str, epochs: int | None, pieces: bool = True) -> DistillConfig:
    """The student settings of a run: defaults, the device, a fixed schedule when `epochs` is given
    (backward distillation then runs half as many), and no mesh-piece vote unless `pieces`."""
    from partdistill_cli.student import DistillConfig

    config = DistillConfig(seed=seed, device=device)
    if not pieces:
        config = replace(config, components=0.0)
    if epochs is not None:
        config = replace(
            config, min_forward_epochs=epochs, max_forward_epochs=epochs, backward_epochs=max(1, epochs // 2)
        )
    return config


def normalise_category(category: str | None) -> str | None:
    """A user's category as students are keyed by it: stripped, lower case; None when empty."""
    return category.strip().lower() or None if category else None


def shape_of(source: Any, n_points: int, seed: int, name: str = "shape") -> Shape:
    """A `Shape` from an object in memory: a trimesh.Trimesh (any object with `vertices` and `faces`; its face
    order is kept), a trimesh.PointCloud, or an (N, 3) xyz / (N, 6) xyz + normals float array."""
    faces = getattr(source, "faces", None)
    if faces is not None and getattr(source, "vertices", None) is not None:
        return from_mesh(np.asarray(source.vertices), np.asarray(faces), n_points, seed, name)
    if getattr(source, "vertices", None) is not None:
        source = source.vertices
    try:
        array = np.asarray(source, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ShapeError(
            f"cannot segment a {type(source).__name__}: give a file path, a trimesh.Trimesh or an (N, 3) / (N, 6) "
            "array of points"
        ) from exc
    if array.ndim != 2 or array.shape[1] not in (3, 6):
        raise ShapeError(f"{name}: expected an (N, 3) or (N, 6) array (x y z [nx ny nz]), got shape {array.shape}")
    return from_points(array[:, :3], array[:, 3:] if array.shape[1] == 6 else None, name)


class Pipeline:
    """The stages of one shape, with one config, one knowledge store and one teacher.

    Args:
        config: the settings (validated when it was made).
        verbose: report progress and what was reused on the console (stderr).
        store: where knowledge is kept (default: the cache under `config.cache_dir`).
        progress: where a student's training is reported (default: the console, when `verbose`).

    The cache root is checked here, before any work (`store.StoreError` when it cannot be a writable folder);
    the device is resolved once here; the teacher is built on the first `teach` and kept, so its models stay
    loaded across shapes.
    """

    def __init__(
        self,
        config: SegmentConfig,
        *,
        verbose: bool = True,
        store: KnowledgeStore | None = None,
        progress: Reporter | None = None,
    ) -> None:
        if not isinstance(config, SegmentConfig):
            raise ConfigError(f"expected a SegmentConfig, got {type(config).__name__}")
        check_cache_root(config.cache_dir)
        self.config = config
        self.verbose = verbose
        self.progress = progress if progress is not None else Reporter(enabled=verbose)
        self.device = resolve_device(config.device)
        self.store = store if store is not None else KnowledgeStore(config.cache_dir)
        self._teacher: Teacher | None = None

    # -- helpers ------------------------------------------------------------------------------------------

    def _say(self, message: str) -> None:
        if self.verbose:
            from partdistill_cli.console import console

            console.print(message)

    def _status(self, message: str):
        if not self.verbose:
            return contextlib.nullcontext()
        from partdistill_cli.console import console

        return console.status(message)

    @property
    def teacher(self) -> Teacher:
        """The configured teacher, built on first use and then reused."""
        if self._teacher is None:
            spec = teacher_spec(self.config.teacher)
            if spec.needs_ground_truth:
                raise ConfigError(
                    f"the {spec.name} teacher is built from each shape's ground truth: pass it to teach(teacher=...)"
                )
            with self._status(f"loading the {spec.name} teacher"):
                self._teacher = make_teacher(spec.name, device=self.device, **self.config.teacher_options())
        return self._teacher

    def parts(self, parts: str | list[str] | None, category: str | None = None) -> PartList:
        """The part list asked for (names or a comma-separated string; default: the category's known parts),
        with the background part as `config.other` says. Raises `parts.PartsError`. A string of several words
        and no comma is one part, with a warning on the console (even when not verbose: it is no progress
        report)."""
        warning = spaces_warning(parts)
        if warning is not None:
            from partdistill_cli.console import console

            console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
        return PartList.parse(parts, category, self.config.other)

    # -- stages -------------------------------------------------------------------------------------------

    def load(self, source: str | Path | Any, name: str | None = None) -> Shape:
        """The `Shape` of `source`: a mesh or point-cloud file, a PartNet-Mobility object folder (its part meshes
        merged, see `datasets.load_source`), a trimesh.Trimesh / PointCloud, or an (N, 3) / (N, 6) float array
        (xyz [+ normals], in the caller's coordinates). Meshes get `config.points` surface samples drawn with
        `config.seed`. Checks that the configured renderer can draw it (UserError if not)."""
        if isinstance(source, (str, Path)):
            shape = load_source(source, n_points=self.config.points, seed=self.config.seed)
        else:
            shape = shape_of(source, self.config.points, self.config.seed)
        if name is not None:
            shape = replace(shape, name=name)
        try:
            resolve_renderer(self.config.render.renderer, shape, self.config.device)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        return shape

    def teach(
        self,
        shape: Shape,
        parts: PartList,
        category: str | None = None,
        *,
        teacher: Teacher | None = None,
        need_views: bool = False,
        cache: bool = True,
    ) -> TeachResult:
        """Render `shape`, ask the teacher for `parts` in every view and lift the answers to knowledge.

        The knowledge is read from the store when the same shape, teacher, part list, rendering and category
        were taught before, and written to it otherwise.

        Args:
            teacher: a teacher for this shape alone (the simulated teacher, built from its ground truth);
                default: the pipeline's own.
            need_views: teach even when the store has the knowledge, so that the result holds the views and
                the detections (for explain sheets and saved knowledge).
            cache: use the store; off where a teacher's name does not identify its answers.
        """
        t = teacher if teacher is not None else self.teacher
        cached = self.cached(shape, parts, category, t.name) if cache and not need_views else None
        if cached is not None:
            result = TeachResult(None, [], cached, t.name)
        else:
            with self._status(f"rendering {counted(self.config.render.n_views, 'view')} and asking the teacher"):
                views = self.render(shape)
                detections = t.detect(views, list(parts.asked), category)
                result = TeachResult(views, detections, self.lift(views, detections, parts), t.name)
            if cache:
                self.keep(result.knowledge, shape, parts, category, t)
        self._say(
            f"{counted(result.knowledge.n_units, 'piece')} of 2D knowledge from "
            f"{counted(self.config.render.n_views, 'view')} ({t.name})"
        )
        return result

    def knowledge_path(self, shape: Shape, parts: PartList, category: str | None, teacher_name: str) -> Path:
        """Where the store keeps the knowledge of `shape` from the teacher named `teacher_name`."""
        return self.store.path(shape, teacher_name, parts, self.config.render, category)

    def cached(self, shape: Shape, parts: PartList, category: str | None, teacher_name: str) -> Knowledge | None:
        """The stored knowledge of `shape` from the teacher named `teacher_name`, or None (the first stage of
        `teach`; with `render`, the teacher's `detect`, `lift` and `keep`, its stages one by one, which
        `batch` runs in separate processes)."""
        path = self.knowledge_path(shape, parts, category, teacher_name)
        knowledge = self.store.load(path, shape, parts)
        if knowledge is not None:
            self._say(f"[dim]teacher knowledge from the cache ({path})[/]")
        return knowledge

    def render(self, shape: Shape) -> Views:
        """The views of `shape` the teacher is shown (`config.render`, on the pipeline's device)."""
        return render_views(shape, self.config.render, self.device)

    def lift(self, views: Views, detections: list[Detection], parts: PartList) -> Knowledge:
        """The teacher's `detections` in `views` lifted to knowledge over the shape's points (with the background
        part's units when `parts` has it)."""
        return lift_knowledge(detections, views, list(parts.asked), parts.background)

    def keep(self, knowledge: Knowledge, shape: Shape, parts: PartList, category: str | None, teacher: Teacher) -> None:
        """Store `knowledge` where `cached` finds it, with a card naming the `teacher` that made it and its weights
        (anything with the teacher's `name` and `weights` will do: on Ray the teacher stays in its actor)."""
        self.store.save(knowledge, self.knowledge_path(shape, parts, category, teacher.name), teacher)

    def distill_config(self) -> DistillConfig:
        """The student settings: defaults, `config.seed`, `config.epochs`, `config.pieces` and the pipeline's
        device."""
        return distill_config(self.config.seed, self.device, self.config.epochs, self.config.pieces)

    def student(self, parts: list[str], category: str | None, teacher_name: str) -> Student | None:
        """The student `config.student` names for `parts`: the file it names, or with "auto" and a category
        the cached category student of (category, parts, teacher, student settings); None otherwise.
        Raises `store.StoreError` for a file that cannot be used (or knows other parts)."""
        choice = str(self.config.student)
        if choice == "none" or (choice == "auto" and not category):
            return None
        if choice == "auto":
            return find_student(
                category, parts, teacher_name, self.distill_config(), self.config.cache_dir, self.device
            )
        return load_student(Path(choice), parts, self.device)

    def label(
        self, shape: Shape, knowledge: Knowledge, category: str | None = None, *, teacher_name: str | None = None
    ) -> Labels:
        """Labels for every point of `shape` (and every face of a mesh) from its `knowledge`, by `config.method`:
        votes (unseen points from their nearest neighbour), or a student: the one `student` finds (fine-tuned
        for `config.finetune_steps` epochs), else one distilled on this shape. `teacher_name` (default: the
        pipeline's teacher) keys the cached student."""
        parts = PartList.of_names(knowledge.parts)
        if not (knowledge.labels < len(parts.asked)).any():
            raise UserError(
                f"the {self.config.teacher} teacher found none of the parts ({', '.join(parts.asked)}) in any view; "
                "try other part names, --category, more --views, or another --teacher"
            )
        method = self.config.method
        if method == "vote-fill":
            from partdistill_cli.vote import vote

            labels = vote(knowledge, shape.points, fill=True)
            if shape.is_mesh:
                labels.face_labels = face_labels_from_points(shape, labels.probs)
            return labels
        from partdistill_cli.student import distill

        config = self.distill_config()
        cap = config.max_points
        if shape.n_points > cap:
            self._say(
                f"{shape.n_points:,} points: the student trains on and predicts {cap:,} of them at random; "
                "every other point takes its nearest such point's label"
            )
        cached = self.student(knowledge.parts, category, teacher_name or self.teacher.name)
        if cached is not None:
            steps = self.config.finetune_steps
            self._say(
                "using a cached category student" + (f", fine-tuned for {counted(steps, 'epoch')}" if steps else "")
            )
            if steps:
                tune = replace(config, min_forward_epochs=steps, max_forward_epochs=steps, backward_epochs=0)
                with self.progress.training(tune, "forward", fine_tune=True) as training:
                    cached = distill(
                        [(shape, knowledge)], tune, mode="forward", init=cached, show_progress=False,
                        on_epoch=training.on_epoch,
                    )  # fmt: skip
            cached.config = replace(cached.config, components=config.components)  # a prediction setting: this run's
            return cached.predict(shape, knowledge=knowledge)
        self._say(f"distilling a student on this shape ({method} distillation)")
        with self.progress.training(config, method) as training:
            student = distill(
                [(shape, knowledge)], config, mode=method, show_progress=False, on_epoch=training.on_epoch
            )
        return student.predict(shape, knowledge=knowledge)

    def result(
        self,
        shape: Shape,
        labels: Labels,
        taught: TeachResult,
        category: str | None = None,
        input_path: str | Path | None = None,
    ) -> SegmentResult:
        """The `SegmentResult` of `labels` on `shape`, with how it was made (teacher, method, settings) and the
        teacher's views and detections when `taught` has them."""
        meta = {
            "teacher": taught.teacher,
            "method": self.config.method,
            "category": category,
            "render": self.config.render.to_dict(),
            "points": self.config.points,
            "seed": self.config.seed,
            "other": PartList.of_names(labels.parts).background,
        }
        result = make_result(Path(input_path) if input_path is not None else None, shape, labels, meta)
        return replace(result, views=taught.views, detections=list(taught.detections))

    def run(
        self,
        source: str | Path | Any,
        parts: str | list[str] | None = None,
        category: str | None = None,
        *,
        name: str | None = None,
        keep_views: bool = False,
    ) -> SegmentResult:
        """Segment `source` (see `load`) into `parts` (see `parts`): load, teach, label, result.

        `category` (e.g. "chair") goes into the prompts and picks the cached category student; `name` names
        the outputs (default: the file's stem, or "shape"); `keep_views` keeps the teacher's views and
        detections in the result (for `save(explain=True)`) even when the knowledge is cached.
        """
        category = normalise_category(category)
        part_list = self.parts(parts, category)
        shape = self.load(source, name)
        taught = self.teach(shape, part_list, category, need_views=keep_views)
        labels = self.label(shape, taught.knowledge, category, teacher_name=taught.teacher)
        input_path = source if isinstance(source, (str, Path)) else None
        return self.result(shape, labels, taught, category, input_path)


__all__ = [
    "OTHER",
    "Pipeline",
    "RenderSettings",
    "SegmentConfig",
    "TeachResult",
    "distill_config",
    "lift_knowledge",
    "other_units",
    "render_views",
    "save_teach_result",
    "teach",
]
