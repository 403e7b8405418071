"""One shape through the stages: render -> teach -> lift (-> vote or distill happens in the caller)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from partdistill_cli import cameras as cams
from partdistill_cli.knowledge import Detection, Knowledge
from partdistill_cli.lift import MIN_COMPONENT_PX, lift
from partdistill_cli.render import render, resolve_renderer
from partdistill_cli.render.base import Views
from partdistill_cli.shapes import Shape
from partdistill_cli.teachers.base import Teacher

OTHER = "other"
OTHER_SCORE = 0.5


@dataclass(frozen=True)
class RenderSettings:
    """How a shape is looked at. Part of every knowledge cache key."""

    n_views: int = 10
    resolution: int = 512
    renderer: str = "auto"
    up_axis: str = "y"
    tolerance: float | None = None

    def cameras(self) -> list[cams.Camera]:
        return cams.view_set(self.n_views, self.resolution, up_axis=self.up_axis)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TeachResult:
    """What the 2D stages produced for one shape."""

    views: Views
    detections: list[Detection]
    knowledge: Knowledge


def other_units(knowledge: Knowledge, views: Views, score: float = OTHER_SCORE) -> Knowledge:
    """Append a background part `OTHER` to `knowledge`: per view, one unit of the visible points that no
    detection of that view claims.

    Used when the part list does not cover the whole shape (e.g. `--parts lid` on a bottle): without it every
    point would be forced into some listed part.
    """
    parts = [*knowledge.parts, OTHER]
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
    base = Knowledge(
        knowledge.labels,
        knowledge.scores,
        knowledge.views,
        knowledge.indptr,
        knowledge.indices,
        knowledge.n_points,
        parts,
    )
    return Knowledge.concatenate([base, extra])


def teach(
    shape: Shape,
    teacher: Teacher,
    parts: list[str],
    settings: RenderSettings,
    category: str | None = None,
    other: bool = False,
    min_component_px: int = MIN_COMPONENT_PX,
) -> TeachResult:
    """Render `shape`, ask `teacher` for `parts` in every view, and lift the answers to `Knowledge`."""
    resolve_renderer(settings.renderer, shape)
    views = render(shape, settings.cameras(), settings.renderer, settings.tolerance)
    detections = teacher.detect(views, list(parts), category)
    knowledge = lift(detections, views, list(parts), min_component_px)
    if other:
        knowledge = other_units(knowledge, views)
    return TeachResult(views, detections, knowledge)


def save_teach_result(result: TeachResult, folder: Path) -> None:
    """Write cameras, pixel->point maps, detections and knowledge of one shape into `folder`, so that other
    tools can be fed the same 2D knowledge. Masks are stored bit-packed."""
    import json

    from partdistill_cli.io_utils import atomic_path, write_text

    folder.mkdir(parents=True, exist_ok=True)
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
