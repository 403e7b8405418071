"""Lifting 2D detections to 3D knowledge units (DESIGN.md section 3)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from partdistill_cli.knowledge import Detection, Knowledge
from partdistill_cli.render.base import Views

MIN_COMPONENT_PX = 8


def _mask_units(mask: np.ndarray, pix: np.ndarray, idx: np.ndarray, width: int, min_px: int):
    """Point sets of the connected components of `mask` among visible points `idx` at flat pixels `pix`."""
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return []
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    # Labelling only the mask's bounding box keeps this fast for the usual small part masks.
    comp, n_comp = ndimage.label(mask[y0:y1, x0:x1])
    if n_comp == 0:
        return []
    size = np.bincount(comp.ravel(), minlength=n_comp + 1)
    py, px = pix // width, pix % width
    inside = (py >= y0) & (py < y1) & (px >= x0) & (px < x1)
    c = np.zeros(len(pix), dtype=np.int64)
    c[inside] = comp[py[inside] - y0, px[inside] - x0]
    keep = (c > 0) & (size[c] >= min_px)
    if not keep.any():
        return []
    c, pts = c[keep], idx[keep]
    order = np.argsort(c, kind="stable")
    c, pts = c[order], pts[order]
    bounds = np.flatnonzero(np.diff(c)) + 1
    return [np.sort(g) for g in np.split(pts, bounds)]


def _box_unit(box: np.ndarray, pix: np.ndarray, idx: np.ndarray, width: int) -> np.ndarray:
    x0, y0, x1, y1 = box
    px, py = pix % width + 0.5, pix // width + 0.5
    inside = (px >= x0) & (px < x1) & (py >= y0) & (py < y1)
    return idx[inside]


def lift(
    detections: list[Detection], views: Views, parts: list[str], min_component_px: int = MIN_COMPONENT_PX
) -> Knowledge:
    """Lift `detections` over `views` to `Knowledge` on the views' N points.

    A mask becomes one unit per connected component of at least `min_component_px` pixels: the points
    visible in that view whose pixel lies in the component. A box becomes one unit: the visible points whose
    pixel centre lies inside it. Units covering no point are dropped.
    """
    n_points = views.pixel_of_point.shape[1]
    _, width = views.size
    visible = [np.flatnonzero(views.pixel_of_point[v] >= 0) for v in range(views.n_views)]
    labels, scores, vids, members = [], [], [], []
    for det in detections:
        if not 0 <= det.view < views.n_views:
            raise ValueError(f"detection refers to view {det.view}, but there are {views.n_views} views")
        if not 0 <= det.part < len(parts):
            raise ValueError(f"detection refers to part {det.part}, but there are {len(parts)} parts")
        idx = visible[det.view]
        pix = views.pixel_of_point[det.view, idx].astype(np.int64)
        if det.mask is not None:
            if det.mask.shape != views.size:
                raise ValueError(f"mask of shape {det.mask.shape} does not match the views' {views.size}")
            units = _mask_units(det.mask, pix, idx, width, min_component_px)
        else:
            units = [_box_unit(np.asarray(det.box, dtype=np.float64), pix, idx, width)]
        for u in units:
            if len(u):
                labels.append(det.part)
                scores.append(det.score)
                vids.append(det.view)
                members.append(u)
    if not members:
        return Knowledge.empty(n_points, parts)
    indptr = np.concatenate([[0], np.cumsum([len(m) for m in members])]).astype(np.int64)
    return Knowledge(
        np.asarray(labels, dtype=np.int64),
        np.asarray(scores, dtype=np.float32),
        np.asarray(vids, dtype=np.int64),
        indptr,
        np.concatenate(members).astype(np.int64),
        n_points,
        list(parts),
    )
