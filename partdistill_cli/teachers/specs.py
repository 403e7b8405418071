"""Every teacher declared once: what it is, how it is built, which weights it loads and from where.

The registry (`teachers.make_teacher`), the command-line choices and weight options, `doctor`'s weight and
package checks and `weights.option_env` are all read from `TEACHER_SPECS` and `WEIGHT_SOURCES`. This module
imports nothing heavy: the command line reads it to build its `--help`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from partdistill_cli.errors import ConfigError


@dataclass(frozen=True)
class WeightSource:
    """Model weights a teacher loads.

    Attributes:
        key: short name ("gdino").
        what: the model's name in messages ("Grounding DINO").
        env: environment variable that supplies the weights when no option does.
        default: Hugging Face Hub id (`kind` "hub") or SAM variant name (`kind` "sam") used otherwise.
        kind: "hub" (a transformers model: Hub id or a save_pretrained folder) or "sam" (a segment-anything
            checkpoint: a variant name or a .pth / .safetensors file).
    """

    key: str
    what: str
    env: str
    default: str
    kind: Literal["hub", "sam"] = "hub"


WEIGHT_SOURCES: dict[str, WeightSource] = {
    s.key: s
    for s in (
        WeightSource("gdino", "Grounding DINO", "PARTDISTILL_GDINO", "IDEA-Research/grounding-dino-tiny"),
        WeightSource("owlv2", "OWLv2", "PARTDISTILL_OWLV2", "google/owlv2-base-patch16-ensemble"),
        WeightSource("clipseg", "CLIPSeg", "PARTDISTILL_CLIPSEG", "CIDAS/clipseg-rd64-refined"),
        WeightSource("sam", "SAM", "PARTDISTILL_SAM", "vit_b", kind="sam"),
    )
}

# A weight option is a teacher constructor keyword and the command-line flag of the same name (--detector).
WEIGHT_OPTION_HELP: dict[str, str] = {
    "detector": "Detector weights: Hub id or local folder written by save_pretrained (weights as safetensors)",
    "segmenter": "SAM checkpoint: vit_b, vit_l, vit_h or a local .safetensors / .pth file (.pth read as tensors only)",
    "clipseg": "CLIPSeg weights: Hub id or local folder written by save_pretrained (weights as safetensors)",
}

GDINO_BOX_THRESHOLD = 0.3  # grounded-sam's detector is gdino-boxes' detector: one default for both


@dataclass(frozen=True)
class TeacherSpec:
    """One teacher.

    Attributes:
        name: registry and command-line name.
        kind: "mask" (pixel-level detections) or "box".
        factory: "module:attribute" of a callable taking keyword options and returning a `Teacher`.
        help: one phrase for `--help`.
        weights: weight option keyword -> `WEIGHT_SOURCES` key of the weights it names.
        threshold: keyword of its confidence threshold, with `default_threshold` (None: no threshold).
        threshold_meaning: what the threshold bounds, for `--help`.
        packages: (import name, distribution name) of the packages it needs beyond the core, for `doctor`.
        needs_ground_truth: built per shape from ground truth (the simulated teacher: evaluation only).
    """

    name: str
    kind: Literal["mask", "box"]
    factory: str
    help: str
    weights: Mapping[str, str] = field(default_factory=dict)
    threshold: str | None = None
    default_threshold: float | None = None
    threshold_meaning: str = ""
    packages: tuple[tuple[str, str], ...] = ()
    needs_ground_truth: bool = False

    def env(self, option: str) -> str:
        """The environment variable that plays the role of weight option `option`."""
        if option not in self.weights:
            raise ValueError(f"teacher {self.name!r} has no weight option {option!r}")
        return WEIGHT_SOURCES[self.weights[option]].env

    def options(self, weights: Mapping[str, str | None], threshold: float | None) -> dict:
        """Keyword options for the factory from weight options and a threshold (None: the default)."""
        unknown = sorted(k for k, v in weights.items() if v is not None and k not in self.weights)
        if unknown:
            takes = ", ".join(self.weights) or "none"
            raise ConfigError(f"the {self.name} teacher takes the weight options {takes}; got {', '.join(unknown)}")
        options = {k: str(v) for k, v in weights.items() if v is not None}
        if threshold is not None:
            if self.threshold is None:
                raise ConfigError(f"the {self.name} teacher has no threshold")
            if not 0.0 <= threshold <= 1.0:
                raise ConfigError(f"the threshold must lie in [0, 1], got {threshold}")
            options[self.threshold] = float(threshold)
        return options


_VLM = (("transformers", "transformers"), ("torchvision", "torchvision"))

TEACHER_SPECS: dict[str, TeacherSpec] = {
    s.name: s
    for s in (
        TeacherSpec(
            "grounded-sam",
            "mask",
            "partdistill_cli.teachers.grounded_sam:GroundedSamTeacher",
            "Grounding DINO boxes + SAM masks (best)",
            {"detector": "gdino", "segmenter": "sam"},
            "box_threshold",
            GDINO_BOX_THRESHOLD,
            "detector box score",
            (*_VLM, ("segment_anything", "segment-anything")),
        ),
        TeacherSpec(
            "gdino-boxes",
            "box",
            "partdistill_cli.teachers.boxes:GdinoBoxesTeacher",
            "Grounding DINO boxes only",
            {"detector": "gdino"},
            "box_threshold",
            GDINO_BOX_THRESHOLD,
            "detector box score",
            _VLM,
        ),
        TeacherSpec(
            "owlv2-boxes",
            "box",
            "partdistill_cli.teachers.boxes:Owlv2BoxesTeacher",
            "OWLv2 boxes only",
            {"detector": "owlv2"},
            "box_threshold",
            0.1,
            "detector box score",
            _VLM,
        ),
        TeacherSpec(
            "clipseg",
            "mask",
            "partdistill_cli.teachers.clipseg:ClipSegTeacher",
            "light dense masks",
            {"clipseg": "clipseg"},
            "mask_threshold",
            0.4,
            "mask probability",
            _VLM,
        ),
        TeacherSpec(
            "simulated",
            "mask",
            "partdistill_cli.teachers.simulated:SimulatedTeacher",
            "ground-truth part images corrupted as VLMs fail (evaluation only)",
            needs_ground_truth=True,
        ),
    )
}
DEFAULT_TEACHER = "grounded-sam"
# The vision-language teachers, in the order the command line lists them.
REAL_TEACHERS: tuple[str, ...] = tuple(n for n, s in TEACHER_SPECS.items() if not s.needs_ground_truth)


def teacher_spec(name: str) -> TeacherSpec:
    """The spec of teacher `name`; ConfigError naming the choices for an unknown name."""
    if name not in TEACHER_SPECS:
        raise ConfigError(f"unknown teacher {name!r}; choose from {', '.join(TEACHER_SPECS)}")
    return TEACHER_SPECS[name]


def option_env(teacher: str, option: str) -> str:
    """The environment variable that plays the role of `teacher`'s weight option `option`."""
    return teacher_spec(teacher).env(option)


