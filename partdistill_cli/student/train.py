"""Distilling lifted knowledge into a student point network: forward, then backward distillation.

Forward distillation trains on the teacher's units weighted by their scores until the 5-epoch moving average
of the epoch loss flattens; backward distillation then re-scores every unit by the student's agreement with it
and trains on. Nothing here reads ground truth. Runs are seeded (numpy drives all sampling and augmentation,
torch only initialises the weights) and resumable from per-epoch checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from partdistill_cli.knowledge import Knowledge, Labels
from partdistill_cli.shapes import Shape
from partdistill_cli.student.losses import (
    AGREEMENT_MEASURES,
    backward_weights,
    balanced_class_weights,
    point_targets,
    target_loss,
    unresolved_units,
)
from partdistill_cli.student.model import build_backbone, point_features

Mode = Literal["forward", "full"]
# Settings that fix a network's shape; a fine-tuned student keeps its initial student's values of these.
ARCHITECTURE_KEYS = ("backbone", "k", "widths", "global_dim", "head", "dynamic", "dilation", "use_normals", "ensemble")


@dataclass
class DistillConfig:
    """Every knob of the student and its training.

    Network: `backbone` (a `BACKBONES` name), `k` neighbours, EdgeConv `widths`, `global_dim`, `head` widths,
    `dynamic` graphs, `dilation` (the EdgeConvs after the first see every `dilation`-th of the `k * dilation`
    nearest points: the first layer keeps the fine detail, the later ones the reach), `use_normals` (xyz +
    normals as input; normals are estimated for bare point clouds).
    Sampling: each step sees `batch` random subsets of `points_per_shape` points (inference splits a shape into
    subsets of the same size, so the network always sees the same point density). Measured (bench/quality.py,
    2048-point shapes) with one 2048-point subset per step and dilation 2 instead of the defaults: parts under 2%
    of the surface on PartNet-Mobility 14.4 -> 23.0 and its mIoU 63.4 -> 64.6, but ShapeNetPart v0 `harsh`
    56.8 -> 53.9 and `harsh-box` 40.5 -> 37.8 and the Genesis bottle `harsh-box` 34.3 -> 29.6 (a whole shape in
    every step, so the student memorises more of the teacher's errors); about 1.2x the training time.
    A shape of more than `max_points` points trains on, and is predicted at, a fixed random subset of
    `max_points` of them; the others take their nearest subset point's probabilities, so a 5M-point scan costs
    what a 100k-point one does.
    Schedule: an epoch is `max(min_epoch_steps, ceil(total points / (points_per_shape * batch)))` steps of
    AdamW at `lr * lr_decay ** epoch`. Forward distillation runs at least `min_forward_epochs` and at most
    `max_forward_epochs` epochs, stopping once the 5-epoch moving average of the epoch loss changes by less
    than `plateau` (relative); backward distillation then re-scores the units (`agreement`, see
    `losses.backward_weights`; the default "support" keeps the teacher's score of a unit times the larger of its
    agreement judged against its part's other units, which also suits box teachers (counted only where other
    views repeat the unit, so a memorised one-view hallucination fades), and its cross-view consistency, which
    keeps the parts too small for the student to resolve) and runs `backward_epochs`.
    `max_forward_epochs=0` with an initial student re-scores at once (fine-tuning a cached student on a new
    shape's knowledge).
    Targets: each point's target is the confidence-weighted split of the units covering it, `sharpen`ed (see
    `losses.point_targets`): at 4 the student learns each point's leading claim without losing the point's weight,
    which keeps minority parts from being smoothed away (measured: `bench/quality.py`, README "Measuring quality").
    Prediction: given the shape's knowledge, `Student.predict` adds `fuse` times the re-scored view evidence to
    the student's log-probabilities (`fuse_knowledge`; 0 turns it off). A unit of fewer than `resolution` times
    `k` points in one of the student's subsets (`Student.resolution`: 32 points of a 2048-point shape), which other
    views corroborate, is below what the student resolves: the views alone judge it (`losses.unresolved_units`; 0
    turns it off). On a mesh, each connected component holding at most `components` of the points, whose points
    mostly take one part, takes that part as a whole (`components.component_vote`; 0 turns it off).
    `ensemble` students are trained from seeds `seed, seed+1, ...` and their probabilities averaged;
    `tta` prediction passes (different point subsets, the later ones augmented) are averaged too.
    """

    backbone: str = "dgcnn"
    k: int = 16
    widths: tuple[int, ...] = (64, 64, 64)
    global_dim: int = 256
    head: tuple[int, ...] = (256, 128)
    dynamic: bool = False
    dilation: int = 1
    use_normals: bool = True
    points_per_shape: int = 1024
    max_points: int = 100_000
    batch: int = 2
    lr: float = 2e-3
    lr_decay: float = 0.9
    weight_decay: float = 1e-4
    min_epoch_steps: int = 10
    min_forward_epochs: int = 8
    max_forward_epochs: int = 16
    plateau: float = 0.01
    backward_epochs: int = 8
    agreement: str = "support"
    class_weights: bool = False
    sharpen: float = 4.0
    fuse: float = 4.0
    resolution: float = 1.0
    components: float = 0.5
    augment: bool = True
    ensemble: int = 1
    tta: int = 2
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        self.head = tuple(int(w) for w in self.head)
        if self.agreement not in AGREEMENT_MEASURES:
            raise ValueError(f"unknown agreement {self.agreement!r}; choose from {', '.join(AGREEMENT_MEASURES)}")
        for name in ("points_per_shape", "max_points", "batch", "ensemble", "tta", "min_epoch_steps", "k", "dilation"):
            if getattr(self, name) < 1:
                raise ValueError(f"student setting '{name}' must be at least 1, got {getattr(self, name)}")
        if self.sharpen <= 0:
            raise ValueError(f"student setting 'sharpen' must be positive, got {self.sharpen}")
        if not 0.0 <= self.components <= 1.0:
            raise ValueError(f"student setting 'components' is a share in [0, 1], got {self.components}")
        for name in ("fuse", "resolution"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"student setting '{name}' must be a finite number >= 0, got {value}")
        if self.min_forward_epochs > self.max_forward_epochs:
            raise ValueError("min_forward_epochs must not exceed max_forward_epochs")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"], d["head"] = list(self.widths), list(self.head)
        return d

    @staticmethod
    def from_dict(d: dict) -> DistillConfig:
        known = {f.name for f in fields(DistillConfig)}
        return DistillConfig(**{k: v for k, v in d.items() if k in known})

    def model_dict(self) -> dict:
        """The settings that define what a trained student is (device and the prediction-time `fuse`,
        `resolution` and `components` excluded)."""
        d = self.to_dict()
        for name in ("device", "fuse", "resolution", "components"):
            d.pop(name)
        if d["dilation"] == 1:  # students cached before `dilation` existed keep their cache key
            d.pop("dilation")
        return d

    @property
    def in_dim(self) -> int:
        return 6 if self.use_normals else 3


def _build(config: DistillConfig, n_classes: int) -> torch.nn.Module:
    return build_backbone(
        config.backbone,
        config.in_dim,
        n_classes,
        config.k,
        config.widths,
        config.global_dim,
        config.head,
        config.dynamic,
        config.dilation,
    )


def _augment(xyz: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(B, n, 3) points randomly scaled (0.9-1.1), translated (+-0.1) and jittered (sigma 0.01, clip 0.05)."""
    b = xyz.shape[0]
    scale = rng.uniform(0.9, 1.1, size=(b, 1, 1))
    shift = rng.uniform(-0.1, 0.1, size=(b, 1, 3))
    jitter = np.clip(rng.normal(0.0, 0.01, size=xyz.shape), -0.05, 0.05)
    return (xyz * scale + shift + jitter).astype(np.float32)


