"""Preview and explain sheets: files, sizes, legends, part colors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_outputs import PARTS, box_and_cylinder, labels_with_confidence

from partdistill_cli.cameras import view_set
from partdistill_cli.knowledge import Detection, Labels
from partdistill_cli.outputs import PALETTE, UNLABELED_COLOR
from partdistill_cli.preview import UNLABELED_NAME, explain_sheet, label_images, preview_sheet
from partdistill_cli.render import render
from partdistill_cli.shapes import from_mesh, from_points


def _mesh():
    vertices, faces, face_labels = box_and_cylinder()
    shape = from_mesh(vertices, faces, 512, seed=0, name="thing")
    return shape, labels_with_confidence(face_labels[shape.face_ids], 2, 0.8, face_labels)


def _has_color(image: np.ndarray, color) -> bool:
    return bool((image.reshape(-1, 3) == np.asarray(color, np.uint8)).all(axis=1).any())


def test_preview_sheet_of_a_mesh(tmp_path):
    shape, labels = _mesh()
    path = tmp_path / "p.png"
    meta = preview_sheet(shape, labels, path, n_views=4, resolution=96)
    assert meta["legend"] == PARTS and meta["views"] == 4
    with Image.open(path) as im:
        assert im.size == tuple(meta["size"])
        img = np.asarray(im.convert("RGB"))
    # 3 views per row: 2 rows of 96 pixel tiles, plus title and legend.
    assert img.shape[1] == 3 * 96 and img.shape[0] > 2 * 96
    # The legend swatches carry the exact part colors.
    assert _has_color(img, PALETTE[0]) and _has_color(img, PALETTE[1])


def test_preview_sheet_of_a_cloud_lists_unlabeled(tmp_path):
    rng = np.random.default_rng(1)
    xyz = rng.normal(size=(800, 3))
    shape = from_points(xyz, name="cloud")
    point_labels = (xyz[:, 1] > 0).astype(np.int64)
    point_labels[xyz[:, 0] > 1.0] = -1
    labels = labels_with_confidence(point_labels, 2, 0.9)
    meta = preview_sheet(shape, labels, tmp_path / "c.png", n_views=2, resolution=64)
    assert meta["legend"] == [*PARTS, UNLABELED_NAME]
    with Image.open(tmp_path / "c.png") as im:
        assert im.size == tuple(meta["size"]) and im.size[0] == 2 * 64
        assert _has_color(np.asarray(im.convert("RGB")), UNLABELED_COLOR)


def test_label_images_color_each_pixel_by_its_part():
    shape, labels = _mesh()
    views = render(shape, view_set(2, 64))
    colors = np.array(PALETTE[:2], np.uint8)
    img = label_images(views, labels.face_labels, colors)
    assert img.shape == (2, 64, 64, 3) and img.dtype == np.uint8
    part = views.part_images(labels.face_labels)
    assert (img[part < 0] == 255).all()
    # Shading only scales a part's color: its hue (channel order) survives, body blue, handle orange.
    body, handle = img[part == 0].astype(int), img[part == 1].astype(int)
    assert (body[:, 2] >= body[:, 0]).all() and (handle[:, 0] >= handle[:, 2]).all()


def test_explain_sheet_shows_masks_and_boxes(tmp_path):
    shape, labels = _mesh()
    views = render(shape, view_set(3, 96))
    parts_img = views.part_images(labels.face_labels)
    dets = [
        Detection(0, 1, 0.9, mask=parts_img[0] == 1),
        Detection(0, 0, 0.4, box=np.array([10.0, 40.0, 80.0, 90.0])),
        Detection(2, 0, 0.7, mask=parts_img[2] == 0),
    ]
    meta = explain_sheet(views, dets, labels, PARTS, tmp_path / "e.png", tile=96)
    assert meta["views"] == 3 and meta["detections"] == 3 and meta["legend"] == PARTS
    with Image.open(tmp_path / "e.png") as im:
        assert im.size == tuple(meta["size"])
        img = np.asarray(im.convert("RGB"))
    assert _has_color(img, PALETTE[0]) and _has_color(img, PALETTE[1])
    with pytest.raises(ValueError, match="part 5"):
        explain_sheet(views, [Detection(0, 5, 0.5, box=np.array([0, 0, 4, 4.0]))], labels, PARTS, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_a_mesh_preview_needs_face_labels(tmp_path):
    shape, labels = _mesh()
    with pytest.raises(ValueError, match="per-face labels"):
        preview_sheet(shape, Labels(labels.point_labels, labels.probs, labels.parts), tmp_path / "p.png", 1, 32)
