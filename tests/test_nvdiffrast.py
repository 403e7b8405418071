"""The nvdiffrast renderer, run against a CPU test double of `nvdiffrast.torch` (no GPU here).

The double checks nvdiffrast's documented call conventions and rasterizes the clip-space triangles by ray
casting in normalised device coordinates with open3d, writing the documented output layout (u, v, z/w,
triangle_id + 1) with image row r at y_ndc = -1 + (2r + 1) / H. The renderer must then agree with the CPU ray
caster on the same cameras.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types

import numpy as np
import pytest
import torch
import trimesh

from partdistill_cli.cameras import view_set
from partdistill_cli.errors import UserError
from partdistill_cli.render import RENDERERS, render, resolve_renderer
from partdistill_cli.render import nvdiffrast as nvd
from partdistill_cli.shapes import from_mesh, from_points


class FakeContext:
    def __init__(self, device=None, output_db=True):
        self.device = device


def fake_rasterize(glctx, pos, tri, resolution, ranges=None, grad_db=True):
    """CPU stand-in for nvdiffrast.torch.rasterize (instanced mode, no ranges)."""
    import open3d as o3d

    assert isinstance(glctx, FakeContext)
    assert isinstance(pos, torch.Tensor) and pos.dtype == torch.float32, "positions must be float32"
    assert pos.ndim == 3 and pos.shape[0] == 1 and pos.shape[2] == 4, f"positions must be (1, V, 4), got {pos.shape}"
    assert pos.is_contiguous(), "positions must be contiguous"
    assert isinstance(tri, torch.Tensor) and tri.dtype == torch.int32, "triangles must be int32"
    assert tri.ndim == 2 and tri.shape[1] == 3 and tri.is_contiguous(), "triangles must be contiguous (F, 3)"
    assert ranges is None
    assert len(resolution) == 2 and all(isinstance(int(r), int) for r in resolution)
    h, w = int(resolution[0]), int(resolution[1])
    clip = pos[0].double().numpy()
    assert (clip[:, 3] > 0).all(), "the test shape lies entirely in front of the camera"
    ndc = clip[:, :3] / clip[:, 3:]
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(ndc.astype(np.float32)), o3d.core.Tensor(tri.numpy().astype(np.uint32)))
    ys, xs = np.meshgrid(-1 + (2 * np.arange(h) + 1) / h, -1 + (2 * np.arange(w) + 1) / w, indexing="ij")
    rays = np.zeros((h, w, 6), dtype=np.float32)
    rays[..., 0], rays[..., 1], rays[..., 2], rays[..., 5] = xs, ys, -2.0, 1.0
    hits = scene.cast_rays(o3d.core.Tensor(rays))
    prim = hits["primitive_ids"].numpy().astype(np.int64)
    hit = prim != 0xFFFFFFFF
    z_ndc = hits["t_hit"].numpy() - 2.0
    hit &= (z_ndc >= -1) & (z_ndc <= 1)
    uv = hits["primitive_uvs"].numpy().astype(np.float64)
    # open3d's (a, b) weight vertices 1 and 2 in screen space; perspective-correct weights divide by w.
    screen = np.stack([1 - uv[..., 0] - uv[..., 1], uv[..., 0], uv[..., 1]], axis=-1)
    wv = clip[:, 3][tri.numpy()[np.where(hit, prim, 0)]]
    persp = screen / wv
    persp /= persp.sum(-1, keepdims=True)
    rast = np.zeros((1, h, w, 4), dtype=np.float32)
    rast[0, ..., 0] = np.where(hit, persp[..., 0], 0)
    rast[0, ..., 1] = np.where(hit, persp[..., 1], 0)
    rast[0, ..., 2] = np.where(hit, z_ndc, 0)
    rast[0, ..., 3] = np.where(hit, prim + 1, 0)
    return torch.from_numpy(rast), torch.zeros_like(torch.from_numpy(rast))


@pytest.fixture
def fake_nvdiffrast(monkeypatch):
    pkg = types.ModuleType("nvdiffrast")
    pkg.__spec__ = importlib.machinery.ModuleSpec("nvdiffrast", None)
    mod = types.ModuleType("nvdiffrast.torch")
    mod.__spec__ = importlib.machinery.ModuleSpec("nvdiffrast.torch", None)
    mod.RasterizeCudaContext = FakeContext
    mod.rasterize = fake_rasterize
    pkg.torch = mod
    monkeypatch.setitem(sys.modules, "nvdiffrast", pkg)
    monkeypatch.setitem(sys.modules, "nvdiffrast.torch", mod)
    return mod


def scene_shape():
    """A box with a sphere in front of one face (occlusion) and a thin plate (an open, single-sheet surface)."""
    box = trimesh.creation.box(extents=(1.0, 0.8, 0.6))
    ball = trimesh.creation.icosphere(subdivisions=2, radius=0.3)
    ball.apply_translation([0.0, 0.0, 0.55])
    plate = trimesh.Trimesh(
        vertices=[[-0.9, 0.5, -0.5], [0.9, 0.5, -0.5], [0.9, 0.5, 0.5], [-0.9, 0.5, 0.5]], faces=[[0, 1, 2], [0, 2, 3]]
    )
    mesh = trimesh.util.concatenate([box, ball, plate])
    return from_mesh(mesh.vertices, mesh.faces, 3000, 0, "scene")


def test_clip_matrix_maps_pixels_like_the_camera():
    cam = view_set(3, 48)[1]
    near, far = nvd.near_far(cam)
    pts = np.random.default_rng(0).uniform(-0.7, 0.7, (50, 3))
    clip = np.c_[pts, np.ones(len(pts))] @ nvd.clip_matrix(cam, near, far).T
    ndc = clip[:, :3] / clip[:, 3:]
    uv, z = cam.project(pts)
    np.testing.assert_allclose((ndc[:, 0] + 1) * cam.width / 2, uv[:, 0], atol=1e-9)
    np.testing.assert_allclose((ndc[:, 1] + 1) * cam.height / 2, uv[:, 1], atol=1e-9)  # no y flip
    np.testing.assert_allclose(clip[:, 3], z, atol=1e-12)
    assert (ndc[:, 2] > -1).all() and (ndc[:, 2] < 1).all()


def test_matches_the_cpu_ray_caster(fake_nvdiffrast):
    shape = scene_shape()
    cams = view_set(4, 64)
    gpu = nvd.render_mesh(shape, cams, device="cpu")
    cpu = RENDERERS["raycast"](shape, cams)
    assert gpu.ids.shape == cpu.ids.shape and gpu.ids.dtype == np.int32
    assert gpu.rgb.shape == cpu.rgb.shape and gpu.rgb.dtype == np.uint8
    assert gpu.depth.dtype == np.float32 and gpu.id_kind == "face"
    assert np.mean(gpu.ids == cpu.ids) > 0.99
    assert np.mean((gpu.ids >= 0) == (cpu.ids >= 0)) > 0.995
    both = (gpu.ids >= 0) & (gpu.ids == cpu.ids)
    np.testing.assert_allclose(gpu.depth[both], cpu.depth[both], atol=1e-4)
    assert np.isinf(gpu.depth[gpu.ids < 0]).all()
    assert np.mean(gpu.pixel_of_point == cpu.pixel_of_point) > 0.99
    assert np.mean(np.abs(gpu.rgb.astype(int) - cpu.rgb.astype(int)) <= 1) > 0.99


def test_nvdiffrast_without_cuda_is_a_clear_user_error():
    shape = scene_shape()
    if nvd.available():
        pytest.skip("checks the error raised without CUDA, but CUDA and nvdiffrast are present here")
    with pytest.raises(UserError, match="nvdiffrast renderer needs"):
        resolve_renderer("nvdiffrast", shape)
    with pytest.raises(UserError, match="--renderer raycast"):
        render(shape, view_set(1, 32), renderer="nvdiffrast")


def test_auto_picks_nvdiffrast_only_for_meshes_with_cuda(fake_nvdiffrast, monkeypatch):
    mesh = scene_shape()
    cloud = from_points(mesh.points, mesh.normals, "cloud")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_renderer("auto", mesh) == "raycast"
    with pytest.raises(UserError, match="CUDA GPU"):
        resolve_renderer("nvdiffrast", mesh)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_renderer("auto", mesh) == "nvdiffrast"
    assert resolve_renderer("auto", mesh, device="cuda:0") == "nvdiffrast"
    assert resolve_renderer("auto", mesh, device="cpu") == "raycast"
    assert resolve_renderer("auto", cloud) == "splat"
    with pytest.raises(ValueError, match="needs a mesh"):
        resolve_renderer("nvdiffrast", cloud)


def test_auto_without_nvdiffrast_keeps_the_cpu_renderers(monkeypatch):
    monkeypatch.setitem(sys.modules, "nvdiffrast", None)  # find_spec then reports it missing
    mesh = scene_shape()
    assert resolve_renderer("auto", mesh) == "raycast"
    assert resolve_renderer("auto", mesh, device="cuda") == "raycast"