@dataclass
class Student:
    """A trained student: one or more networks (an ensemble) over an ordered part list.

    Attributes:
        modules: the `config.ensemble` torch networks, each (B, D, n) features -> (B, C, n) logits.
        parts: the C part names, in logit order.
        config: the settings it was built and trained with.
        history: what training recorded: `loss` (per-epoch loss of the first member), `epochs`,
            `backward_epoch` (epoch at which backward distillation started, or None), `trained_on` (shape names).
    """

    modules: list[torch.nn.Module]
    parts: list[str]
    config: DistillConfig
    history: dict = field(default_factory=dict)

    @staticmethod
    def create(parts: list[str], config: DistillConfig) -> Student:
        mods = []
        for j in range(config.ensemble):
            torch.manual_seed(config.seed + j)
            mods.append(_build(config, len(parts)).to(config.device))
        return Student(mods, list(parts), config, {})

    def features(self, shape: Shape) -> np.ndarray:
        """(N, D) float32 input features of `shape`'s points."""
        return point_features(shape.points, shape.normals, self.config.use_normals)

    def predict_features(self, feats: np.ndarray, seed: int = 0, tta: int | None = None) -> np.ndarray:
        """(N, C) float32 class probabilities of (N, D) point features, averaged over members and TTA passes.

        Each pass splits the points at random into subsets of about `points_per_shape` and runs each alone.
        Beyond `config.max_points` points, the network runs on `subsample(N, max_points)` and every other point
        takes its nearest such point's probabilities.
        """
        keep = subsample(len(feats), self.config.max_points)
        if keep is None:
            return self._predict_all(feats, seed, tta)
        from scipy.spatial import cKDTree

        probs = self._predict_all(feats[keep], seed, tta)
        _, nearest = cKDTree(feats[keep, :3]).query(feats[:, :3], workers=-1)
        return probs[nearest]

    @torch.no_grad()
    def _predict_all(self, feats: np.ndarray, seed: int, tta: int | None) -> np.ndarray:
        n = len(feats)
        passes = self.config.tta if tta is None else tta
        rng = np.random.default_rng([seed, 7])
        probs = np.zeros((n, len(self.parts)), dtype=np.float64)
        n_chunks = max(1, round(n / self.config.points_per_shape))
        for module in self.modules:
            module.eval()
            for p in range(passes):
                order = rng.permutation(n)
                x = feats.copy()
                if p > 0:
                    scale = rng.uniform(0.9, 1.1)
                    x[:, :3] = x[:, :3] * scale + rng.uniform(-0.1, 0.1, size=3)
                for chunk in np.array_split(order, n_chunks):
                    inp = torch.from_numpy(x[chunk].T[None].astype(np.float32)).to(self.config.device)
                    out = torch.softmax(module(inp), dim=1)[0].T
                    probs[chunk] += out.cpu().numpy()
        probs /= len(self.modules) * passes
        return probs.astype(np.float32)

    def predict(self, shape: Shape, seed: int = 0, knowledge: Knowledge | None = None) -> Labels:
        """Labels for every point of `shape` (never -1) and, for a mesh, every face.

        With the shape's `knowledge`, the student's probabilities are fused with its re-scored view evidence
        (`fuse_knowledge`, strength `config.fuse`). On a mesh, a connected component of at most
        `config.components` of the points whose points mostly take one part takes it as a whole, faces included
        (`components.component_vote`).

        A face's label comes from the mean probability of its sample points. A face no sample lies on takes
        the student's probabilities interpolated at its centroid from the 3 nearest samples (inverse-distance
        weights): running the network on the centroids themselves would change the point density it sees (a
        small box has as many faces as a big one), which measurably hurt.
        """
        probs = self.predict_features(self.features(shape), seed)
        if knowledge is not None:
            probs = fuse_knowledge(probs, knowledge, self.config.fuse, self.config.agreement, self.resolution(shape))
        voted = face_comp = None
        if shape.is_mesh and shape.face_ids is not None and self.config.components > 0:
            from partdistill_cli.components import component_vote, face_components

            face_comp = face_components(shape)
        if face_comp is not None:
            n_comp = int(face_comp.max()) + 1
            probs, voted, means = component_vote(probs, face_comp[shape.face_ids], self.config.components, n_comp)
            probs = probs.astype(np.float32)
        labels = probs.argmax(axis=1).astype(np.int64)
        face_labels = None
        if shape.is_mesh and shape.face_ids is not None:
            face_probs = np.zeros((len(shape.faces), len(self.parts)), dtype=np.float64)
            np.add.at(face_probs, shape.face_ids, probs)
            unsampled = np.flatnonzero(face_probs.sum(axis=1) == 0)
            if len(unsampled):
                from scipy.spatial import cKDTree

                centroids = shape.vertices[shape.faces[unsampled]].astype(np.float64).mean(axis=1)
                k = min(3, shape.n_points)
                dist, idx = cKDTree(shape.points).query(centroids, k=k)
                dist, idx = dist.reshape(len(unsampled), k), idx.reshape(len(unsampled), k)
                w = 1.0 / np.maximum(dist, 1e-9)
                face_probs[unsampled] = np.einsum("fk,fkc->fc", w / w.sum(axis=1, keepdims=True), probs[idx])
            if voted is not None:  # a voted component's faces, sampled or not, take its part
                in_voted = voted[face_comp]
                face_probs[in_voted] = means[face_comp[in_voted]]
            face_labels = face_probs.argmax(axis=1).astype(np.int64)
        return Labels(labels, probs, list(self.parts), face_labels)

    def resolution(self, shape: Shape) -> float:
        """The size, in points of `shape`, of the smallest unit the student resolves: `config.resolution` times
        `k` points in one of its `points_per_shape`-point subsets (0 when `config.resolution` is 0)."""
        return self.config.resolution * self.config.k * shape.n_points / self.config.points_per_shape

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Flat name -> contiguous CPU tensor of every member's weights and buffers (`m{j}.` prefixed)."""
        out = {}
        for j, module in enumerate(self.modules):
            for name, t in module.state_dict().items():
                out[f"m{j}.{name}"] = t.detach().cpu().contiguous()
        return out

    def meta(self) -> dict:
        """JSON-able description needed to rebuild the networks: parts, config, history."""
        return {"parts": list(self.parts), "config": self.config.to_dict(), "history": self.history}

    @staticmethod
    def from_state(tensors: dict[str, torch.Tensor], meta: dict, device: str = "cpu") -> Student:
        """Rebuild a student from `state_dict()` tensors and `meta()`; raises ValueError if they disagree."""
        config = DistillConfig.from_dict({**meta["config"], "device": device})
        student = Student.create(list(meta["parts"]), config)
        student.history = dict(meta.get("history") or {})
        for j, module in enumerate(student.modules):
            prefix = f"m{j}."
            own = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            try:
                module.load_state_dict(own, strict=True)
            except RuntimeError as exc:
                raise ValueError(f"student weights do not fit its configuration ({exc})") from exc
        return student


