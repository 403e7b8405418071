"""Shared test helpers: small constructed shapes with known parts, and the path of ../shared/data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data, skipping the test with a reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the ../shared data folder is not beside this checkout)")
    return path


def two_box_mesh() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A tall box (part 0) standing on a wide flat box (part 1): vertices, faces, per-face labels."""
    base = trimesh.creation.box(extents=(1.0, 0.2, 1.0))
    tower = trimesh.creation.box(extents=(0.3, 0.8, 0.3))
    tower.apply_translation((0, 0.5, 0))
    vertices = np.concatenate([tower.vertices, base.vertices])
    faces = np.concatenate([tower.faces, base.faces + len(tower.vertices)])
    labels = np.concatenate([np.zeros(len(tower.faces), int), np.ones(len(base.faces), int)])
    return vertices, faces, labels
