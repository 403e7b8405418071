"""Labels that follow the geometry: per-element class scores smoothed over a graph of the shape.

The elements are a mesh's faces or a point cloud's points. Their graph joins faces that share an edge (after
welding vertices by position, so that unwelded exports and double-sided faces still connect) and points to
their nearest neighbours; an edge's weight falls with the angle between the two surface normals, so that
labels spread along smooth surface and stop at creases and gaps, where parts usually meet. Smoothing is
mean-field inference of a CRF with Potts pairwise terms over that graph.

Written with numpy/scipy.sparse rather than a graph-cut library: the graphs are arbitrary (not grids), the
labels many, and mean field over a sparse matrix is a few matrix products per iteration.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix, diags


def _unit_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    tri = vertices[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def _weld(vertices: np.ndarray, tolerance: float) -> np.ndarray:
    """(V,) index of each vertex's position class (vertices closer than `tolerance` on a grid merge)."""
    key = np.round(vertices / tolerance).astype(np.int64)
    _, inverse = np.unique(key, axis=0, return_inverse=True)
    return inverse.ravel()


def _edge_weights(normals_a: np.ndarray, normals_b: np.ndarray, angle_scale: float) -> np.ndarray:
    # |cos|: a face and its reversed twin (double-sided geometry) are the same surface.
    cos = np.abs(np.einsum("ij,ij->i", normals_a, normals_b))
    return np.exp(-(1.0 - cos) / angle_scale)


def face_graph(vertices: np.ndarray, faces: np.ndarray, angle_scale: float = 0.25) -> csr_matrix:
    """(F, F) symmetric float64 affinities between faces that share an edge.

    Args:
        vertices: (V, 3) float positions; faces: (F, 3) int vertex indices.
        angle_scale: how fast the weight falls with the angle between face normals: weight =
            exp(-(1 - |cos angle|) / angle_scale), 1 for coplanar faces, ~0.02 across a right angle at 0.25.
    Vertices are welded by position (1e-6 of the bounding box) first. Faces around a non-manifold edge are all
    joined pairwise; a pair sharing several edges is joined once. Degenerate edges are ignored.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    n_faces = len(faces)
    if n_faces == 0:
        return csr_matrix((0, 0))
    extent = float(np.ptp(vertices, axis=0).max()) or 1.0
    welded = _weld(vertices, extent * 1e-6)[faces]
    edges = np.concatenate([welded[:, [0, 1]], welded[:, [1, 2]], welded[:, [2, 0]]])
    edges.sort(axis=1)
    owner = np.tile(np.arange(n_faces), 3)
    proper = edges[:, 0] != edges[:, 1]
    edges, owner = edges[proper], owner[proper]
    key = edges[:, 0] * (int(welded.max()) + 1) + edges[:, 1]
    order = np.argsort(key, kind="stable")
    key, owner = key[order], owner[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    counts = np.diff(np.r_[starts, len(key)])
    rows, cols = [], []
    for m in np.unique(counts[counts >= 2]):
        group = owner[starts[counts == m][:, None] + np.arange(m)[None, :]]
        for a in range(m):
            for b in range(a + 1, m):
                rows.append(group[:, a])
                cols.append(group[:, b])
    if not rows:
        return csr_matrix((n_faces, n_faces))
    pairs = np.sort(np.stack([np.concatenate(rows), np.concatenate(cols)], axis=1), axis=1)
    # Two faces sharing several edges (a face and its reversed twin) are one neighbour pair, weighed once.
    pairs = np.unique(pairs[pairs[:, 0] != pairs[:, 1]], axis=0)
    r, c = pairs[:, 0], pairs[:, 1]
    normals = _unit_normals(vertices, faces)
    w = _edge_weights(normals[r], normals[c], angle_scale)
    return coo_matrix((np.r_[w, w], (np.r_[r, c], np.r_[c, r])), shape=(n_faces, n_faces)).tocsr()


def point_graph(points: np.ndarray, normals: np.ndarray | None, k: int = 10, angle_scale: float = 0.25) -> csr_matrix:
    """(N, N) symmetric float64 affinities of each point to its `k` nearest neighbours (normal-weighted as in
    `face_graph`; uniform without normals)."""
    from scipy.spatial import cKDTree

    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    k = min(k, n - 1)
    if k < 1:
        return csr_matrix((n, n))
    _, idx = cKDTree(points).query(points, k=k + 1)
    r = np.repeat(np.arange(n), k)
    c = idx[:, 1:].ravel()
    if normals is None:
        w = np.ones(len(r))
    else:
        normals = np.asarray(normals, dtype=np.float64)
        w = _edge_weights(normals[r], normals[c], angle_scale)
    graph = coo_matrix((np.r_[w, w], (np.r_[r, c], np.r_[c, r])), shape=(n, n)).tocsr()
    graph.sum_duplicates()
    graph.data[:] = np.minimum(graph.data, 1.0)  # a pair that is mutual neighbours counts once
    return graph


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def mean_field(log_unary: np.ndarray, graph: csr_matrix, strength: float, iterations: int = 10) -> np.ndarray:
    """(n, C) float64 marginals of a Potts CRF by mean-field inference.

    Args:
        log_unary: (n, C) log-probabilities (or scores) of each element's classes on its own.
        graph: (n, n) sparse non-negative affinities; each element's neighbourhood is normalised to sum 1, so
            `strength` is the weight, in nats, of unanimous neighbours against the element's own evidence.
        strength: 0 returns softmax(log_unary).
    """
    q = softmax(log_unary)
    if strength <= 0 or graph.nnz == 0:
        return q
    degree = np.asarray(graph.sum(axis=1)).ravel()
    normalised = diags(1.0 / np.maximum(degree, 1e-12)) @ graph
    for _ in range(iterations):
        q = softmax(log_unary + strength * (normalised @ q))
    return q