def fuse_knowledge(
    probs: np.ndarray, knowledge: Knowledge, strength: float, agreement: str, resolution: float = 0.0
) -> np.ndarray:
    """(N, C) float32 softmax(log p + strength * E): the student's (N, C) probabilities `probs` as the prior,
    the knowledge's view evidence E as the likelihood (`vote.view_evidence`, each unit weighed by its
    backward re-score under `agreement` against the student's own labels).

    Units below the student's `resolution` (fewer points than that, corroborated by other views:
    `losses.unresolved_units`) are judged by the views alone: they keep the teacher's score, and where one names
    a part at a point, the student's probability of that part there is raised to its top probability (a prior
    that says nothing), so the views decide between the small part and the student's choice. 0 turns it off.

    The student carries what many views and its smoothing agree on (and labels points no view saw: E = 0
    there); the re-scored evidence keeps detail the student blurred where the views consistently name a part.
    A unit the student contradicts and no other view repeats weighs little ("support" fades it), so the
    fusion does not restore the teacher's inconsistent answers. Strength 4 with "support" was chosen on a
    35-shape development set (2 to 8: PartNet-Mobility 65.5 to 66.6, the other sets within 0.5; from 10 on,
    PartNet-Mobility gets parts the teacher hallucinated back) and measured in README "Measuring quality".
    """
    from partdistill_cli.vote import view_evidence, vote_scores

    probs = np.asarray(probs)
    if probs.shape != (knowledge.n_points, knowledge.n_parts):
        raise ValueError(
            f"expected ({knowledge.n_points}, {knowledge.n_parts}) probabilities for the knowledge, got {probs.shape}"
        )
    if strength == 0 or knowledge.n_units == 0:
        return probs.astype(np.float32)
    units, _ = backward_weights(knowledge, probs, agreement)
    log_prior = np.log(np.clip(probs.astype(np.float64), 1e-6, 1.0))
    fine = unresolved_units(knowledge, resolution)
    if fine.any():
        units = np.where(fine, knowledge.scores, units)
        named = vote_scores(knowledge, fine.astype(np.float64)) > 0
        log_prior = np.where(named, log_prior.max(axis=1, keepdims=True), log_prior)
    logits = log_prior + strength * view_evidence(knowledge, units)
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def subsample(n: int, cap: int) -> np.ndarray | None:
    """Sorted indices of a fixed random `cap` of `n` points (the same for every call), or None if n <= cap."""
    if n <= cap:
        return None
    return np.sort(np.random.default_rng([n, cap, 3]).choice(n, size=cap, replace=False))


