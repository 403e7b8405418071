import numpy as np
import pytest
import trimesh

from partdistill_cli.cameras import Camera, intrinsics_for, look_at, view_set
from partdistill_cli.render import render
from partdistill_cli.shapes import from_mesh, from_points


def top_camera(res=128):
    return Camera(intrinsics_for(res), look_at(np.array([0, 0, 3.0]), np.zeros(3), np.array([0, 1.0, 0])), res, res)


def cube():
    m = trimesh.creation.box()
    return from_mesh(m.vertices, m.faces, 4000, seed=0)


def test_cube_seen_from_plus_z_lights_exactly_its_top_face():
    shape = cube()
    views = render(shape, [top_camera()])
    visible = views.visible()[0]
    top = np.isclose(shape.points[:, 2], shape.points[:, 2].max(), atol=1e-5)
    assert np.array_equal(visible, top)
    # Depth is camera z: the top face is at distance 3 - its height.
    assert np.isclose(np.nanmin(views.depth[0]), 3 - shape.points[:, 2].max(), atol=1e-4)
    # The top face is seen head-on: its normal is the camera axis, so it is shaded evenly at full brightness.
    hit = views.ids[0] >= 0
    assert np.allclose(np.abs(views.facing[0][hit]), 1.0, atol=1e-5)
    assert (views.rgb[0][hit] == 230).all() and (views.rgb[0][~hit] == 255).all()


def test_views_shapes_and_consistency():
    shape = cube()
    cams = view_set(6, 96)
    views = render(shape, cams)
    assert views.rgb.shape == (6, 96, 96, 3) and views.rgb.dtype == np.uint8
    assert views.depth.shape == views.ids.shape == (6, 96, 96)
    assert views.pixel_of_point.shape == (6, shape.n_points)
    hit = views.ids >= 0
    assert np.isfinite(views.depth[hit]).all() and np.isinf(views.depth[~hit]).all()
    assert (views.rgb[~hit] == 255).all() and (views.rgb[hit] < 255).all()
    # Every visible point's pixel shows its own face or a face sharing its depth.
    v, i = np.nonzero(views.pixel_of_point >= 0)
    pix = views.pixel_of_point[v, i]
    assert (views.ids.reshape(6, -1)[v, pix] >= 0).all()
    assert views.visible().any(axis=0).mean() > 0.9  # six views see nearly all of a cube


def test_occluded_points_are_invisible():
    shape = cube()
    views = render(shape, [top_camera()])
    bottom = np.isclose(shape.points[:, 2], shape.points[:, 2].min(), atol=1e-5)
    assert not views.visible()[0][bottom].any()


def test_splatting_agrees_with_ray_casting_away_from_grazing_angles():
    mesh_shape = cube()
    cloud = from_points(mesh_shape.points, mesh_shape.normals)  # same points, renormalised very slightly
    cams = view_set(4, 256)
    a = render(mesh_shape, cams).visible()
    views = render(cloud, cams)
    b = views.visible()
    assert views.id_kind == "point" and views.ids.max() < cloud.n_points
    for v, cam in enumerate(cams):
        to_cam = cam.position - mesh_shape.points
        cos = np.einsum("nc,nc->n", mesh_shape.normals, to_cam) / np.linalg.norm(to_cam, axis=1)
        front, back = cos > 0.3, cos < -0.3
        assert a[v][front].mean() > 0.98 and b[v][front].mean() > 0.95
        assert not a[v][back].any() and b[v][back].mean() < 0.1


def test_point_cloud_without_normals_renders_and_cannot_use_raycast():
    cloud = from_points(np.random.default_rng(0).normal(size=(500, 3)))
    views = render(cloud, view_set(2, 64))
    assert views.rgb.shape == (2, 64, 64, 3)
    with pytest.raises(ValueError, match="needs a mesh"):
        render(cloud, view_set(2, 64), renderer="raycast")


def test_part_images_from_primitive_labels():
    shape = cube()
    views = render(shape, [top_camera(64)])
    labels = np.arange(len(shape.faces)) % 2
    img = views.part_images(labels)
    assert set(np.unique(img)) <= {-1, 0, 1}
    assert np.array_equal(img >= 0, views.ids >= 0)
