"""Geometry graphs and mean-field smoothing (refine.py)."""

import numpy as np
import trimesh

from partdistill_cli.refine import face_graph, mean_field, point_graph


def test_face_graph_joins_unwelded_and_double_sided_faces_but_not_separate_parts():
    box = trimesh.creation.box()
    # Unweld: every face gets its own three vertices, and a reversed twin (double-sided export).
    v = box.vertices[box.faces].reshape(-1, 3)
    f = np.arange(len(v)).reshape(-1, 3)
    f = np.concatenate([f, f[:, ::-1]])
    far = box.copy()
    far.apply_translation((5, 0, 0))
    vertices = np.concatenate([v, far.vertices])
    faces = np.concatenate([f, far.faces + len(v)])
    g = face_graph(vertices, faces)
    assert g.shape == (len(faces), len(faces))
    assert np.allclose(g.toarray(), g.toarray().T)
    from scipy.sparse.csgraph import connected_components

    n, comp = connected_components(g > 0, directed=False)
    assert n == 2  # the unwelded double-sided box is one piece, the other box another
    assert len(set(comp[: len(f)])) == 1 and comp[0] != comp[-1]
    # A face and its reversed twin are coplanar: weight 1. Faces across the box's 90-degree edges: small.
    twin = len(f) // 2
    assert np.isclose(g[0, twin], 1.0)
    weights = g[: len(f)].data
    assert weights.min() < 0.05 and weights.max() == 1.0


def test_point_graph_is_symmetric_and_normal_weighted():
    rng = np.random.default_rng(0)
    pts = rng.uniform(-1, 1, (200, 3))
    up = np.tile([0.0, 0.0, 1.0], (200, 1))
    side = np.tile([1.0, 0.0, 0.0], (200, 1))
    g = point_graph(pts, np.where(pts[:, :1] > 0, up, side), k=6)
    a = g.toarray()
    assert np.allclose(a, a.T) and (np.count_nonzero(a, axis=1) >= 6).all()
    same = (pts[:, None, 0] > 0) == (pts[None, :, 0] > 0)
    assert a[(a > 0) & same].min() == 1.0 and a[(a > 0) & ~same].max() < 0.05


def test_mean_field_overturns_an_isolated_weak_label_and_keeps_a_strong_region():
    # A chain of 10 elements: a weak "1" in a run of "0"s flips; a confident block of three "1"s stays.
    n = 10
    idx = np.arange(n - 1)
    from scipy.sparse import coo_matrix

    g = coo_matrix((np.ones(2 * (n - 1)), (np.r_[idx, idx + 1], np.r_[idx + 1, idx])), shape=(n, n)).tocsr()
    p = np.tile([0.8, 0.2], (n, 1))
    p[2] = [0.45, 0.55]
    p[5:8] = [0.05, 0.95]
    q = mean_field(np.log(p), g, strength=2.0)
    assert q.argmax(1).tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 0, 0]
    assert np.allclose(mean_field(np.log(p), g, strength=0.0), p)
