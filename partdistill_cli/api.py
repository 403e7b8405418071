"""The Python API: segment shapes from Python, with the models loaded once.

    from partdistill_cli import Segmenter, segment

    result = segment("chair.obj", parts=["back", "seat", "leg", "arm"], category="chair")
    seg = Segmenter(teacher="grounded-sam", method="full", device="auto")
    for path in paths:
        r = seg(path, parts=["back", "seat", "leg", "arm"], category="chair")
        r.face_labels, r.point_labels, r.probs, r.confidence, r.parts, r.colors
        r.save("out/")            # the files `partdistill segment` writes
        r.to_trimesh()            # a colored trimesh mesh / point cloud in the input's coordinates

It is the pipeline `partdistill segment` runs (`pipeline.Pipeline`), with the same settings (`SegmentConfig`)
and the same errors (`errors.UserError` subclasses with one-line messages).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from partdistill_cli.config import RenderSettings, SegmentConfig
from partdistill_cli.errors import ConfigError
from partdistill_cli.outputs import SegmentResult
from partdistill_cli.pipeline import Pipeline
from partdistill_cli.teachers.specs import REAL_TEACHERS, teacher_spec


class Segmenter(Pipeline):
    """Segments shapes into named parts; the teacher's models are loaded on the first shape and reused.

    Args:
        config: a `SegmentConfig`, or
        **settings: its fields as keywords (teacher, weights, threshold, render, points, method, student,
            finetune_steps, epochs, other, seed, device, cache_dir), e.g.
            `Segmenter(teacher="clipseg", weights={"clipseg": "/models/clipseg"}, method="vote-fill")`.
        verbose: report progress on the console (stderr).

    Raises `errors.ConfigError` for a bad setting and for the simulated teacher, which reads ground truth
    and exists for evaluation only.
    """

    def __init__(self, config: SegmentConfig | None = None, *, verbose: bool = True, **settings: Any) -> None:
        if config is not None and settings:
            raise ConfigError("give either a SegmentConfig or its fields as keywords, not both")
        config = config if config is not None else SegmentConfig(**settings)
        if teacher_spec(config.teacher).needs_ground_truth:
            raise ConfigError(
                f"the {config.teacher} teacher reads ground truth and is for evaluation only; "
                f"choose from {', '.join(REAL_TEACHERS)}"
            )
        super().__init__(config, verbose=verbose)

    def __call__(
        self,
        source: str | Path | Any,
        parts: str | list[str] | None = None,
        category: str | None = None,
        *,
        name: str | None = None,
        explain: bool = False,
    ) -> SegmentResult:
        """Segment one shape.

        Args:
            source: a mesh or point-cloud file, a `trimesh.Trimesh` (face order kept), a `trimesh.PointCloud`,
                or an (N, 3) xyz / (N, 6) xyz + normals float array (point order kept).
            parts: part names (a list or "a,b,c"); default: the category's known parts.
            category: the object category, e.g. "chair": used in the prompts and to find a cached category
                student.
            name: names the outputs of `save` (default: the file's stem, or "shape").
            explain: keep the teacher's views and detections so that `save(explain=True)` can draw them.

        Returns a `SegmentResult`: `face_labels` (F,) int64 for meshes (None for clouds), `point_labels` (N,)
        int64 and `probs` (N, C) float32 over the sample points, `confidence` per face / point, `parts`,
        `colors` (C, 3) uint8, `save(out_dir)` and `to_trimesh()`.
        """
        return self.run(source, parts, category, name=name, keep_views=explain)


def segment(
    source: str | Path | Any,
    parts: str | list[str] | None = None,
    category: str | None = None,
    **settings: Any,
) -> SegmentResult:
    """Segment one shape in one call: `Segmenter(**settings)(source, parts, category)` (see both)."""
    return Segmenter(**settings)(source, parts, category)


__all__ = ["RenderSettings", "SegmentConfig", "SegmentResult", "Segmenter", "segment"]
