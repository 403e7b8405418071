import json

import numpy as np
import pytest

from partdistill_cli.cameras import view_set
from partdistill_cli.lift import lift
from partdistill_cli.render import render
from partdistill_cli.shapes import from_mesh
from partdistill_cli.teachers.simulated import NoiseConfig, SimulatedTeacher, load_noise
from partdistill_cli.vote import vote

from helpers import two_box_mesh


@pytest.fixture(scope="module")
def scene():
    v, f, lab = two_box_mesh()
    shape = from_mesh(v, f, 3000, seed=0)
    return shape, render(shape, view_set(6, 128)), lab


def test_presets_load_and_unknown_keys_are_refused(tmp_path):
    for name in ("clean", "default", "harsh"):
        assert isinstance(load_noise(name), NoiseConfig)
    assert load_noise("harsh").miss > load_noise("default").miss > load_noise("clean").miss
    bad = tmp_path / "n.json"
    bad.write_text(json.dumps({"mis": 0.1}))
    with pytest.raises(ValueError, match="unknown noise key"):
        load_noise(bad)
    bad.write_text(json.dumps({"miss": 2}))
    with pytest.raises(ValueError, match="probability"):
        load_noise(bad)
    with pytest.raises(ValueError, match="neither a preset"):
        load_noise("nope")


def test_clean_teacher_gives_ground_truth(scene):
    shape, views, lab = scene
    dets = SimulatedTeacher(lab, load_noise("clean")).detect(views, ["tower", "base"])
    assert {d.view for d in dets} == set(range(6))
    k = lift(dets, views, ["tower", "base"])
    pred = vote(k).point_labels
    gt = lab[shape.face_ids]
    covered = pred >= 0
    assert covered.mean() > 0.9 and (pred[covered] == gt[covered]).mean() > 0.99


def test_noise_is_seeded_and_behaves(scene):
    shape, views, lab = scene
    cfg = NoiseConfig(seed=3, miss=0.5, swap=0.5, false_positives=2.0, score_right=(0.6, 0.9), score_wrong=(0.1, 0.3))
    a = SimulatedTeacher(lab, cfg).detect(views, ["tower", "base"])
    b = SimulatedTeacher(lab, cfg).detect(views, ["tower", "base"])
    assert [(d.view, d.part, d.score) for d in a] == [(d.view, d.part, d.score) for d in b]
    c = SimulatedTeacher(lab, cfg, shape_seed=1).detect(views, ["tower", "base"])
    assert [(d.view, d.part) for d in a] != [(d.view, d.part) for d in c]
    scores = np.array([d.score for d in a])
    assert ((scores >= 0.1) & (scores <= 0.9)).all() and (scores < 0.3).any()


def test_box_mode_gives_boxes_per_instance(scene):
    shape, views, lab = scene
    dets = SimulatedTeacher(lab, NoiseConfig(box=True)).detect(views, ["tower", "base"])
    assert dets and all(d.box is not None and d.mask is None for d in dets)
    h, w = views.size
    for d in dets:
        x0, y0, x1, y1 = d.box
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h


def test_systematic_confusion_is_consistent_across_views(scene):
    shape, views, lab = scene
    dets = SimulatedTeacher(lab, NoiseConfig(systematic=1.0, seed=0)).detect(views, ["tower", "base"])
    part_img = views.part_images(lab)
    wrong = [d for d in dets if np.bincount(part_img[d.view][d.mask].clip(0), minlength=2).argmax() != d.part]
    assert len(wrong) >= 0.5 * len(views.cameras)  # one part misnamed in most views


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"miss": "lots"}, "noise 'miss' must be a number, got 'lots'"),
        ({"seed": 1.5}, "noise 'seed' must be an integer, got 1.5"),
        ({"box": "yes"}, "noise 'box' must be true or false, got 'yes'"),
        ({"boundary_px": True}, "noise 'boundary_px' must be an integer, got True"),
        ({"score_right": [0.5]}, "noise 'score_right' must be [lo, hi], two numbers, got [0.5]"),
        ({"score_wrong": "0.1-0.2"}, "noise 'score_wrong' must be [lo, hi], two numbers, got '0.1-0.2'"),
        ({"false_positives": None}, "noise 'false_positives' must be a number, got None"),
    ],
)
def test_noise_settings_of_the_wrong_type_are_refused(tmp_path, settings, message):
    path = tmp_path / "noise.json"
    path.write_text(json.dumps(settings))
    with pytest.raises(ValueError) as err:
        load_noise(path)
    assert str(err.value) == f"{path}: {message}"
