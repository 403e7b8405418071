"""Procedural labelled shapes: simple objects built from primitives, each part a set of faces.

Used to test the pipeline end to end with exact ground truth, and as extra generated training shapes
(DESIGN.md section 4, "extra knowledge sources"). Objects follow ShapeNet's frame: y is up, the front faces
+x (an airplane's nose and a rocket's nose point to +x, a chair's back is at -x, a mug's handle at +x),
sizes are roughly in metres. Part names and their order follow ShapeNetPart where the category exists
there, so labels line up with `datasets.default_parts`.

Every shape is deterministic given (category, seed); proportions, styles and optional parts vary with it.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import trimesh

from partdistill_cli.datasets import FACE_LABELS_SUFFIX, LabeledShape
from partdistill_cli.io_utils import atomic_path, check_not_overwriting, write_text
from partdistill_cli.shapes import from_mesh

CATEGORIES: dict[str, list[str]] = {
    "airplane": ["body", "wing", "tail", "engine"],
    "bottle": ["body", "neck", "lid"],
    "chair": ["back", "seat", "leg", "armrest"],
    "guitar": ["head or tuners", "neck", "body"],
    "knife": ["blade", "handle"],
    "lamp": ["base", "lampshade", "canopy", "tube"],
    "mug": ["handle", "cup"],
    "rocket": ["body", "fin", "nose cone"],
    "table": ["tabletop", "leg", "drawer"],
}

MAX_EDGE_FRACTION = 0.1  # longest triangle edge, as a share of the object's bounding-box diagonal
_Z_TO_Y = np.array([[1.0, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]])  # rotation taking +z to +y
_Z_TO_X = np.array([[0.0, 0, 1, 0], [0, 1, 0, 0], [-1, 0, 0, 0], [0, 0, 0, 1]])  # rotation taking +z to +x


class _Builder:
    """Collects primitive meshes with their part; `result` concatenates them in insertion order."""

    def __init__(self, parts: list[str]):
        self.parts = parts
        self.pieces: list[tuple[np.ndarray, np.ndarray, int]] = []

    def add(self, part: str, mesh) -> None:
        v, f = np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)
        self.pieces.append((v, f, self.parts.index(part)))

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """Concatenated (vertices, faces, face_labels, parts), long triangles split.

        Boxes and hulls have a dozen long faces; splitting every edge longer than a fraction of the object's
        size gives the renderer's face-id images and the teacher's labels a resolution closer to real meshes.
        """
        everything = np.concatenate([v for v, _, _ in self.pieces])
        max_edge = float(np.linalg.norm(everything.max(0) - everything.min(0))) * MAX_EDGE_FRACTION
        vertices, faces, labels, offset = [], [], [], 0
        for v, f, label in self.pieces:
            v, f = trimesh.remesh.subdivide_to_size(v, f, max_edge, max_iter=8)
            vertices.append(v)
            faces.append(np.asarray(f, dtype=np.int64) + offset)
            labels.append(np.full(len(f), label, dtype=np.int64))
            offset += len(v)
        return np.concatenate(vertices), np.concatenate(faces), np.concatenate(labels), list(self.parts)


# ---------------------------------------------------------------------------------------------------------
# Primitives (thin wrappers over trimesh.creation that place a part in the object's frame)


def _translate(xyz) -> np.ndarray:
    t = np.eye(4)
    t[:3, 3] = xyz
    return t


def _rot(axis, angle: float) -> np.ndarray:
    return trimesh.transformations.rotation_matrix(angle, axis)


def _box(extents, center, rotation: np.ndarray | None = None):
    transform = _translate(center) if rotation is None else _translate(center) @ rotation
    return trimesh.creation.box(extents=extents, transform=transform)


def _cylinder(radius: float, p0, p1, sections: int = 20):
    return trimesh.creation.cylinder(radius=radius, segment=np.array([p0, p1], dtype=float), sections=sections)


def _revolve_y(profile, base=(0.0, 0.0, 0.0), sections: int = 32):
    """A solid of revolution about the vertical axis through `base`; `profile` is (M, 2) (radius, height)."""
    mesh = trimesh.creation.revolve(np.asarray(profile, dtype=float), sections=sections)
    mesh.apply_transform(_translate(base) @ _Z_TO_Y)
    return mesh


def _revolve_x(profile, base=(0.0, 0.0, 0.0), sections: int = 32):
    """A solid of revolution about the x axis (front-back) through `base`; `profile` is (radius, x)."""
    mesh = trimesh.creation.revolve(np.asarray(profile, dtype=float), sections=sections)
    mesh.apply_transform(_translate(base) @ _Z_TO_X)
    return mesh


def _hull(points):
    return trimesh.convex.convex_hull(np.asarray(points, dtype=float))


def _tube(path, radius: float, sections: int = 12):
    """A closed tube of circular section along an (M, 3) polyline (for handles and bent rods)."""
    path = np.asarray(path, dtype=float)
    tangent = np.gradient(path, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    ref = np.array([0.0, 0.0, 1.0]) if abs(tangent[0, 2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    angles = np.linspace(0, 2 * np.pi, sections, endpoint=False)
    rings = []
    for t in tangent:
        u = np.cross(t, ref)
        u /= np.linalg.norm(u)
        w = np.cross(t, u)
        rings.append(np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * w)
    vertices = (path[:, None, :] + radius * np.stack(rings)).reshape(-1, 3)
    m, s = len(path), sections
    i, j = np.meshgrid(np.arange(m - 1), np.arange(s), indexing="ij")
    a, b = i * s + j, i * s + (j + 1) % s
    c, d = a + s, b + s
    faces = np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)])
    centers = len(vertices) + np.arange(2)
    ring = np.arange(s)
    cap0 = np.column_stack([np.full(s, centers[0]), (ring + 1) % s, ring])
    cap1 = np.column_stack([np.full(s, centers[1]), (m - 1) * s + ring, (m - 1) * s + (ring + 1) % s])
    vertices = np.vstack([vertices, path[0], path[-1]])
    return trimesh.Trimesh(vertices, np.concatenate([faces, cap0, cap1]), process=False)


def _leg(square: bool, x: float, z: float, top: float, size: float, sections=12):
    """A vertical leg from the floor (y=0) to `top`, square or round."""
    if square:
        return _box([size, top, size], [x, top / 2, z])
    return _cylinder(size / 2, [x, 0, z], [x, top, z], sections)


# ---------------------------------------------------------------------------------------------------------
# Categories


def _corner_legs(b: _Builder, depth: float, width: float, inset: float, size: float, top: float, square: bool) -> None:
    """Four legs of thickness `size` under the corners of a depth x width top at height `top`, `inset` in."""
    for sx in (-1, 1):
        for sz in (-1, 1):
            x, z = sx * (depth / 2 - inset - size / 2), sz * (width / 2 - inset - size / 2)
            b.add("leg", _leg(square, x, z, top, size))


def _chair(rng: np.random.Generator, b: _Builder) -> None:
    depth, width = rng.uniform(0.42, 0.56), rng.uniform(0.42, 0.6)
    seat_y, seat_t = rng.uniform(0.4, 0.5), rng.uniform(0.04, 0.08)
    b.add("seat", _box([depth, seat_t, width], [0, seat_y + seat_t / 2, 0]))
    leg = rng.uniform(0.03, 0.06)
    square = bool(rng.random() < 0.5)
    inset = rng.uniform(0.01, 0.05)
    _corner_legs(b, depth, width, inset, leg, seat_y, square)
    back_h, back_t = rng.uniform(0.35, 0.6), rng.uniform(0.03, 0.06)
    top = seat_y + seat_t
    # The back leans backwards about its bottom edge, which stays on the seat's rear edge.
    lean = _rot([0, 0, 1], rng.uniform(0.0, 0.2))
    origin = np.array([-depth / 2 + back_t / 2, top, 0.0])

    def back_box(extents, offset) -> None:
        b.add("back", _box(extents, origin + lean[:3, :3] @ offset, lean))

    if rng.random() < 0.6:
        back_box([back_t, back_h, width], [0, back_h / 2, 0])
    else:
        post, rail = rng.uniform(0.03, 0.05), rng.uniform(0.06, 0.12)
        for sz in (-1, 1):
            back_box([back_t, back_h, post], [0, back_h / 2, sz * (width / 2 - post / 2)])
        back_box([back_t, rail, width - 2 * post], [0, back_h - rail / 2, 0])
        n_slats = int(rng.integers(2, 5))
        for k in range(n_slats):
            zk = -(width / 2 - post) + (k + 1) * (width - 2 * post) / (n_slats + 1)
            back_box([back_t * 0.6, back_h - rail, 0.025], [0, (back_h - rail) / 2, zk])
    if rng.random() < 0.5:
        arm_y = top + rng.uniform(0.18, 0.26)
        arm_w, arm_t = rng.uniform(0.04, 0.07), rng.uniform(0.025, 0.045)
        arm_len = depth * rng.uniform(0.8, 1.0)
        for sz in (-1, 1):
            z = sz * (width / 2 - arm_w / 2)
            x0 = -depth / 2 + back_t
            b.add("armrest", _box([arm_len, arm_t, arm_w], [x0 + arm_len / 2, arm_y, z]))
            support = arm_y - arm_t / 2 - top
            b.add("armrest", _box([arm_w * 0.7, support, arm_w * 0.7], [x0 + arm_len - arm_w, top + support / 2, z]))


def _table(rng: np.random.Generator, b: _Builder) -> None:
    height, top_t = rng.uniform(0.65, 0.8), rng.uniform(0.03, 0.06)
    leg_top = height - top_t
    if rng.random() < 0.3:
        radius = rng.uniform(0.35, 0.6)
        b.add("tabletop", _cylinder(radius, [0, leg_top, 0], [0, height, 0], 40))
        column = rng.uniform(0.03, 0.06)
        foot_r, foot_t = radius * rng.uniform(0.4, 0.6), rng.uniform(0.03, 0.05)
        b.add("leg", _cylinder(foot_r, [0, 0, 0], [0, foot_t, 0], 32))
        b.add("leg", _cylinder(column, [0, foot_t, 0], [0, leg_top, 0], 16))
        return
    depth, width = rng.uniform(0.6, 1.0), rng.uniform(0.9, 1.8)
    b.add("tabletop", _box([depth, top_t, width], [0, leg_top + top_t / 2, 0]))
    leg = rng.uniform(0.04, 0.08)
    square = bool(rng.random() < 0.6)
    inset = rng.uniform(0.02, 0.08)
    _corner_legs(b, depth, width, inset, leg, leg_top, square)
    if rng.random() < 0.6:
        n = int(rng.integers(1, 3))
        inner = width - 2 * (inset + leg)
        drawer_w, drawer_h = inner / n * 0.9, rng.uniform(0.1, 0.16)
        drawer_d = (depth - 2 * (inset + leg)) * 0.9
        front_x = depth / 2 - inset - leg / 2
        for k in range(n):
            z = -inner / 2 + (k + 0.5) * inner / n
            b.add("drawer", _box([drawer_d, drawer_h, drawer_w], [front_x - drawer_d / 2, leg_top - drawer_h / 2, z]))
            knob = _box([0.02, 0.02, drawer_w * 0.3], [front_x + 0.01, leg_top - drawer_h / 2, z])
            b.add("drawer", knob)


def _mug(rng: np.random.Generator, b: _Builder) -> None:
    r_bottom, height = rng.uniform(0.035, 0.05), rng.uniform(0.08, 0.12)
    r_top = r_bottom * rng.uniform(0.95, 1.2)
    wall, floor = rng.uniform(0.003, 0.006), rng.uniform(0.005, 0.01)
    profile = [
        (0, 0),
        (r_bottom, 0),
        (r_top, height),
        (r_top - wall, height),
        (r_bottom - wall, floor),
        (0, floor),
    ]
    b.add("cup", _revolve_y(profile, sections=32))
    y0, y1 = height * rng.uniform(0.15, 0.3), height * rng.uniform(0.75, 0.9)
    reach = rng.uniform(0.025, 0.04)
    phi = np.linspace(0, np.pi, 13)
    yc, half = (y0 + y1) / 2, (y1 - y0) / 2

    def wall_x(y):
        return r_bottom + (r_top - r_bottom) * y / height

    ys = yc + half * np.cos(phi)
    # Both ends start just inside the outer wall so the handle touches the cup.
    xs = wall_x(ys) - wall + reach * np.sin(phi) + wall * np.sin(phi)
    b.add("handle", _tube(np.column_stack([xs, ys, np.zeros_like(xs)]), rng.uniform(0.005, 0.009), 8))


def _lamp(rng: np.random.Generator, b: _Builder) -> None:
    shade_h = rng.uniform(0.15, 0.3)
    r_low, r_high = rng.uniform(0.1, 0.2), rng.uniform(0.05, 0.12)
    thick = 0.004
    rod = rng.uniform(0.008, 0.015)
    if rng.random() < 0.35:
        # Hanging lamp: ceiling canopy, a cord/tube, the shade at the bottom (open at its wide end).
        cord = rng.uniform(0.4, 0.9)
        shade_top = 0.0
        canopy_y = shade_top + shade_h + cord
        canopy_r = rng.uniform(0.04, 0.07)
        b.add("canopy", _cylinder(canopy_r, [0, canopy_y, 0], [0, canopy_y + rng.uniform(0.02, 0.04), 0], 24))
        b.add("tube", _cylinder(rod, [0, shade_top + shade_h * 0.9, 0], [0, canopy_y, 0], 10))
        profile = [(r_low, 0), (r_high, shade_h), (r_high - thick, shade_h), (r_low - thick, 0), (r_low, 0)]
        b.add("lampshade", _revolve_y(profile, base=(0, shade_top, 0), sections=32))
        b.add("lampshade", _cylinder(r_high, [0, shade_h - thick, 0], [0, shade_h, 0], 32))
        return
    base_t = rng.uniform(0.02, 0.05)
    if rng.random() < 0.5:
        b.add("base", _cylinder(rng.uniform(0.08, 0.15), [0, 0, 0], [0, base_t, 0], 32))
    else:
        side = rng.uniform(0.14, 0.26)
        b.add("base", _box([side, base_t, side], [0, base_t / 2, 0]))
    pole = rng.uniform(0.3, 1.2)
    top = np.array([0.0, base_t + pole, 0.0])
    if rng.random() < 0.5:
        b.add("tube", _cylinder(rod, [0, base_t, 0], top, 10))
    else:
        # A bent desk-lamp arm: up, then forward and up again.
        knee = np.array([0.0, base_t + pole * 0.6, 0.0])
        top = knee + [rng.uniform(0.1, 0.25), pole * 0.4, 0.0]
        b.add("tube", _tube([[0, base_t, 0], knee * 0.5 + [0, base_t / 2, 0], knee, (knee + top) / 2, top], rod, 10))
    shade_bottom = top[1] - shade_h
    profile = [(r_low, 0), (r_high, shade_h), (r_high - thick, shade_h), (r_low - thick, 0), (r_low, 0)]
    b.add("lampshade", _revolve_y(profile, base=(top[0], shade_bottom, 0), sections=32))
    # A three-spoke fitter at the shade's top rim holds the shade on the end of the tube.
    for k in range(3):
        ang = 2 * np.pi * k / 3
        rim = top + (r_high - thick / 2) * np.array([np.cos(ang), 0.0, np.sin(ang)])
        b.add("lampshade", _cylinder(rod * 0.4, top, rim, 6))


def _airplane(rng: np.random.Generator, b: _Builder) -> None:
    length, radius = rng.uniform(3.0, 4.5), rng.uniform(0.16, 0.26)
    profile = [
        (0, 0),
        (radius * 0.25, 0),
        (radius * 0.9, 0.22 * length),
        (radius, 0.3 * length),
        (radius, 0.82 * length),
        (radius * 0.75, 0.92 * length),
        (radius * 0.35, 0.98 * length),
        (0, length),
    ]
    x0 = -length / 2
    b.add("body", _revolve_x(profile, base=(x0, 0, 0), sections=24))
    span, root, tip = rng.uniform(1.4, 2.2), rng.uniform(0.5, 0.9), rng.uniform(0.15, 0.35)
    sweep, dihedral = rng.uniform(0.1, 0.6), rng.uniform(0.0, 0.15)
    wing_x = x0 + length * rng.uniform(0.45, 0.58)
    wing_y = -radius * rng.uniform(0.2, 0.6)
    thickness = 0.05
    for s in (-1, 1):
        tip_lead = wing_x + root / 2 - sweep
        outline = [
            (wing_x + root / 2, 0, 0),
            (wing_x - root / 2, 0, 0),
            (tip_lead, span * dihedral, s * span),
            (tip_lead - tip, span * dihedral, s * span),
        ]
        pts = np.array(outline) + [0, wing_y, 0]
        b.add("wing", _hull(np.vstack([pts - [0, thickness / 2, 0], pts + [0, thickness / 2, 0]])))
        n_engines = 1 if rng.random() < 0.7 else 2
        for k in range(n_engines):
            frac = (k + 1) / (n_engines + 1) * 0.8
            z = s * span * frac
            lead = wing_x + root / 2 - sweep * frac
            y = wing_y + span * dihedral * frac
            eng_r, eng_l = rng.uniform(0.09, 0.14), rng.uniform(0.45, 0.7)
            front = lead + eng_l * 0.3
            yc = y - thickness / 2 - 0.05 - eng_r
            b.add("engine", _cylinder(eng_r, [front - eng_l, yc, z], [front, yc, z], 16))
            # The pylon reaches from inside the nacelle into the wing, so the engine hangs from it.
            pylon_lo, pylon_hi = yc + eng_r * 0.5, y
            b.add(
                "engine",
                _box([eng_l * 0.4, pylon_hi - pylon_lo, 0.03], [lead - eng_l * 0.2, (pylon_lo + pylon_hi) / 2, z]),
            )
    fin_h, fin_root, fin_tip = rng.uniform(0.5, 0.9), rng.uniform(0.5, 0.8), rng.uniform(0.2, 0.35)
    tail_x = x0 + 0.04 * length
    fin = np.array(
        [
            (tail_x, radius * 0.3, 0),
            (tail_x + fin_root, radius * 0.3, 0),
            (tail_x + fin_tip * 0.5, radius * 0.3 + fin_h, 0),
            (tail_x + fin_tip * 1.5, radius * 0.3 + fin_h, 0),
        ]
    )
    b.add("tail", _hull(np.vstack([fin - [0, 0, 0.02], fin + [0, 0, 0.02]])))
    stab_span = rng.uniform(0.4, 0.8)
    for s in (-1, 1):
        stab = np.array(
            [
                (tail_x, 0, 0),
                (tail_x + fin_root * 0.9, 0, 0),
                (tail_x + 0.05, 0, s * stab_span),
                (tail_x + 0.05 + fin_tip, 0, s * stab_span),
            ]
        ) + [0, radius * 0.2, 0]
        b.add("tail", _hull(np.vstack([stab - [0, 0.02, 0], stab + [0, 0.02, 0]])))


def _bottle(rng: np.random.Generator, b: _Builder) -> None:
    radius, body_h = rng.uniform(0.03, 0.05), rng.uniform(0.12, 0.22)
    neck_r = radius * rng.uniform(0.3, 0.5)
    shoulder = rng.uniform(0.02, 0.06)
    b.add(
        "body",
        _revolve_y([(0, 0), (radius, 0), (radius, body_h), (neck_r, body_h + shoulder), (0, body_h + shoulder)]),
    )
    neck_h = rng.uniform(0.03, 0.07)
    neck_base = body_h + shoulder
    b.add("neck", _cylinder(neck_r, [0, neck_base - 0.002, 0], [0, neck_base + neck_h, 0], 24))
    lid_h = rng.uniform(0.015, 0.03)
    top = neck_base + neck_h
    b.add("lid", _cylinder(neck_r * 1.2, [0, top - lid_h * 0.6, 0], [0, top + lid_h * 0.4, 0], 24))


def _guitar(rng: np.random.Generator, b: _Builder) -> None:
    thick = rng.uniform(0.08, 0.12)
    lower_r, upper_r = rng.uniform(0.18, 0.22), rng.uniform(0.13, 0.16)
    lower_y = lower_r
    upper_y = lower_y + rng.uniform(0.2, 0.26)
    # The body lies in the y-z plane (the guitar stands up, its face towards +x).
    b.add("body", _cylinder(lower_r, [-thick / 2, lower_y, 0], [thick / 2, lower_y, 0], 32))
    b.add("body", _cylinder(upper_r, [-thick / 2, upper_y, 0], [thick / 2, upper_y, 0], 32))
    waist = rng.uniform(0.1, 0.13)
    b.add("body", _box([thick, upper_y - lower_y, 2 * waist], [0, (upper_y + lower_y) / 2, 0]))
    body_top = upper_y + upper_r
    neck_l, neck_w = rng.uniform(0.4, 0.5), rng.uniform(0.045, 0.06)
    neck_x = thick / 2 - 0.02
    b.add("neck", _box([0.03, neck_l + 0.02, neck_w], [neck_x, body_top + neck_l / 2 - 0.01, 0]))
    head_l = rng.uniform(0.15, 0.2)
    head_y = body_top + neck_l
    b.add("head or tuners", _box([0.025, head_l, neck_w * 1.4], [neck_x - 0.005, head_y + head_l / 2, 0]))
    for k in range(3):
        y = head_y + head_l * (k + 1) / 4
        for s in (-1, 1):
            z0 = s * neck_w * 0.7
            b.add("head or tuners", _cylinder(0.008, [neck_x - 0.005, y, z0], [neck_x - 0.005, y, z0 + s * 0.03], 8))


def _knife(rng: np.random.Generator, b: _Builder) -> None:
    handle_l, handle_w, handle_t = rng.uniform(0.09, 0.13), rng.uniform(0.018, 0.028), rng.uniform(0.012, 0.02)
    if rng.random() < 0.5:
        b.add("handle", _box([handle_w, handle_l, handle_t], [0, handle_l / 2, 0]))
    else:
        cap = trimesh.creation.capsule(height=handle_l - handle_w, radius=handle_w / 2, count=[12, 12])
        cap.apply_transform(_translate([0, handle_l / 2, 0]) @ _Z_TO_Y @ np.diag([1, handle_t / handle_w, 1, 1]))
        b.add("handle", cap)
    base = handle_l
    if rng.random() < 0.5:
        guard = rng.uniform(0.008, 0.015)
        b.add("handle", _box([handle_w * 1.8, guard, handle_t * 1.3], [0, base + guard / 2, 0]))
        base += guard
    blade_l, blade_w = rng.uniform(0.12, 0.22), rng.uniform(0.02, 0.045)
    spine = -handle_w / 2
    outline = [
        (spine, base - 0.003),
        (spine + blade_w, base - 0.003),
        (spine + blade_w, base + blade_l * 0.6),
        (spine + blade_w * 0.5, base + blade_l * 0.9),
        (spine, base + blade_l),
    ]
    pts = np.array([(x, y, 0.0) for x, y in outline])
    b.add("blade", _hull(np.vstack([pts - [0, 0, 0.0015], pts + [0, 0, 0.0015]])))


def _rocket(rng: np.random.Generator, b: _Builder) -> None:
    length, radius = rng.uniform(1.5, 3.0), rng.uniform(0.12, 0.22)
    nose_l = radius * rng.uniform(2.0, 4.0)
    x0 = -(length + nose_l) / 2
    b.add("body", _cylinder(radius, [x0, 0, 0], [x0 + length, 0, 0], 28))
    nose = [(radius, 0), (radius * 0.8, nose_l * 0.4), (radius * 0.45, nose_l * 0.75), (0, nose_l)]
    b.add("nose cone", _revolve_x([(0, 0)] + nose, base=(x0 + length, 0, 0), sections=28))
    n_fins = int(rng.choice([3, 4]))
    fin_root, fin_span = length * rng.uniform(0.15, 0.3), radius * rng.uniform(1.0, 2.0)
    for k in range(n_fins):
        ang = 2 * np.pi * k / n_fins
        d = np.array([0, np.cos(ang), np.sin(ang)])
        n = np.array([0, -np.sin(ang), np.cos(ang)])
        pts = [
            [x0, 0, 0] + d * radius * 0.9,
            [x0 + fin_root, 0, 0] + d * radius * 0.9,
            [x0 - fin_root * 0.2, 0, 0] + d * (radius + fin_span),
            [x0 + fin_root * 0.3, 0, 0] + d * (radius + fin_span),
        ]
        pts = np.array(pts)
        b.add("fin", _hull(np.vstack([pts - n * 0.01, pts + n * 0.01])))


_BUILDERS: dict[str, Callable[[np.random.Generator, _Builder], None]] = {
    "airplane": _airplane,
    "bottle": _bottle,
    "chair": _chair,
    "guitar": _guitar,
    "knife": _knife,
    "lamp": _lamp,
    "mug": _mug,
    "rocket": _rocket,
    "table": _table,
}


# ---------------------------------------------------------------------------------------------------------
# Public API


def _category(category: str) -> str:
    key = category.strip().lower()
    if key not in CATEGORIES:
        raise ValueError(f"no procedural generator for {category!r} (choose from {', '.join(CATEGORIES)})")
    return key


def generate(category: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """One random labelled mesh of `category` (any case), deterministic given `seed` (an int >= 0).

    Returns (vertices (V, 3) float64 in metres with y up, faces (F, 3) int64, face_labels (F,) int64 in
    [0, len(parts)), parts: the category's ordered part names, `CATEGORIES[category]`).
    """
    key = _category(category)
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    # The category is mixed into the stream so that equal seeds do not give correlated categories.
    rng = np.random.default_rng([int(seed), zlib.crc32(key.encode())])
    builder = _Builder(CATEGORIES[key])
    _BUILDERS[key](rng, builder)
    return builder.result()


def _selected(categories: list[str] | None) -> list[str]:
    return [_category(c) for c in categories] if categories else list(CATEGORIES)


def procedural_dataset(
    categories: list[str] | None = None, per_category: int = 5, seed: int = 0, n_points: int = 2048
) -> list[LabeledShape]:
    """`per_category` generated shapes of each category (all by default); shape i uses seed `seed + i`.

    Each shape is a mesh `LabeledShape` named "<category>_<i>" with `n_points` surface samples.
    """
    out = []
    for key in _selected(categories):
        for i in range(per_category):
            vertices, faces, labels, parts = generate(key, seed + i)
            shape = from_mesh(vertices, faces, n_points, seed + i, name=f"{key}_{i}")
            out.append(LabeledShape(shape, labels[shape.face_ids], labels, key, parts, f"{key}_{i}"))
    return out


def write_labeled_mesh_folder(
    out_dir: str | Path, category: str, count: int, seed: int, overwrite: bool = False
) -> list[Path]:
    """Write `count` generated shapes as a labelled-mesh folder (DESIGN.md section 6).

    Files: `meta.json` {"category", "parts"}, and per shape i `<category>_<i>.obj` (faces in label order) +
    `<category>_<i>.face_labels.npy` (int64). Shape i uses seed `seed + i`, like `procedural_dataset`.
    Every file is written atomically; existing files are refused unless `overwrite`. Returns the OBJ paths.
    """
    key = _category(category)
    out_dir = Path(out_dir)
    names = [f"{key}_{i}" for i in range(count)]
    outputs = [out_dir / "meta.json"]
    outputs += [out_dir / f"{n}{suffix}" for n in names for suffix in (".obj", FACE_LABELS_SUFFIX)]
    check_not_overwriting(outputs, [], overwrite)
    write_text(out_dir / "meta.json", json.dumps({"category": key, "parts": CATEGORIES[key]}, indent=1) + "\n")
    written = []
    for i, name in enumerate(names):
        vertices, faces, labels, _ = generate(key, seed + i)
        mesh = trimesh.Trimesh(vertices, faces, process=False)
        text = trimesh.exchange.obj.export_obj(mesh, include_normals=False, include_texture=False, digits=6)
        obj_path = out_dir / f"{name}.obj"
        write_text(obj_path, text)
        with atomic_path(out_dir / f"{name}{FACE_LABELS_SUFFIX}") as tmp, open(tmp, "wb") as fh:
            np.save(fh, labels.astype(np.int64), allow_pickle=False)
        written.append(obj_path)
    return written
