"""GPU mesh renderer: nvdiffrast's CUDA rasterizer, giving the same `Views` as the CPU ray caster.

Conventions bridged here:
- Our cameras are OpenCV pinholes (x right, y down, z forward, pixel centres at integer + 0.5). nvdiffrast takes
  OpenGL clip-space positions and writes image row r where clip-space y/w = -1 + (2r + 1) / H, i.e. its first row
  is at y = -1. Mapping the OpenCV pixel row v (which grows downwards) to y_ndc = 2 v / H - 1 therefore gives
  rows in OpenCV order with no flip.
- z/w runs from -1 (near plane) to +1 (far plane). Depth is not read from it: the camera z of the hit point is
  interpolated from the triangle's vertices with the rasterizer's perspective-correct barycentrics (u, v), which
  is exact, as is the CPU renderer's t_hit.
- The rast output is (B, H, W, 4) float32 = (u, v, z/w, triangle_id + 1), 0 where no triangle was hit; u and v
  weight the triangle's first and second vertex, 1 - u - v its third.

Point visibility is the CPU renderer's own (`raycast.point_visibility`: one open3d ray from each camera to each
sample point), so both renderers give the same pixel->point map; it costs V x N rays, little beside the
V x H x W pixels rasterized here.
"""

from __future__ import annotations

import numpy as np

from partdistill_cli.cameras import Camera
from partdistill_cli.errors import UserError
from partdistill_cli.render.base import Views
from partdistill_cli.render.raycast import build_scene, point_visibility
from partdistill_cli.shapes import Shape

# The normalised shape lies in the unit sphere; near/far planes just outside it keep the z-buffer precise.
SHAPE_RADIUS = 1.0
MIN_NEAR = 1e-3


def available() -> bool:
    """Whether nvdiffrast is importable and CUDA is present (without importing torch when it is not)."""
    import importlib.util

    if importlib.util.find_spec("nvdiffrast") is None:
        return False
    import torch

    return torch.cuda.is_available()


def clip_matrix(camera: Camera, near: float, far: float) -> np.ndarray:
    """(4, 4) float64 matrix taking world points (homogeneous, column vectors) to nvdiffrast clip space."""
    k, w, h = camera.intrinsics, camera.width, camera.height
    proj = np.array(
        [
            [2 * k[0, 0] / w, 2 * k[0, 1] / w, 2 * k[0, 2] / w - 1, 0],
            [0, 2 * k[1, 1] / h, 2 * k[1, 2] / h - 1, 0],
            [0, 0, (far + near) / (far - near), -2 * far * near / (far - near)],
            [0, 0, 1, 0],
        ]
    )
    return proj @ camera.world_to_camera


def near_far(camera: Camera) -> tuple[float, float]:
    dist = float(np.linalg.norm(camera.position))
    return max(MIN_NEAR, dist - 1.01 * SHAPE_RADIUS), dist + 1.01 * SHAPE_RADIUS


def rasterize(shape: Shape, cameras: list[Camera], device) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rasterize the mesh in every view: (ids (V, H, W) int32 face or -1, depth (V, H, W) float32 camera z or
    inf, cos (V, H, W) float32 camera-z component of the seen face's unit normal)."""
    import nvdiffrast.torch as dr
    import torch

    h, w = cameras[0].height, cameras[0].width
    ctx = dr.RasterizeCudaContext(device=device)
    verts = torch.as_tensor(np.asarray(shape.vertices, dtype=np.float64), device=device)
    tri = torch.as_tensor(np.ascontiguousarray(shape.faces, dtype=np.int32), device=device).contiguous()
    homo = torch.cat([verts, torch.ones_like(verts[:, :1])], dim=1)  # (V, 4) float64
    e1 = verts[tri[:, 1].long()] - verts[tri[:, 0].long()]
    e2 = verts[tri[:, 2].long()] - verts[tri[:, 0].long()]
    normals = torch.nn.functional.normalize(torch.cross(e1, e2, dim=1), dim=1)
    ids, depth, cos = [], [], []
    for cam in cameras:
        if (cam.height, cam.width) != (h, w):
            raise ValueError("all cameras must have the same image size")
        mvp = torch.as_tensor(clip_matrix(cam, *near_far(cam)), device=device)
        pos = (homo @ mvp.T).to(torch.float32)[None].contiguous()  # (1, V, 4)
        rast, _ = dr.rasterize(ctx, pos, tri, resolution=[h, w])
        rast = rast[0]
        face = rast[..., 3].round().to(torch.int64) - 1  # triangle id + 1, 0 = empty
        hit = face >= 0
        safe = face.clamp(min=0)
        w2c = torch.as_tensor(cam.world_to_camera, device=device)
        cam_z = verts @ w2c[2, :3] + w2c[2, 3]  # (V,) camera z of every vertex
        corners = cam_z[tri.long()][safe]  # (H, W, 3)
        u, v = rast[..., 0].double(), rast[..., 1].double()
        z = u * corners[..., 0] + v * corners[..., 1] + (1 - u - v) * corners[..., 2]
        ids.append(torch.where(hit, face, -1).to(torch.int32))
        depth.append(torch.where(hit, z, torch.inf).to(torch.float32))
        cos.append((normals[safe] @ w2c[2, :3]).to(torch.float32))
    return (
        torch.stack(ids).cpu().numpy(),
        torch.stack(depth).cpu().numpy(),
        torch.stack(cos).cpu().numpy(),
    )


def render_mesh(shape: Shape, cameras: list[Camera], tolerance: float | None = None, device=None) -> Views:
    """Rasterize a mesh `Shape` with nvdiffrast on CUDA and build its pixel->point map (see `Views`).

    `tolerance` is accepted for the renderer interface; exact ray-cast visibility does not need one.
    `device` defaults to the current CUDA device; nvdiffrast's rasterizer needs CUDA (another device is only
    meaningful with a stand-in for `nvdiffrast.torch`).
    """
    if not shape.is_mesh:
        raise ValueError("the nvdiffrast renderer needs a mesh; use the splatting renderer for point clouds")
    if device is None:
        require_cuda()
        device = "cuda"
    ids, depth, cos = rasterize(shape, cameras, device)
    hit = ids >= 0
    pmap = point_visibility(build_scene(shape.vertices, shape.faces), cameras, shape.points, hit)
    return Views(cameras, cos, depth, ids, "face", pmap)


def require_cuda() -> None:
    """Raise a UserError saying what is missing when nvdiffrast cannot run here."""
    import importlib.util

    if importlib.util.find_spec("nvdiffrast") is None:
        raise UserError(
            "the nvdiffrast renderer needs the nvdiffrast package and a CUDA GPU: install the GPU extra "
            "(pip install 'partdistill[gpu]', which provides diffrp-nvdiffrast) or use --renderer raycast"
        )
    import torch

    if not torch.cuda.is_available():
        raise UserError(
            "the nvdiffrast renderer needs a CUDA GPU, and torch sees none here; use --renderer raycast "
            "(or auto, which picks the CPU ray caster)"
        )
