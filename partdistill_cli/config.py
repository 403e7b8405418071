"""The settings of the pipeline, checked once where they are made: how shapes are looked at (`RenderSettings`)
and everything `segment` and the Python API can be told (`SegmentConfig`).

Light on purpose (no numpy, torch or renderer at import): the command line reads the limits below to build its
options, and a config is cheap to make and to send to another process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from partdistill_cli.device import check_device_name
from partdistill_cli.errors import ConfigError
from partdistill_cli.parts import OTHER_MODES, OtherMode
from partdistill_cli.teachers.specs import DEFAULT_TEACHER, teacher_spec

if TYPE_CHECKING:
    from partdistill_cli.cameras import Camera

# Limits of the settings (inclusive); the command line's options use the same ones.
VIEWS_RANGE = (1, 64)
RESOLUTION_RANGE = (64, 2048)
POINTS_RANGE = (16, 1_000_000)
UP_AXES: tuple[str, ...] = ("x", "y", "z")
Method = Literal["full", "forward", "vote-fill"]
METHODS: tuple[str, ...] = ("full", "forward", "vote-fill")
# Older names of methods, still accepted: segment's back-projection votes were called "vote", which `evaluate`
# uses for the votes without filling the unseen points.
METHOD_ALIASES = {"vote": "vote-fill"}
STUDENT_CHOICES: tuple[str, ...] = ("auto", "none")


def _check_range(name: str, value: int, bounds: tuple[int, int]) -> None:
    lo, hi = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


@dataclass(frozen=True)
class RenderSettings:
    """How a shape is looked at: `n_views` cameras around `up_axis` at `resolution` pixels (square), drawn by
    `renderer` ("auto" or a `render.RENDERERS` name) with visibility `tolerance` (None: the renderer's own).
    Part of every knowledge cache key."""

    n_views: int = 10
    resolution: int = 512
    renderer: str = "auto"
    up_axis: str = "y"
    tolerance: float | None = None

    def cameras(self) -> list[Camera]:
        from partdistill_cli.cameras import view_set

        return view_set(self.n_views, self.resolution, up_axis=self.up_axis)

    def to_dict(self) -> dict:
        return asdict(self)

    def check(self) -> RenderSettings:
        """Return self if every setting is within the command line's limits; ConfigError otherwise."""
        from partdistill_cli.render import RENDERERS

        _check_range("views", self.n_views, VIEWS_RANGE)
        _check_range("resolution", self.resolution, RESOLUTION_RANGE)
        _check_choice("renderer", self.renderer, ("auto", *RENDERERS))
        _check_choice("up axis", self.up_axis, UP_AXES)
        if self.tolerance is not None and not self.tolerance > 0:
            raise ConfigError(f"the visibility tolerance must be positive, got {self.tolerance}")
        return self


@dataclass(frozen=True)
class SegmentConfig:
    """What `segment` and `Segmenter` are told; validated at construction (ConfigError, a UserError).

    Attributes:
        teacher: a `teachers.TEACHER_SPECS` name (the simulated teacher only where ground truth is given).
        weights: the teacher's weight options (e.g. {"detector": id or folder, "segmenter": "vit_b"}); those
            not given come from their environment variables, then the defaults (see `partdistill doctor`).
        threshold: the teacher's confidence threshold in [0, 1]; None: the teacher's default.
        render: how the shape is looked at.
        points: surface samples drawn from a mesh (a point cloud keeps its own points).
        method: "full" (student, forward + backward distillation), "forward" (forward only), or "vote-fill"
            (back-projection votes, unseen points from their nearest voted point; "vote" is an older name of it).
            A student's prediction is fused with the shape's re-scored view evidence (`student.fuse_knowledge`).
        student: "auto" (a cached category student matching category, parts and teacher, else distill one on
            the shape), "none" (always distill on the shape), or the path of a student (.safetensors + card).
        finetune_steps: with a cached student, fine-tune epochs on the shape's own knowledge.
        epochs: fixed distillation epochs (backward runs half as many); None: until the loss flattens.
        other: the background part: "on", "off" or "auto" (on when one part is asked for).
        pieces: on a mesh, a student gives each connected piece (at most half the shape) whose points mostly
            take one part that part as a whole (`components.component_vote`): CAD meshes are built of pieces that
            each belong to one part. Turn it off for a mesh whose pieces straddle parts.
        seed: seeds the mesh sampling, the student and everything random.
        device: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N": the teacher, the renderer's choice
            and the student all run there.
        cache_dir: cache root for knowledge and students (None: $PARTDISTILL_CACHE or ~/.cache/partdistill).
    """

    teacher: str = DEFAULT_TEACHER
    weights: Mapping[str, str] = field(default_factory=dict)
    threshold: float | None = None
    render: RenderSettings = field(default_factory=RenderSettings)
    points: int = 10_000
    method: Method = "full"
    student: str | Path = "auto"
    finetune_steps: int = 0
    epochs: int | None = None
    other: OtherMode = "auto"
    pieces: bool = True
    seed: int = 0
    device: str = "auto"
    cache_dir: str | Path | None = None

    def __post_init__(self) -> None:
        spec = teacher_spec(self.teacher)
        object.__setattr__(self, "weights", {k: str(v) for k, v in dict(self.weights).items() if v is not None})
        spec.options(self.weights, self.threshold)
        if not isinstance(self.render, RenderSettings):
            raise ConfigError(f"render must be a RenderSettings, got {type(self.render).__name__}")
        self.render.check()
        _check_range("points", self.points, POINTS_RANGE)
        object.__setattr__(self, "method", METHOD_ALIASES.get(self.method, self.method))
        _check_choice("method", self.method, METHODS)
        _check_choice("other", self.other, OTHER_MODES)
        if str(self.student) not in STUDENT_CHOICES and not Path(self.student).exists():
            raise ConfigError(f"--student {self.student}: no such file (use auto, none or a path to a student)")
        if isinstance(self.finetune_steps, bool) or not isinstance(self.finetune_steps, int) or self.finetune_steps < 0:
            raise ConfigError(f"finetune_steps must be an integer >= 0, got {self.finetune_steps!r}")
        if self.epochs is not None and (not isinstance(self.epochs, int) or self.epochs < 1):
            raise ConfigError(f"epochs must be an integer >= 1 (or None), got {self.epochs!r}")
        if not isinstance(self.pieces, bool):
            raise ConfigError(f"pieces must be True or False, got {self.pieces!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        check_device_name(self.device)
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", Path(self.cache_dir).expanduser())

    def teacher_options(self) -> dict:
        """Keyword options for `make_teacher(self.teacher, ...)`: the weights and the threshold given."""
        return teacher_spec(self.teacher).options(self.weights, self.threshold)
