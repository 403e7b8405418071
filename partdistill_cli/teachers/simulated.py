"""The simulated teacher: ground-truth part images corrupted the way VLMs fail (DESIGN.md section 6).

For evaluation and tests only: it needs ground truth, so it can never stand in for a real VLM on a user's shape.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path

import numpy as np
from scipy import ndimage

from partdistill_cli.knowledge import Detection
from partdistill_cli.render.base import Views

PRESETS = ("clean", "default", "harsh")
MIN_PART_PX = 8


@dataclass(frozen=True)
class NoiseConfig:
    """How the simulated teacher corrupts ground truth.

    seed: base random seed. miss: probability a part present in a view is not detected there. swap:
    probability a detection is given another (random) part's name. boundary_px: masks are eroded or dilated by
    a random 0..boundary_px pixels. box: detections are boxes (box-VLM mode) instead of masks.
    false_positives: expected spurious blobs per view, each with a random part name. merge_instances: all
    instances of a part in a view in one mask / box (else one per connected instance). score_right /
    score_wrong: [lo, hi] of the uniform scores of right / wrong detections. systematic: probability per shape
    that one part is called by another part's name in most (80%) of the views.
    """

    seed: int = 0
    miss: float = 0.0
    swap: float = 0.0
    boundary_px: int = 0
    box: bool = False
    false_positives: float = 0.0
    merge_instances: bool = False
    score_right: tuple[float, float] = (0.9, 0.9)
    score_wrong: tuple[float, float] = (0.9, 0.9)
    systematic: float = 0.0

    @staticmethod
    def from_dict(d: dict) -> NoiseConfig:
        known = {f.name for f in fields(NoiseConfig)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown noise key(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        for name, value in d.items():
            _check_type(name, value)
        cfg = NoiseConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})
        for name in ("miss", "swap", "systematic"):
            if not 0.0 <= getattr(cfg, name) <= 1.0:
                raise ValueError(f"noise '{name}' is a probability in [0, 1], got {getattr(cfg, name)}")
        for name in ("score_right", "score_wrong"):
            lo, hi = getattr(cfg, name)
            if not 0.0 <= lo <= hi <= 1.0:
                raise ValueError(f"noise '{name}' must be [lo, hi] with 0 <= lo <= hi <= 1")
        if cfg.boundary_px < 0 or cfg.false_positives < 0:
            raise ValueError("noise 'boundary_px' and 'false_positives' must be >= 0")
        return cfg

    def to_dict(self) -> dict:
        d = asdict(self)
        d["score_right"], d["score_wrong"] = list(self.score_right), list(self.score_wrong)
        return d


_INTEGERS, _FLAGS, _RANGES = {"seed", "boundary_px"}, {"box", "merge_instances"}, {"score_right", "score_wrong"}


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_type(name: str, value) -> None:
    """ValueError unless the JSON value of noise setting `name` has its type (the dataclass does not check)."""
    if name in _FLAGS:
        ok, kind = isinstance(value, bool), "true or false"
    elif name in _INTEGERS:
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif name in _RANGES:
        ok = isinstance(value, list | tuple) and len(value) == 2 and all(_is_number(v) for v in value)
        kind = "[lo, hi], two numbers"
    else:
        ok, kind = _is_number(value), "a number"
    if not ok:
        raise ValueError(f"noise '{name}' must be {kind}, got {value!r}")


def load_noise(spec: str | Path) -> NoiseConfig:
    """A preset name (clean, default, harsh) or a JSON file path -> NoiseConfig."""
    if str(spec) in PRESETS:
        text = resources.files("partdistill_cli.assets").joinpath(f"noise/{spec}.json").read_text()
        return NoiseConfig.from_dict(json.loads(text))
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"noise {spec!r} is neither a preset ({', '.join(PRESETS)}) nor a JSON file")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of noise settings")
    try:
        return NoiseConfig.from_dict(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def _box_of(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


class SimulatedTeacher:
    """Teacher that reads ground-truth part images and corrupts them with a `NoiseConfig`.

    Args:
        primitive_labels: ground-truth part per primitive of the views (per face for meshes, per point for
            point clouds), -1 for none.
        noise: the corruption settings.
        shape_seed: mixed with `noise.seed` so that each shape draws its own errors reproducibly.
    """

    def __init__(self, primitive_labels: np.ndarray, noise: NoiseConfig | None = None, shape_seed: int = 0):
        self.primitive_labels = np.asarray(primitive_labels, dtype=np.int64)
        self.noise = noise or NoiseConfig()
        self.shape_seed = shape_seed
        self.kind = "box" if self.noise.box else "mask"
        self.weights: dict[str, str] = {}
        self.name = "simulated-" + json.dumps(self.noise.to_dict(), sort_keys=True)

    def detect(self, views: Views, parts: list[str], category: str | None = None) -> list[Detection]:
        cfg = self.noise
        rng = np.random.default_rng([cfg.seed, self.shape_seed])
        n_parts = len(parts)
        part_img = views.part_images(self.primitive_labels)
        present = [p for p in np.unique(part_img) if p >= 0]
        confusion: dict[int, int] = {}
        if n_parts > 1 and present and rng.random() < cfg.systematic:
            a = int(rng.choice(present))
            confusion[a] = int(rng.choice([p for p in range(n_parts) if p != a]))
        detections: list[Detection] = []
        for v in range(views.n_views):
            img = part_img[v]
            for part in np.unique(img):
                if part < 0 or rng.random() < cfg.miss:
                    continue
                whole = img == part
                if whole.sum() < MIN_PART_PX:
                    continue
                if cfg.merge_instances:
                    instances = [whole]
                else:
                    comp, n = ndimage.label(whole)
                    instances = [comp == i for i in range(1, n + 1)]
                for inst in instances:
                    mask = self._perturb_boundary(inst, rng)
                    if mask.sum() < MIN_PART_PX:
                        continue
                    name, wrong = int(part), False
                    if part in confusion and rng.random() < 0.8:
                        name, wrong = confusion[int(part)], True
                    elif n_parts > 1 and rng.random() < cfg.swap:
                        name, wrong = int(rng.choice([p for p in range(n_parts) if p != part])), True
                    detections.append(self._make(v, name, mask, wrong, rng))
            for _ in range(rng.poisson(cfg.false_positives)):
                blob = self._blob(views.ids[v] >= 0, rng)
                if blob is not None:
                    detections.append(self._make(v, int(rng.integers(n_parts)), blob, True, rng))
        return detections

    def _make(self, view: int, part: int, mask: np.ndarray, wrong: bool, rng) -> Detection:
        lo, hi = self.noise.score_wrong if wrong else self.noise.score_right
        score = float(rng.uniform(lo, hi))
        if self.noise.box:
            return Detection(view, part, score, box=_box_of(mask))
        return Detection(view, part, score, mask=mask)

    def _perturb_boundary(self, mask: np.ndarray, rng) -> np.ndarray:
        k = int(rng.integers(-self.noise.boundary_px, self.noise.boundary_px + 1)) if self.noise.boundary_px else 0
        if k > 0:
            return ndimage.binary_dilation(mask, iterations=k)
        if k < 0:
            return ndimage.binary_erosion(mask, iterations=-k)
        return mask

    @staticmethod
    def _blob(foreground: np.ndarray, rng) -> np.ndarray | None:
        """A random disk centred on the object (a spurious detection)."""
        ys, xs = np.nonzero(foreground)
        if len(ys) == 0:
            return None
        i = int(rng.integers(len(ys)))
        h, w = foreground.shape
        radius = rng.uniform(0.04, 0.12) * min(h, w)
        yy, xx = np.ogrid[:h, :w]
        return ((yy - ys[i]) ** 2 + (xx - xs[i]) ** 2 <= radius**2) & foreground
