"""Mesh connected components as segments (components.py)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from partdistill_cli import shapes
from partdistill_cli.components import component_vote, face_components


def test_face_components_merge_split_vertices_and_keep_separate_pieces_apart():
    a = trimesh.creation.box(extents=[1, 1, 1])
    b = trimesh.creation.box(extents=[1, 1, 1])
    b.apply_translation([3, 0, 0])
    # Box b's faces share no vertex index (as in a file that splits vertices at every seam): still one piece.
    split = b.vertices[b.faces].reshape(-1, 3)
    vertices = np.concatenate([a.vertices, split])
    faces = np.concatenate([a.faces, len(a.vertices) + np.arange(len(split)).reshape(-1, 3)])
    shape = shapes.from_mesh(vertices, faces, n_points=200, seed=0, name="two boxes")
    comp = face_components(shape)
    assert comp.shape == (24,)
    assert len(np.unique(comp[:12])) == 1 and len(np.unique(comp[12:])) == 1 and comp[0] != comp[12]
    cloud = shapes.from_points(shape.points, name="cloud")
    assert face_components(cloud) is None


def test_component_vote_known_answer():
    # Piece 0: points 0-2 say parts 0, 0, 1. Piece 1: points 3-6 say 1, 1, 0, 2 (part 1 holds half). Piece 2:
    # points 7-9 say 0, 1, 2 (no majority). Piece 3: point 10 alone.
    p = np.array(
        [[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1],
         [0.1, 0.9, 0.0], [0.3, 0.5, 0.2], [0.5, 0.4, 0.1], [0.1, 0.1, 0.8],
         [0.5, 0.3, 0.2], [0.2, 0.5, 0.3], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]
    )  # fmt: skip
    comp = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 3])
    out, voted, means = component_vote(p, comp, max_share=0.5)
    assert voted.tolist() == [True, True, False, True]
    np.testing.assert_allclose(out[:3], [[0.7, 0.2, 0.1]] * 3)  # the mean of the two points that say part 0
    np.testing.assert_allclose(out[3:7], [[0.2, 0.7, 0.1]] * 4)
    np.testing.assert_allclose(out[7:], p[7:])
    np.testing.assert_allclose(means[0], [0.7, 0.2, 0.1])
    assert out.argmax(axis=1).tolist() == [0, 0, 0, 1, 1, 1, 1, 0, 1, 2, 2]
    # Piece 1 holds 4 of 11 points: above a share of 0.3 it is left alone.
    out, voted, _ = component_vote(p, comp, max_share=0.3)
    assert voted.tolist() == [True, False, False, True]
    np.testing.assert_allclose(out[3:7], p[3:7])
    # A fifth piece no point lies on (too small to be sampled) is counted, never voted.
    out, voted, means = component_vote(p, comp, max_share=0.5, n_components=5)
    assert voted.tolist() == [True, True, False, True, False] and means.shape == (5, 3)
    with pytest.raises(ValueError, match="components"):
        component_vote(p, comp[:5], 0.5)
    with pytest.raises(ValueError, match="n_components"):
        component_vote(p, comp, 0.5, n_components=3)