@dataclass
class _Item:
    feats: np.ndarray
    knowledge: Knowledge
    weights: np.ndarray
    targets: np.ndarray
    pool: np.ndarray | None = None  # the points training draws from (None: all)


def _targets(item: _Item, config: DistillConfig, member_w: np.ndarray | None = None) -> np.ndarray:
    cw = balanced_class_weights(item.knowledge, item.weights) if config.class_weights else None
    return point_targets(item.knowledge, item.weights, cw, member_w, config.sharpen)


def _fingerprint(items: list[tuple[Shape, Knowledge]], config: DistillConfig, mode: str, init) -> str:
    h = hashlib.sha256(json.dumps([config.model_dict(), mode], sort_keys=True).encode())
    for shape, k in items:
        h.update(shape.fingerprint().encode())
        for a in (k.labels, k.scores, k.indptr, k.indices):
            h.update(np.ascontiguousarray(a).tobytes())
    if init is not None:
        for t in init.state_dict().values():
            h.update(t.numpy().tobytes())
    return h.hexdigest()[:24]


class _Checkpoint:
    """Per-member training state in `dir`: `member{j}.safetensors` (network, optimizer, unit weights) and
    `member{j}.json` (epoch, phase, losses, numpy RNG state, fingerprint of the data and settings)."""

    def __init__(self, directory: Path | None, fingerprint: str):
        self.dir = None if directory is None else Path(directory)
        self.fingerprint = fingerprint

    def save(self, j: int, module, opt, items: list[_Item], state: dict) -> None:
        if self.dir is None:
            return
        from safetensors.torch import save_file

        from partdistill_cli.io_utils import atomic_path, write_text

        tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
        opt_state = opt.state_dict()
        for pid, st in opt_state["state"].items():
            for name, v in st.items():
                tensors[f"opt.{pid}.{name}"] = torch.as_tensor(v).detach().cpu().contiguous()
        for i, item in enumerate(items):
            tensors[f"w.{i}"] = torch.from_numpy(np.ascontiguousarray(item.weights, dtype=np.float32))
            tensors[f"t.{i}"] = torch.from_numpy(np.ascontiguousarray(item.targets))
        with atomic_path(self.dir / f"member{j}.safetensors") as tmp:
            save_file(tensors, str(tmp))
        write_text(self.dir / f"member{j}.json", json.dumps({**state, "fingerprint": self.fingerprint}))

    def load(self, j: int, module, opt, items: list[_Item]) -> dict | None:
        """The saved state of member j (restoring network, optimizer, weights), or None to start fresh."""
        if self.dir is None:
            return None
        meta_path, weights_path = self.dir / f"member{j}.json", self.dir / f"member{j}.safetensors"
        if not (meta_path.is_file() and weights_path.is_file()):
            return None
        from safetensors.torch import load_file

        from partdistill_cli.console import console

        try:
            state = json.loads(meta_path.read_text())
            if state.get("fingerprint") != self.fingerprint:
                console.print(f"[yellow]{self.dir}: checkpoint is of other data or settings; starting afresh[/]")
                return None
            tensors = load_file(str(weights_path))
            module.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
            opt_state = opt.state_dict()
            for pid in range(len(opt_state["param_groups"][0]["params"])):
                names = [k for k in tensors if k.startswith(f"opt.{pid}.")]
                if names:
                    opt_state["state"][pid] = {k.split(".", 2)[2]: tensors[k] for k in names}
            opt.load_state_dict(opt_state)
            for i, item in enumerate(items):
                item.weights = tensors[f"w.{i}"].numpy().astype(np.float64)
                item.targets = tensors[f"t.{i}"].numpy()
        except Exception as exc:  # any unreadable checkpoint means "train from scratch", never a crash
            console.print(f"[yellow]{self.dir}: cannot resume from checkpoint ({exc}); starting afresh[/]")
            return None
        done = "finished" if state.get("done") else f"{state['phase']}, epoch {state['epoch']}"
        console.print(f"resuming student {j + 1} from its checkpoint ({done}) in {self.dir}")
        return state

    def clear(self) -> None:
        """Remove this run's checkpoint files (once training has finished), and the folder if that empties it."""
        if self.dir is None or not self.dir.is_dir():
            return
        for pattern in ("member*.json", "member*.safetensors"):
            for path in self.dir.glob(pattern):
                path.unlink(missing_ok=True)
        try:
            self.dir.rmdir()
        except OSError:  # other files (not ours) remain: leave the folder
            pass


