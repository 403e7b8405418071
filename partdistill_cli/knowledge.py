"""2D knowledge from a teacher (`Detection`) and its lifted 3D form (`Knowledge`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Detection:
    """One piece of 2D knowledge in one view.

    Attributes:
        view: index of the view it was found in.
        part: index into the part list.
        score: teacher confidence in [0, 1].
        mask: (H, W) bool pixel mask (pixel-level teachers), or None.
        box: (4,) float64 XYXY pixel box, x1/y1 exclusive (box-level teachers), or None.
    """

    view: int
    part: int
    score: float
    mask: np.ndarray | None = None
    box: np.ndarray | None = None

    def __post_init__(self) -> None:
        if (self.mask is None) == (self.box is None):
            raise ValueError("a Detection has exactly one of a mask or a box")
        if not 0.0 <= float(self.score) <= 1.0:
            raise ValueError(f"a detection score must lie in [0, 1], got {self.score}")


@dataclass
class Knowledge:
    """K units of lifted knowledge over a shape's N points.

    Attributes:
        labels: (K,) int64 part index of each unit.
        scores: (K,) float32 teacher confidence of each unit.
        views: (K,) int64 view each unit came from.
        indptr: (K + 1,) int64 and indices: (nnz,) int64, CSR membership: unit k covers points
            indices[indptr[k]:indptr[k + 1]] (sorted, no repeats).
        n_points: N.
        parts: the C part names the labels index.
    """

    labels: np.ndarray
    scores: np.ndarray
    views: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    n_points: int
    parts: list[str]

    @property
    def n_units(self) -> int:
        return int(len(self.labels))

    @property
    def n_parts(self) -> int:
        return len(self.parts)

    def unit_sizes(self) -> np.ndarray:
        return np.diff(self.indptr)

    def unit(self, k: int) -> np.ndarray:
        return self.indices[self.indptr[k] : self.indptr[k + 1]]

    def membership(self):
        """(K, N) scipy.sparse CSR float32 matrix M with M[k, i] = 1 when unit k covers point i."""
        from scipy.sparse import csr_matrix

        data = np.ones(len(self.indices), dtype=np.float32)
        return csr_matrix((data, self.indices, self.indptr), shape=(self.n_units, self.n_points))

    def covered(self) -> np.ndarray:
        """(N,) bool: covered by at least one unit."""
        out = np.zeros(self.n_points, dtype=bool)
        out[self.indices] = True
        return out

    def save(self, path: str | Path) -> None:
        """Write to `path` (.npz) atomically."""
        from partdistill_cli.io_utils import atomic_path

        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(
                    f,
                    labels=self.labels,
                    scores=self.scores,
                    views=self.views,
                    indptr=self.indptr,
                    indices=self.indices,
                    n_points=np.int64(self.n_points),
                    parts=np.array(self.parts, dtype=str),
                )

    @staticmethod
    def load(path: str | Path) -> Knowledge:
        """Read a `.npz` written by `save` (no pickles are loaded); raises ValueError if it is not one."""
        try:
            with np.load(path, allow_pickle=False) as z:
                k = Knowledge(
                    z["labels"].astype(np.int64),
                    z["scores"].astype(np.float32),
                    z["views"].astype(np.int64),
                    z["indptr"].astype(np.int64),
                    z["indices"].astype(np.int64),
                    int(z["n_points"]),
                    [str(p) for p in z["parts"]],
                )
        except Exception as exc:
            raise ValueError(f"{path}: not a partdistill knowledge file ({exc})") from exc
        k.validate()
        return k

    def validate(self) -> None:
        k = self.n_units
        if not (len(self.scores) == len(self.views) == k and len(self.indptr) == k + 1):
            raise ValueError("knowledge arrays disagree in length")
        if self.indptr[0] != 0 or self.indptr[-1] != len(self.indices) or np.any(np.diff(self.indptr) < 0):
            raise ValueError("knowledge membership pointers are inconsistent")
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= self.n_points):
            raise ValueError("knowledge refers to points that do not exist")
        if k and (self.labels.min() < 0 or self.labels.max() >= len(self.parts)):
            raise ValueError("knowledge labels fall outside the part list")

    @staticmethod
    def empty(n_points: int, parts: list[str]) -> Knowledge:
        z = np.zeros(0, dtype=np.int64)
        return Knowledge(z, z.astype(np.float32), z, np.zeros(1, np.int64), z, n_points, list(parts))

    @staticmethod
    def concatenate(items: list[Knowledge]) -> Knowledge:
        """Units of several knowledge sets over the same points."""
        if not items:
            raise ValueError("nothing to concatenate")
        n, parts = items[0].n_points, items[0].parts
        offsets = np.cumsum([0] + [len(k.indices) for k in items[:-1]])
        return Knowledge(
            np.concatenate([k.labels for k in items]),
            np.concatenate([k.scores for k in items]),
            np.concatenate([k.views for k in items]),
            np.concatenate([[0]] + [k.indptr[1:] + o for k, o in zip(items, offsets, strict=True)]),
            np.concatenate([k.indices for k in items]),
            n,
            parts,
        )


@dataclass
class Labels:
    """A segmentation of a shape's N points (and, for meshes, its F faces).

    Attributes:
        point_labels: (N,) int64 part index per point in [0, C), or -1 where the method could not label.
        probs: (N, C) float32 per-point class probabilities (rows of unlabeled points are all zero).
        face_labels: (F,) int64 part index per face for meshes, else None.
        parts: the C part names.
    """

    point_labels: np.ndarray
    probs: np.ndarray
    parts: list[str]
    face_labels: np.ndarray | None = None

    @property
    def coverage(self) -> float:
        return float((self.point_labels >= 0).mean()) if len(self.point_labels) else 0.0


def face_labels_from_points(shape, probs: np.ndarray) -> np.ndarray:
    """(F,) int64 label of every face of a mesh `Shape` from (N, C) per-sample-point class probabilities.

    A face takes the class with the largest summed probability over its samples; a face with no sample (small
    faces) takes the class of the sample nearest to its centroid. Every face gets a label.
    """
    from scipy.spatial import cKDTree

    n_faces, n_classes = len(shape.faces), probs.shape[1]
    votes = np.zeros((n_faces, n_classes), dtype=np.float64)
    np.add.at(votes, shape.face_ids, probs)
    labels = votes.argmax(axis=1)
    empty = votes.sum(axis=1) <= 0
    if empty.any():
        centroids = shape.vertices[shape.faces[empty]].mean(axis=1)
        _, nearest = cKDTree(shape.points).query(centroids, k=1)
        labels[empty] = probs[nearest].argmax(axis=1)
    return labels.astype(np.int64)
