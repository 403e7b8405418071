"""Benchmark the student: single-shape distillation, cached-student inference, category training.

    OMP_NUM_THREADS=2 python bench/bench_student.py [--shapes 50] [--points 10000] [--repeats 3] [--large 5000000]

Shapes are box-built chairs (seat, back, legs, sometimes arms) taught by the simulated teacher with the
"default" noise preset over 10 views at 256 px; only the student's own work is timed (rendering, teaching
and lifting are not). Peak memory is the process's maximum resident set size (resource.getrusage), which only
grows, so each figure is the peak up to the end of that stage. `--large N` times, instead, one epoch of
distillation and the prediction on an N-point cloud (the student works on `max_points` of them).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time

import numpy as np


def box_chair(seed: int, n_points: int):
    """(Shape, per-face labels, parts) of a random box-built chair."""
    import trimesh

    from partdistill_cli import shapes

    r = np.random.default_rng(seed)
    w, d, h, t, leg = r.uniform(0.8, 1.2), r.uniform(0.8, 1.2), r.uniform(0.7, 1.1), 0.08, r.uniform(0.06, 0.12)
    back = r.uniform(0.6, 1.0)
    boxes = [([0, h, 0], [w, t, d], 0), ([0, h + back / 2, -d / 2 + t / 2], [w, back, t], 1)]
    boxes += [
        ([x * (w / 2 - leg / 2), h / 2, z * (d / 2 - leg / 2)], [leg, h, leg], 2) for x in (-1, 1) for z in (-1, 1)
    ]
    if r.random() < 0.7:
        boxes += [([x * (w / 2 + leg / 2), h + 0.25, 0], [leg, leg, d * 0.8], 3) for x in (-1, 1)]
    meshes, labels = [], []
    for center, size, label in boxes:
        b = trimesh.creation.box(extents=size)
        b.apply_translation(center)
        v, f = b.vertices, b.faces
        for _ in range(2):
            v, f = trimesh.remesh.subdivide(v, f)
        meshes.append(trimesh.Trimesh(v, f, process=False))
        labels.append(np.full(len(f), label))
    mesh = trimesh.util.concatenate(meshes)
    shape = shapes.from_mesh(mesh.vertices, mesh.faces, n_points=n_points, seed=seed, name=f"chair{seed}")
    return shape, np.concatenate(labels), ["seat", "back", "leg", "arm"]


def taught(seed: int, n_points: int):
    from partdistill_cli import cameras, render
    from partdistill_cli.lift import lift
    from partdistill_cli.teachers.simulated import SimulatedTeacher, load_noise

    shape, face_labels, parts = box_chair(seed, n_points)
    views = render.render(shape, cameras.view_set(10, 256))
    teacher = SimulatedTeacher(face_labels, load_noise("default"), shape_seed=seed)
    return shape, lift(teacher.detect(views, parts), views, parts), face_labels, parts


def large_cloud(n_points: int) -> None:
    """Time one forward epoch and the prediction of a student on an n_points cloud (teaching not timed)."""
    from partdistill_cli.shapes import from_points
    from partdistill_cli.student import DistillConfig, distill
    from partdistill_cli.student.train import _epoch_steps, _Item, subsample

    mesh_shape, knowledge, _, _ = taught(0, n_points)
    cloud = from_points(mesh_shape.points, mesh_shape.normals, name="large")
    config = DistillConfig(min_forward_epochs=1, max_forward_epochs=1)
    pool = subsample(cloud.n_points, config.max_points)
    steps = _epoch_steps([_Item(cloud.points, knowledge, knowledge.scores, knowledge.scores, pool)], config)
    t = time.perf_counter()
    student = distill([(cloud, knowledge)], config, mode="forward", show_progress=False)
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    labels = student.predict(cloud)
    predict_s = time.perf_counter() - t
    print(
        f"large cloud ({n_points:,} points, student on {min(n_points, config.max_points):,}): one epoch of "
        f"{steps} steps {train_s:.1f} s, predict {predict_s:.1f} s, every point labeled "
        f"{bool((labels.point_labels >= 0).all())}, peak RSS {peak_mb():.0f} MB",
        flush=True,
    )


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", type=int, default=50, help="shapes in the category-training run")
    ap.add_argument("--points", type=int, default=10000, help="points of the single shape")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the single-shape and inference timings")
    ap.add_argument("--category-points", type=int, default=2048, help="points per category-training shape")
    ap.add_argument("--large", type=int, default=0, help="only time a cloud of this many points")
    args = ap.parse_args()
    if args.large:
        large_cloud(args.large)
        return

    import torch

    from partdistill_cli import store
    from partdistill_cli.metrics import shape_miou
    from partdistill_cli.student import DistillConfig, distill
    from partdistill_cli.vote import vote

    print(f"torch threads: {torch.get_num_threads()}", flush=True)
    config = DistillConfig()
    shape, knowledge, face_labels, parts = taught(0, args.points)
    gt = face_labels[shape.face_ids]
    times, student = [], None
    for r in range(args.repeats):
        t = time.perf_counter()
        student = distill([(shape, knowledge)], DistillConfig(seed=r), mode="full", show_progress=False)
        times.append(time.perf_counter() - t)
        miou = shape_miou(student.predict(shape, knowledge=knowledge).point_labels, gt, len(parts))
        print(f"  single-shape run {r}: {times[-1]:.1f} s, {student.history['epochs']} epochs, mIoU {miou:.3f}")
    print(
        f"single-shape distillation ({args.points} points, {knowledge.n_units} units): "
        f"median {statistics.median(times):.1f} s, peak RSS {peak_mb():.0f} MB",
        flush=True,
    )

    with tempfile.TemporaryDirectory() as root:
        card = store.StudentCard(category="chair", parts=parts, teacher="simulated-default")
        store.save_student(student, card, root=root)
        load_t, pred_t = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            cached = store.find_student("chair", parts, "simulated-default", student.config, root=root)
            load_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            cached.predict(shape, knowledge=knowledge)  # as `segment` does: fused with the knowledge
            pred_t.append(time.perf_counter() - t)
    print(
        f"cached-student inference ({args.points} points, {len(shape.faces)} faces, tta {config.tta}): "
        f"load median {1000 * statistics.median(load_t):.0f} ms, predict median {statistics.median(pred_t):.2f} s, "
        f"peak RSS {peak_mb():.0f} MB",
        flush=True,
    )

    items, gts = [], []
    for s in range(args.shapes):
        sh, kn, fl, _ = taught(100 + s, args.category_points)
        items.append((sh, kn))
        gts.append(fl[sh.face_ids])
    t = time.perf_counter()
    category = distill(items, config, mode="full", show_progress=sys.stderr.isatty())
    elapsed = time.perf_counter() - t
    mious, vote_fill = [], []
    for (sh, kn), g in zip(items, gts, strict=True):
        mious.append(shape_miou(category.predict(sh, knowledge=kn).point_labels, g, len(parts)))
        vote_fill.append(shape_miou(vote(kn, sh.points, fill=True).point_labels, g, len(parts)))
    print(
        f"category training ({args.shapes} shapes x {args.category_points} points): {elapsed:.1f} s, "
        f"{category.history['epochs']} epochs (backward from {category.history['backward_epoch']}), "
        f"mean mIoU on its own shapes {np.mean(mious):.3f} (vote-fill {np.mean(vote_fill):.3f}), "
        f"peak RSS {peak_mb():.0f} MB",
        flush=True,
    )


if __name__ == "__main__":
    main()