def used_by(source: str) -> list[str]:
    """The teachers that load weights `source` (a `WEIGHT_SOURCES` key)."""
    return [s.name for s in TEACHER_SPECS.values() if source in s.weights.values()]


def teacher_help(names: tuple[str, ...]) -> str:
    """`--teacher` help: each teacher's phrase."""
    return "; ".join(f"{n}: {TEACHER_SPECS[n].help}" for n in names) + "."


def weight_option_help(option: str) -> str:
    """`--<option>` help: what it names, and for each teacher that takes it, the default and environment variable."""
    uses = []
    for key in dict.fromkeys(s.weights[option] for s in TEACHER_SPECS.values() if option in s.weights):
        src = WEIGHT_SOURCES[key]
        uses.append(f"{src.what} for {', '.join(used_by(key))}: ${src.env} if set, else {src.default}")
    return f"{WEIGHT_OPTION_HELP[option]} ({'; '.join(uses)})."


def threshold_help() -> str:
    """`--threshold` help: each teacher's threshold and default."""
    defaults = ", ".join(
        f"{s.name} {s.default_threshold} ({s.threshold_meaning})" for s in TEACHER_SPECS.values() if s.threshold
    )
    return f"Teacher confidence threshold in [0, 1]; defaults: {defaults}. Lower finds more, with more false positives."
