"""The procedural shape generator: labels, determinism, variety, plausibility, and the sample files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from partdistill_cli import procedural
from partdistill_cli.datasets import load_dataset, read_mesh
from partdistill_cli.io_utils import OutputError
from partdistill_cli.shapes import sample_surface

CATEGORIES = list(procedural.CATEGORIES)
SAMPLES = Path(procedural.__file__).parent / "assets" / "samples"


def _part(category: str, seed: int, name: str) -> np.ndarray:
    """(M, 3) vertices of the faces of part `name`."""
    v, f, labels, parts = procedural.generate(category, seed)
    return v[np.unique(f[labels == parts.index(name)])]


def _pieces_in_contact(v: np.ndarray, f: np.ndarray) -> tuple[int, int]:
    """(number of separate primitives, number of groups they form when touching ones are joined)."""
    n = len(v)
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    _, vertex_piece = connected_components(
        sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n)), directed=False
    )
    face_piece = vertex_piece[f[:, 0]]
    points, face_ids, _ = sample_surface(v, f, 20000, seed=0)
    diag = np.linalg.norm(v.max(0) - v.min(0))
    pairs = cKDTree(points).query_pairs(0.01 * diag, output_type="ndarray")
    a, b = face_piece[face_ids[pairs[:, 0]]], face_piece[face_ids[pairs[:, 1]]]
    k = int(face_piece.max()) + 1
    groups, _ = connected_components(sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(k, k)), directed=False)
    return k, groups


@pytest.mark.parametrize("category", CATEGORIES)
def test_generate_invariants(category):
    for seed in (0, 1):
        v, f, labels, parts = procedural.generate(category, seed)
        assert parts == procedural.CATEGORIES[category]
        assert v.ndim == 2 and v.shape[1] == 3 and np.isfinite(v).all()
        assert f.dtype == np.int64 and f.shape[1] == 3 and f.min() >= 0 and f.max() < len(v)
        assert labels.shape == (len(f),) and labels.dtype == np.int64
        assert labels.min() >= 0 and labels.max() < len(parts)
        assert 200 <= len(f) <= 8000
        # y is up: the object stands on (or hangs above) y = 0 and is not flat.
        assert v[:, 1].min() >= -1e-9 or category in ("airplane", "rocket")


@pytest.mark.parametrize("category", CATEGORIES)
def test_generate_is_deterministic_and_varies_with_seed(category):
    a = procedural.generate(category, 7)
    b = procedural.generate(category, 7)
    assert all(np.array_equal(x, y) for x, y in zip(a[:3], b[:3], strict=True))
    c = procedural.generate(category, 8)
    assert a[0].shape != c[0].shape or not np.allclose(a[0], c[0])


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_part_present_with_default_settings(category):
    parts = procedural.CATEGORIES[category]
    seen = set()
    for seed in range(5):  # procedural_dataset's defaults: 5 shapes per category, seeds 0..4
        _, _, labels, _ = procedural.generate(category, seed)
        seen |= set(labels.tolist())
    assert seen == set(range(len(parts)))


@pytest.mark.parametrize("category", CATEGORIES)
def test_parts_touch_each_other(category):
    for seed in (0, 1, 2):
        v, f, _, _ = procedural.generate(category, seed)
        n_pieces, groups = _pieces_in_contact(v, f)
        assert n_pieces >= 2 and groups == 1, f"{category} seed {seed}: {groups} separate groups"


def test_contact_check_finds_a_floating_part():
    v, f, labels, parts = procedural.generate("chair", 0)
    lifted = v.copy()
    lifted[np.unique(f[labels == parts.index("back")])] += [0, 0.3, 0]
    assert _pieces_in_contact(lifted, f)[1] > 1


def test_plausible_layouts():
    for seed in range(4):
        seat, legs, back = (_part("chair", seed, p) for p in ("seat", "leg", "back"))
        assert np.isclose(legs[:, 1].min(), 0) and legs[:, 1].max() <= seat[:, 1].max() + 1e-9
        assert back[:, 1].mean() > seat[:, 1].mean() and back[:, 0].mean() < seat[:, 0].mean()
        top, table_legs = _part("table", seed, "tabletop"), _part("table", seed, "leg")
        assert top[:, 1].min() >= table_legs[:, 1].max() - 1e-9
        handle, cup = _part("mug", seed, "handle"), _part("mug", seed, "cup")
        assert handle[:, 0].max() > cup[:, 0].max()
        body, wing = _part("airplane", seed, "body"), _part("airplane", seed, "wing")
        assert np.ptp(wing[:, 2]) > np.ptp(body[:, 2]) and body[:, 0].max() > wing[:, 0].max()
        # Two wings, symmetric about the fuselage's vertical plane.
        assert np.isclose(wing[:, 2].max(), -wing[:, 2].min())
        blade, knife_handle = _part("knife", seed, "blade"), _part("knife", seed, "handle")
        assert blade[:, 1].mean() > knife_handle[:, 1].mean()


def test_chair_has_four_legs_and_armrests_come_in_pairs():
    for seed in range(6):
        v, f, labels, parts = procedural.generate("chair", seed)
        feet = v[np.unique(f[labels == parts.index("leg")])]
        feet = feet[feet[:, 1] < 1e-9]
        quadrants = {(bool(x > 0), bool(z > 0)) for x, _, z in feet}
        assert len(quadrants) == 4
        arms = v[np.unique(f[labels == parts.index("armrest")])]
        if len(arms):
            assert arms[:, 2].max() > 0 > arms[:, 2].min()


def test_procedural_dataset():
    shapes = procedural.procedural_dataset(["Mug", "lamp"], per_category=2, seed=3, n_points=300)
    assert [s.name for s in shapes] == ["mug_0", "mug_1", "lamp_0", "lamp_1"]
    for s in shapes:
        assert s.shape.n_points == 300 and s.parts == procedural.CATEGORIES[s.category]
        assert np.array_equal(s.point_labels, s.face_labels[s.shape.face_ids])
    _, faces, labels, _ = procedural.generate("lamp", 4)
    assert np.array_equal(shapes[3].shape.faces, faces) and np.array_equal(shapes[3].face_labels, labels)


def test_unknown_category_and_bad_seed():
    with pytest.raises(ValueError, match="no procedural generator for 'spaceship'"):
        procedural.generate("spaceship", 0)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        procedural.generate("mug", -1)


def test_write_labeled_mesh_folder_refuses_to_overwrite(tmp_path):
    paths = procedural.write_labeled_mesh_folder(tmp_path, "knife", 2, seed=5)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta == {"category": "knife", "parts": procedural.CATEGORIES["knife"]}
    assert all(p.is_file() for p in paths)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left
    with pytest.raises(OutputError, match="already exists"):
        procedural.write_labeled_mesh_folder(tmp_path, "knife", 1, seed=0)
    procedural.write_labeled_mesh_folder(tmp_path, "knife", 1, seed=0, overwrite=True)
    _, faces = read_mesh(tmp_path / "knife_0.obj")
    assert np.array_equal(faces, procedural.generate("knife", 0)[1])


def test_shipped_samples_load_and_are_small():
    folders = sorted(p for p in SAMPLES.iterdir() if p.is_dir())
    assert {p.name for p in folders} >= {"chair", "table", "mug", "airplane"}
    shapes = load_dataset(SAMPLES, n_points=256)
    assert len(shapes) == len(folders)
    for s in shapes:
        assert set(np.unique(s.face_labels)) == set(range(len(s.parts)))
    assert all(f.stat().st_size < 200_000 for f in SAMPLES.rglob("*") if f.is_file())
