"""Category students (DESIGN.md section 4): one student distilled over many shapes of a category.

Each shape is taught through the pipeline's stages (`batch.make_runner`: in this process or on Ray workers, with
the same knowledge store and keys as `segment`),
then one student is distilled over all of them and cached under the key `segment --category` looks up
(`store.student_key`: category, ordered parts with the background part, teacher, student settings).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from partdistill_cli.errors import UserError
from partdistill_cli.knowledge import Knowledge
from partdistill_cli.parts import PartList
from partdistill_cli.pipeline import Pipeline
from partdistill_cli.shapes import SUPPORTED_SUFFIXES, Shape, find_shape_files, load_shape
from partdistill_cli.teachers.simulated import NoiseConfig, SimulatedTeacher

if TYPE_CHECKING:
    from partdistill_cli.progress import Level


@dataclass
class Source:
    """A shape to teach, with its ground truth per primitive (faces of a mesh, points of a cloud) where the
    simulated teacher needs it: (F,) or (N,) int64 index into the part list, -1 for none of them."""

    shape: Shape
    truth: np.ndarray | None = None


def folder_sources(folder: Path, parts: PartList, category: str, points: int, seed: int, truth: bool) -> list[Source]:
    """The shapes of `folder`; with `truth`, it must be a labeled data set whose part names match `parts`."""
    if not Path(folder).is_dir():
        raise UserError(f"{folder}: not a folder of shapes")
    if truth:
        from partdistill_cli.datasets import load_dataset

        data = load_dataset(folder, "auto", None, None, points, seed)
        data = [d for d in data if d.category.lower() == category] or data
        if len(data[0].parts) != len(parts.asked):
            raise UserError(f"{folder}: its parts {data[0].parts} do not match --parts {list(parts.asked)}")
        return [Source(d.shape, d.primitive_labels) for d in data]
    files = find_shape_files(folder)
    if not files:
        raise UserError(f"{folder}: no shape files ({', '.join(sorted(SUPPORTED_SUFFIXES))})")
    return [Source(load_shape(p, points, seed)) for p in files]


def extra_sources(
    spec: str, parts: PartList, category: str, points: int, seed: int, count: int, truth: bool
) -> list[Source]:
    """More shapes as knowledge sources: `count` procedural shapes of the category ("procedural"), or a folder."""
    if spec == "procedural":
        from partdistill_cli import procedural

        if category not in procedural.CATEGORIES:
            raise UserError(f"no procedural generator for {category!r}; known: {', '.join(procedural.CATEGORIES)}")
        gen_parts = procedural.CATEGORIES[category]
        data = procedural.procedural_dataset([category], count, seed + 10_000, points)
        # The generator's part indices are its own list; they map onto the asked parts by name.
        return [Source(d.shape, _by_name(d.primitive_labels, gen_parts, parts) if truth else None) for d in data]
    if not Path(spec).is_dir():
        raise UserError(f"--extra-shapes {spec}: neither 'procedural' nor a folder")
    return folder_sources(Path(spec), parts, category, points, seed, truth)


def _by_name(labels: np.ndarray, names: list[str], parts: PartList) -> np.ndarray:
    """`labels` indexing `names` re-indexed into `parts.asked` by name; names not asked for become -1."""
    table = np.array([parts.asked.index(n) if n in parts.asked else -1 for n in names] + [-1], dtype=np.int64)
    return table[np.where(labels >= 0, labels, len(names))]


def few_shot(folder: Path, parts: PartList, points: int, seed: int) -> list[tuple[Shape, Knowledge]]:
    """Labeled shapes as certain knowledge: each ground-truth part becomes one unit of score 1 (with a
    background part, the surface no asked part covers becomes its unit)."""
    from partdistill_cli.datasets import load_dataset

    data = load_dataset(folder, "auto", None, None, points, seed)
    if not data:
        raise UserError(f"--labeled {folder}: no labeled shapes found")
    items = []
    for d in data:
        gt = _by_name(d.point_labels, d.parts, parts)
        if parts.background:
            gt[gt < 0] = parts.background_index
        present = [c for c in range(len(parts)) if (gt == c).any()]
        members = [np.flatnonzero(gt == c) for c in present]
        k = Knowledge(
            np.array(present, dtype=np.int64),
            np.ones(len(present), dtype=np.float32),
            np.full(len(present), -1, dtype=np.int64),
            np.concatenate([[0], np.cumsum([len(m) for m in members])]).astype(np.int64),
            np.concatenate(members).astype(np.int64) if members else np.zeros(0, np.int64),
            d.shape.n_points,
            parts.names,
        )
        items.append((d.shape, k))
    return items


def simulated_teacher(truth: np.ndarray, noise: NoiseConfig, shape: Shape) -> SimulatedTeacher:
    # A seed from the shape's content: the same shape draws the same errors in every run (and in the cache).
    return SimulatedTeacher(truth, noise, shape_seed=int(shape.fingerprint()[:8], 16))


def teach_sources(
    runner: Any,
    sources: list[Source],
    category: str,
    parts: PartList,
    noise: NoiseConfig | None = None,
    level: Level | None = None,
) -> list[tuple[Shape, Knowledge]]:
    """Each source's knowledge through `runner` (`batch.make_runner`: this process, or Ray workers), cached in the
    pipeline's store: computed once per shape and teacher.

    With `noise`, each shape's simulated teacher corrupts its ground truth (`Source.truth`); otherwise the
    runner's teacher teaches. `level`: where each shape's end is reported, or None.
    """
    from partdistill_cli.batch import Job, teach_all

    jobs = [
        Job(i, src.shape, parts, category, src.shape.name, segment=False,
            teacher=simulated_teacher(src.truth, noise, src.shape) if noise is not None else None)
        for i, src in enumerate(sources)
    ]  # fmt: skip
    return [(src.shape, taught.knowledge) for src, taught in zip(sources, teach_all(runner, jobs, level), strict=True)]


def distill_category(
    pipeline: Pipeline,
    items: list[tuple[Shape, Knowledge]],
    category: str,
    parts: PartList,
    teacher_name: str,
    mode: str = "full",
) -> tuple[object, Path]:
    """Distill one student over `items` with the pipeline's student settings and cache it under the key
    `segment --category` looks up; per-epoch checkpoints let an interrupted run resume. Returns (student,
    cache entry folder)."""
    from partdistill_cli.store import StudentCard, cache_root, save_student, student_key
    from partdistill_cli.student import distill

    config = pipeline.distill_config()
    key = student_key(category, parts.names, teacher_name, config)
    checkpoints = cache_root(pipeline.config.cache_dir) / "checkpoints" / key
    with pipeline.progress.training(config, mode) as training:
        student = distill(
            items, config, mode=mode, checkpoint_dir=checkpoints, show_progress=False, on_epoch=training.on_epoch
        )
    card = StudentCard(
        category=category,
        parts=parts.names,
        teacher=teacher_name,
        render=pipeline.config.render.to_dict(),
        trained_on=[s.name for s, _ in items],
    )
    return student, save_student(student, card, root=pipeline.config.cache_dir)