def _epoch_steps(items: list[_Item], config: DistillConfig) -> int:
    total = sum(len(it.feats) if it.pool is None else len(it.pool) for it in items)
    return max(config.min_epoch_steps, math.ceil(total / (config.points_per_shape * config.batch)))


def _batch(items: list[_Item], config: DistillConfig, rng: np.random.Generator):
    feats, targets = [], []
    for s in rng.integers(len(items), size=config.batch):
        it = items[s]
        n = len(it.feats) if it.pool is None else len(it.pool)
        pick = rng.choice(n, size=config.points_per_shape, replace=n < config.points_per_shape)
        if it.pool is not None:
            pick = it.pool[pick]
        feats.append(it.feats[pick])
        targets.append(it.targets[pick])
    x = np.stack(feats)
    if config.augment:
        x[:, :, :3] = _augment(x[:, :, :3], rng)
    t = np.stack(targets)
    return torch.from_numpy(x.transpose(0, 2, 1).copy()), torch.from_numpy(t.transpose(0, 2, 1).copy())


def _plateaued(losses: list[float], threshold: float) -> bool:
    if len(losses) < 6:
        return False
    now, before = np.mean(losses[-5:]), np.mean(losses[-6:-1])
    return abs(before - now) <= threshold * max(abs(before), 1e-12)


