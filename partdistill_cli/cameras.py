"""Pinhole cameras around a normalised shape (OpenCV convention: x right, y down, z forward)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Elevations (degrees) cycled over the views: mostly from above, one from below, as a person looks at an object.
DEFAULT_ELEVATIONS = (20.0, -15.0, 45.0)
DEFAULT_DISTANCE = 2.6
DEFAULT_FOV_DEG = 50.0


@dataclass(frozen=True)
class Camera:
    """One view.

    Attributes:
        intrinsics: (3, 3) float64 K; pixel (u, v) of camera point (x, y, z) is (fx x/z + cx, fy y/z + cy),
            pixel centres at integer + 0.5.
        world_to_camera: (4, 4) float64 rigid transform, normalised shape coordinates -> camera coordinates.
        width, height: image size in pixels.
    """

    intrinsics: np.ndarray
    world_to_camera: np.ndarray
    width: int
    height: int

    @property
    def position(self) -> np.ndarray:
        """(3,) camera centre in world coordinates."""
        r, t = self.world_to_camera[:3, :3], self.world_to_camera[:3, 3]
        return -r.T @ t

    def project(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project (N, 3) world points -> (pixel (N, 2) float64 (u, v), depth (N,) float64 camera z)."""
        cam = xyz @ self.world_to_camera[:3, :3].T + self.world_to_camera[:3, 3]
        z = cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = (cam[:, :2] / z[:, None]) * np.diag(self.intrinsics)[:2] + self.intrinsics[:2, 2]
        return uv, z

    def to_dict(self) -> dict:
        return {
            "intrinsics": self.intrinsics.tolist(),
            "world_to_camera": self.world_to_camera.tolist(),
            "width": self.width,
            "height": self.height,
        }

    @staticmethod
    def from_dict(d: dict) -> Camera:
        return Camera(np.asarray(d["intrinsics"]), np.asarray(d["world_to_camera"]), d["width"], d["height"])


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(4, 4) world-to-camera matrix of a camera at `eye` looking at `target` (OpenCV axes, image y down)."""
    forward = target - eye
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-8:  # looking straight along `up`: pick any perpendicular right vector
        right = np.cross(forward, np.array([1.0, 0.0, 0.0]) if abs(forward[0]) < 0.9 else np.array([0, 0, 1.0]))
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    rot = np.stack([right, down, forward])
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = -rot @ eye
    return m


def intrinsics_for(resolution: int, fov_deg: float = DEFAULT_FOV_DEG) -> np.ndarray:
    f = (resolution / 2.0) / np.tan(np.radians(fov_deg) / 2.0)
    return np.array([[f, 0.0, resolution / 2.0], [0.0, f, resolution / 2.0], [0.0, 0.0, 1.0]])


def view_set(
    n_views: int = 10,
    resolution: int = 512,
    distance: float = DEFAULT_DISTANCE,
    fov_deg: float = DEFAULT_FOV_DEG,
    elevations: tuple[float, ...] = DEFAULT_ELEVATIONS,
    up_axis: str = "y",
) -> list[Camera]:
    """`n_views` cameras on a sphere of radius `distance` around the origin, all looking at it.

    Azimuths are evenly spaced; elevations cycle through `elevations` (degrees above the horizontal plane).
    `up_axis` is the shape's up direction ("y" for ShapeNet/PartNet-Mobility, "z" for many CAD files).
    The unit sphere fits in every image with the default distance and field of view.
    """
    if n_views < 1:
        raise ValueError(f"the number of views must be at least 1, got {n_views}")
    if resolution < 16:
        raise ValueError(f"the resolution must be at least 16 pixels, got {resolution}")
    axes = {"y": (1, 2, 0), "z": (2, 0, 1), "x": (0, 1, 2)}
    if up_axis not in axes:
        raise ValueError(f"up axis must be one of x, y, z, got {up_axis!r}")
    iu, ia, ib = axes[up_axis]
    up = np.zeros(3)
    up[iu] = 1.0
    k = intrinsics_for(resolution, fov_deg)
    cams = []
    for i in range(n_views):
        az = np.radians(360.0 * i / n_views + 15.0)
        el = np.radians(elevations[i % len(elevations)])
        eye = np.zeros(3)
        eye[iu] = distance * np.sin(el)
        eye[ia] = distance * np.cos(el) * np.cos(az)
        eye[ib] = distance * np.cos(el) * np.sin(az)
        cams.append(Camera(k, look_at(eye, np.zeros(3), up), resolution, resolution))
    return cams
