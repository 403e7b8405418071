"""Distillation corrects what the geometry can correct: one view's wrong part name is outvoted."""

import numpy as np

from partdistill_cli.metrics import shape_miou
from partdistill_cli.pipeline import RenderSettings
from partdistill_cli.procedural import generate
from partdistill_cli.render import render
from partdistill_cli.shapes import from_mesh
from partdistill_cli.teachers.simulated import SimulatedTeacher, load_noise
from partdistill_cli.vote import vote


def test_full_distillation_beats_the_vote_when_one_view_swaps_a_label(monkeypatch):
    from partdistill_cli.lift import lift
    from partdistill_cli.student import DistillConfig, distill
    from partdistill_cli.student import train as train_module

    rescored = []
    real_backward = train_module._backward_weights

    def record(member, items, config, seed):
        real_backward(member, items, config, seed)
        rescored.append(items[0].weights.copy())

    monkeypatch.setattr(train_module, "_backward_weights", record)

    vertices, faces, face_labels, parts = generate("chair", seed=0)
    shape = from_mesh(vertices, faces, 2048, seed=0)
    views = render(shape, RenderSettings(n_views=6, resolution=192).cameras())
    detections = SimulatedTeacher(face_labels, load_noise("clean")).detect(views, parts)
    # In one view of six, the back is called "seat" with the confidence of a right answer.
    back, seat = parts.index("back"), parts.index("seat")
    swapped = [d for d in detections if d.view == 1 and d.part == back]
    assert swapped, "the back is visible in view 1"
    for d in swapped:
        d.part = seat
    knowledge = lift(detections, views, parts)
    gt = face_labels[shape.face_ids]
    vote_miou = shape_miou(vote(knowledge).point_labels, gt, len(parts))
    student = distill([(shape, knowledge)], DistillConfig(seed=0), mode="full", show_progress=False)
    labels = student.predict(shape)
    full_miou = shape_miou(labels.point_labels, gt, len(parts))
    assert (labels.point_labels >= 0).all()
    assert full_miou > vote_miou, (full_miou, vote_miou)
    # The points the swapped view alone named wrongly are back to "back" for most of them.
    only_view1 = np.zeros(shape.n_points, bool)
    for k in np.flatnonzero((knowledge.views == 1) & (knowledge.labels == seat)):
        only_view1[knowledge.unit(k)] = True
    wrong_back = only_view1 & (gt == back)
    assert (labels.point_labels[wrong_back] == back).mean() > 0.8
    # Backward distillation re-scored the units once: the swapped units fell well below the others.
    (weights,) = rescored
    # (view 1's true seat is labeled seat too: the swapped units are those lying mostly on the back)
    on_back = np.array([(gt[knowledge.unit(u)] == back).mean() > 0.5 for u in range(knowledge.n_units)])
    swapped_units = (knowledge.views == 1) & (knowledge.labels == seat) & on_back
    assert swapped_units.any()
    assert weights[swapped_units].max() < 0.5 * np.median(weights[~swapped_units])
    assert weights[swapped_units].max() < 0.5 * knowledge.scores[swapped_units].min()