def _backward_weights(member: Student, items: list[_Item], config: DistillConfig, seed: int) -> None:
    for i, item in enumerate(items):
        probs = member.predict_features(item.feats, seed=seed + i, tta=1)
        item.weights, member_w = backward_weights(item.knowledge, probs, config.agreement)
        item.targets = _targets(item, config, member_w)


def _advance_phase(state: dict, member: Student, items: list[_Item], config: DistillConfig, mode: Mode, j: int):
    """Switch forward -> backward (re-scoring the units) or finish, by the epoch count and loss plateau."""
    if state["phase"] == "forward":
        flat = state["epoch"] >= config.min_forward_epochs and _plateaued(state["losses"], config.plateau)
        if flat or state["epoch"] >= config.max_forward_epochs:
            if mode == "full":
                _backward_weights(member, items, config, seed=config.seed + 101 * j)
                state["phase"], state["backward_epoch"] = "backward", state["epoch"]
            else:
                state["done"] = True
    if state["phase"] == "backward" and state["epoch"] - state["backward_epoch"] >= config.backward_epochs:
        state["done"] = True


def _train_member(
    j: int,
    student: Student,
    items: list[_Item],
    config: DistillConfig,
    mode: Mode,
    ckpt: _Checkpoint,
    bar,
    lr_epoch0: int = 0,
    on_epoch: Callable[[int, int, float, str], None] | None = None,
) -> dict:
    module = student.modules[j]
    opt = torch.optim.AdamW(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    member = Student([module], student.parts, config)
    steps = _epoch_steps(items, config)
    max_epochs = config.max_forward_epochs + (config.backward_epochs if mode == "full" else 0)
    state = ckpt.load(j, module, opt, items)
    if state is None:
        state = {"epoch": 0, "phase": "forward", "losses": [], "backward_epoch": None, "done": False}
        rng = np.random.default_rng([config.seed, j, 11])
    else:
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng"]
    task = bar.add_task(f"student {j + 1}/{config.ensemble}", total=max_epochs * steps, status="") if bar else None
    if bar:
        bar.update(task, completed=state["epoch"] * steps)
    while True:
        _advance_phase(state, member, items, config, mode, j)
        if state["done"]:
            break
        module.train()
        for group in opt.param_groups:
            group["lr"] = config.lr * config.lr_decay ** (lr_epoch0 + state["epoch"])
        total = 0.0
        for _ in range(steps):
            x, t = _batch(items, config, rng)
            loss = target_loss(module(x.to(config.device)), t.to(config.device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
            if bar:
                bar.update(task, advance=1, status=f"{state['phase']} loss {float(loss.detach()):.4f}")
        state["losses"].append(total / steps)
        state["epoch"] += 1
        state["rng"] = rng.bit_generator.state
        ckpt.save(j, module, opt, items, state)
        if on_epoch is not None:
            on_epoch(state["epoch"], max_epochs, state["losses"][-1], state["phase"])
    if bar:
        bar.update(task, completed=max_epochs * steps)
    return state


def distill(
    items: list[tuple[Shape, Knowledge]],
    config: DistillConfig,
    mode: Mode = "full",
    init: Student | None = None,
    checkpoint_dir: Path | None = None,
    show_progress: bool = True,
    on_epoch: Callable[[int, int, float, str], None] | None = None,
) -> Student:
    """Train a student on the knowledge of one or more shapes (no ground truth is read).

    Args:
        items: (shape, knowledge) pairs; every knowledge must be over its shape's N points and all must share
            one ordered part list (which may end with a background part such as "other").
        config: network and schedule settings.
        mode: "forward" (score-weighted units only) or "full" (forward, then backward re-scoring).
        init: a student to start from (fine-tuning); its parts must equal the knowledge's parts.
        checkpoint_dir: where per-epoch checkpoints are written; a run with the same data and settings resumes
            from them.
        show_progress: draw a rich progress bar with the loss.
        on_epoch: called after every epoch with (epoch, max_epochs, epoch loss, phase "forward" | "backward").
    """
    if not items:
        raise ValueError("distill needs at least one (shape, knowledge) pair")
    if mode not in ("forward", "full"):
        raise ValueError(f"mode must be 'forward' or 'full', got {mode!r}")
    parts = list(items[0][1].parts)
    for shape, k in items:
        if list(k.parts) != parts:
            raise ValueError(f"{shape.name}: its knowledge has parts {k.parts}, expected {parts}")
        if k.n_points != shape.n_points:
            raise ValueError(f"{shape.name}: knowledge covers {k.n_points} points, the shape has {shape.n_points}")
    if sum(k.n_units for _, k in items) == 0:
        raise ValueError("the knowledge holds no units: the teacher found nothing to distill")
    if init is not None:
        if list(init.parts) != parts:
            raise ValueError(f"the initial student knows parts {init.parts}, the knowledge has {parts}")
        arch = {k: v for k, v in init.config.to_dict().items() if k in ARCHITECTURE_KEYS}
        config = DistillConfig.from_dict({**config.to_dict(), **arch})
        student = Student.from_state(init.state_dict(), init.meta(), config.device)
        student.config = config
    else:
        student = Student.create(parts, config)
    prepared = []
    for shape, k in items:
        feats = student.features(shape)
        it = _Item(
            feats, k, k.scores.astype(np.float64), np.zeros(0, np.float32), subsample(len(feats), config.max_points)
        )
        it.targets = _targets(it, config)
        prepared.append(it)
    initial = [(it.weights.copy(), it.targets.copy()) for it in prepared]
    # A fine-tuned student continues its learning-rate schedule where its training left it.
    lr_epoch0 = int(init.history.get("epochs", 0)) if init is not None else 0
    ckpt = _Checkpoint(checkpoint_dir, _fingerprint(items, config, mode, init))
    from partdistill_cli.console import progress

    bar = progress(transient=True) if show_progress else None
    states = []
    try:
        if bar:
            bar.start()
        for j in range(config.ensemble):
            for it, (w, t) in zip(prepared, initial, strict=True):
                it.weights, it.targets = w.copy(), t.copy()
            states.append(_train_member(j, student, prepared, config, mode, ckpt, bar, lr_epoch0, on_epoch))
    finally:
        if bar:
            bar.stop()
    # Checkpoints exist to resume an interrupted training; a finished one needs them no more.
    ckpt.clear()
    # A fine-tuned student's history continues its initial student's: epochs and the loss curve add up.
    before = init.history if init is not None else {}
    backward = states[0]["backward_epoch"]
    student.history = {
        "loss": [float(x) for x in before.get("loss", [])] + [float(x) for x in states[0]["losses"]],
        "epochs": lr_epoch0 + int(states[0]["epoch"]),
        "backward_epoch": before.get("backward_epoch") if backward is None else lr_epoch0 + int(backward),
        "trained_on": list(dict.fromkeys([*before.get("trained_on", []), *(shape.name for shape, _ in items)])),
        "mode": mode,
    }
    return student
