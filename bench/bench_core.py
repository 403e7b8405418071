"""Core pipeline benchmarks (issue 2 targets). Prints medians of several runs on this machine.

- mesh render (10 views x 512², ray casting + shading + pixel->point map) vs a bare RaycastingScene call on the
  same rays (target <= 1.3x);
- splatting 10 views of 100k points;
- lift + vote for 10 views / 50 units / 10k points (target <= 0.1 s);
- `partdistill --help` wall time (target <= 0.3 s).

Usage: python bench/bench_core.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np


def median_time(fn, repeats: int) -> float:
    return median_times([fn], repeats)[0]


def median_times(fns, repeats: int) -> list[float]:
    """Median wall time of each function, run in turn (round robin) so that a slow spell of the machine
    weighs on every one of them alike, not on whichever happened to run then."""
    for fn in fns:
        fn()  # warm-up (first open3d / torch call pays one-time costs)
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times, strict=True):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
    return [statistics.median(ts) for ts in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import trimesh

    from partdistill_cli.cameras import view_set
    from partdistill_cli.knowledge import Detection
    from partdistill_cli.lift import lift
    from partdistill_cli.render import render
    from partdistill_cli.render.raycast import build_scene, camera_rays
    from partdistill_cli.shapes import from_mesh, from_points
    from partdistill_cli.vote import vote

    cams = view_set(10, 512)
    rows = []
    for subdiv, label in ((3, "1.3k faces"), (5, "20k faces"), (7, "328k faces")):
        mesh = trimesh.creation.icosphere(subdivisions=subdiv)
        shape = from_mesh(mesh.vertices, mesh.faces, 10000)
        scene = build_scene(shape.vertices, shape.faces)
        rays = camera_rays(cams)
        # A bare use of RaycastingScene builds its scene (BVH) and casts the same rays.
        cast, bare, full = median_times(
            [
                lambda scene=scene, rays=rays: scene.cast_rays(rays, nthreads=0),
                lambda shape=shape, rays=rays: build_scene(shape.vertices, shape.faces).cast_rays(rays, nthreads=0),
                lambda shape=shape: render(shape, cams),
            ],
            args.repeats,
        )
        note = f"bare build+cast {bare:.3f} s (cast only {cast:.3f} s), ratio {full / bare:.2f}x (target <= 1.3x)"
        rows.append((f"render mesh {label}, 10x512², 10k points", full, note))

    surface = trimesh.creation.icosphere(subdivisions=4)
    surface.vertices[:, 1] *= 0.5  # an ellipsoid: a scanned surface, not a volume of points
    xyz, _ = trimesh.sample.sample_surface(surface, 100_000, seed=0)
    cloud = from_points(xyz)
    t = median_time(lambda: render(cloud, cams), args.repeats)
    rows.append(("splat 100k surface points, 10x512²", t, "incl. pixel->point map"))

    mesh = trimesh.creation.icosphere(subdivisions=4)
    shape = from_mesh(mesh.vertices, mesh.faces, 10000)
    views = render(shape, cams)
    rng = np.random.default_rng(0)
    dets = []
    for k in range(50):
        v = k % 10
        cy, cx = rng.integers(150, 360, size=2)
        r = rng.integers(20, 80)
        yy, xx = np.ogrid[:512, :512]
        dets.append(Detection(v, k % 4, float(rng.uniform(0.3, 0.9)), mask=(yy - cy) ** 2 + (xx - cx) ** 2 < r * r))
    parts = ["a", "b", "c", "d"]
    t = median_time(lambda: vote(lift(dets, views, parts), shape.points, fill=True), args.repeats)
    rows.append(("lift + vote-fill, 10 views / 50 masks / 10k points", t, "target <= 0.1 s"))

    def help_time():
        subprocess.run([sys.executable, "-m", "partdistill_cli.cli", "--help"], check=True, capture_output=True)

    t = median_time(help_time, args.repeats)
    rows.append(("partdistill --help (python -m, wall)", t, "target <= 0.3 s"))

    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  median s  notes")
    for name, secs, note in rows:
        print(f"{name:<{width}}  {secs:8.3f}  {note}")


if __name__ == "__main__":
    main()
