"""Mesh connected components as segments: a part boundary that follows how the mesh was built.

CAD-style meshes (PartNet-Mobility, the Genesis bottle, procedural shapes) are assembled from pieces, and a
piece almost never straddles two parts: in the labeled meshes of ../shared/data, 11 of 83,968 PartNet-Mobility
sample points (2 of 41 shapes) lie in a piece that is mostly another part, none in procedural shapes or the
bottle. The student and the views blur a piece's edge, so a piece whose points mostly carry one part is given
that part as a whole. A piece holding more than `max_share` of the shape (a scan or a single-shell
model is one piece) is left as it is.
"""

from __future__ import annotations

import numpy as np

from partdistill_cli.shapes import Shape


def face_components(shape: Shape) -> np.ndarray | None:
    """(F,) int64 connected component of each face (faces sharing an edge once coincident vertices are merged),
    or None for a point cloud."""
    if not shape.is_mesh or shape.faces is None or len(shape.faces) == 0:
        return None
    import trimesh

    mesh = trimesh.Trimesh(np.asarray(shape.vertices, np.float64), np.asarray(shape.faces), process=False)
    mesh.merge_vertices()  # files often split vertices along seams (normals, UVs): those faces still touch
    labels = trimesh.graph.connected_component_labels(mesh.face_adjacency, node_count=len(shape.faces))
    return np.asarray(labels, dtype=np.int64)


def component_vote(
    probs: np.ndarray, component: np.ndarray, max_share: float, n_components: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Give each small component its majority part.

    Args:
        probs: (N, C) per-point probabilities.
        component: (N,) int component of each point, in [0, n_components).
        max_share: components holding more than this share of the N points are left alone.
        n_components: how many components there are (default: the largest id + 1); a component no point lies
            in (a piece too small to be sampled) is never voted.

    Returns (new_probs, voted, means): in a component of at most `max_share` * N points where one part is the
    argmax of at least half of its points, every point takes the mean probabilities of those points (whose argmax
    is that part); `voted` (n_components,) bool marks those components and `means` (n_components, C) holds their
    vectors (zeros elsewhere). Other points keep their probabilities.
    """
    probs = np.asarray(probs)
    n, c = probs.shape
    component = np.asarray(component, dtype=np.int64)
    if component.shape != (n,):
        raise ValueError(f"expected {n} point components, got shape {component.shape}")
    n_comp = int(component.max()) + 1 if n else 0
    if n_components is not None:
        if n_components < n_comp:
            raise ValueError(f"component ids reach {n_comp - 1}, beyond n_components={n_components}")
        n_comp = n_components
    labels = probs.argmax(axis=1)
    sizes = np.bincount(component, minlength=n_comp)
    counts = np.bincount(component * c + labels, minlength=n_comp * c).reshape(n_comp, c)
    major = counts.argmax(axis=1)
    n_major = counts[np.arange(n_comp), major]
    voted = (sizes > 0) & (sizes <= max_share * n) & (2 * n_major >= sizes)
    agree = labels == major[component]
    means = np.zeros((n_comp, c), dtype=np.float64)
    np.add.at(means, component[agree], probs[agree])
    means /= np.maximum(n_major, 1)[:, None]
    means[~voted] = 0.0
    out = probs.copy()
    inside = voted[component]
    out[inside] = means[component[inside]]
    return out, voted, means
