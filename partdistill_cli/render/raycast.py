"""CPU mesh renderer: open3d's RaycastingScene (Embree) casts one ray per pixel for all views at once."""

from __future__ import annotations

import numpy as np

from partdistill_cli.cameras import Camera
from partdistill_cli.render.base import Views, pixel_map, shade
from partdistill_cli.shapes import Shape

MISS = np.uint32(0xFFFFFFFF)


def build_scene(vertices: np.ndarray, faces: np.ndarray):
    """An open3d RaycastingScene holding one (V, 3) / (F, 3) triangle mesh."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32)),
        o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32)),
    )
    return scene


def camera_rays(cameras: list[Camera]):
    """(V, H, W, 6) open3d float32 tensor of rays (origin, direction); t_hit along them is camera z-depth."""
    import open3d as o3d

    rays = [
        o3d.t.geometry.RaycastingScene.create_rays_pinhole(
            intrinsic_matrix=o3d.core.Tensor(c.intrinsics),
            extrinsic_matrix=o3d.core.Tensor(c.world_to_camera),
            width_px=c.width,
            height_px=c.height,
        )
        for c in cameras
    ]
    return o3d.core.concatenate([r.reshape((1, *r.shape)) for r in rays], axis=0)


def render_mesh(shape: Shape, cameras: list[Camera], tolerance: float | None = None) -> Views:
    """Ray-cast a mesh `Shape` from `cameras` and build its pixel->point map (see `Views`)."""
    if not shape.is_mesh:
        raise ValueError("the ray-casting renderer needs a mesh; use the splatting renderer for point clouds")
    scene = build_scene(shape.vertices, shape.faces)
    hits = scene.cast_rays(camera_rays(cameras), nthreads=0)
    shape_vhw = (len(cameras), cameras[0].height, cameras[0].width)
    prim = hits["primitive_ids"].numpy().reshape(shape_vhw)
    depth = hits["t_hit"].numpy().reshape(shape_vhw)
    hit = prim != MISS
    ids = np.where(hit, prim, -1).astype(np.int32)
    normals = hits["primitive_normals"].numpy().reshape(*shape_vhw, 3)
    rot = np.stack([c.world_to_camera[:3, :3] for c in cameras]).astype(np.float32)
    rgb = shade(np.einsum("vhwc,vc->vhw", normals, rot[:, 2, :]), hit)
    depth = np.where(hit, depth, np.inf).astype(np.float32)
    face_normals = np.cross(
        shape.vertices[shape.faces[:, 1]] - shape.vertices[shape.faces[:, 0]],
        shape.vertices[shape.faces[:, 2]] - shape.vertices[shape.faces[:, 0]],
    )
    pmap = pixel_map(
        cameras, depth, shape.points, tolerance, ids, shape.face_ids, face_normals[shape.face_ids]
    )
    return Views(cameras, rgb, depth, ids, "face", pmap)
