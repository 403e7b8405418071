"""Shapes per minute of `partdistill segment` over a folder: one process per shape (models reloaded every time),
one batch with the models loaded once, and the batch on a local Ray with `--workers 1` and `--workers 2`.

The teacher is a real-size CLIPSeg (ViT-B/16 at 352 px, rd64 decoder: the clipseg-rd64-refined configuration)
with random weights, built offline as bench/bench_teachers.py builds it; its masks are meaningless, its cost is
real. The shapes are procedural (chairs, tables, mugs, ...), written as OBJ. Every mode starts from an empty
knowledge cache, so the teacher runs for every shape. Then one shape's stages are timed one by one in this
process (load, render, teacher, lift, distill + predict, write) to show which stage bounds the throughput, and
Ray's start-up (a local Ray plus its teacher actors loading the model) is timed alone.

    python bench/bench_batch.py [--shapes 20] [--views 3] [--epochs 1] [--modes sequential,batch,workers1,workers2]

Every mode is a separate `partdistill` command line, as a user would run it; the torch thread count is what
OMP_NUM_THREADS says (unset: all cores), for the driver and each Ray worker alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

CATEGORIES = ["chair", "table", "mug", "lamp", "airplane"]
PARTS = "top,middle,bottom"
MODES = {"sequential": None, "batch": [], "workers1": ["--workers", "1"], "workers2": ["--workers", "2"]}


def make_shapes(folder: Path, count: int) -> list[Path]:
    import trimesh

    from partdistill_cli.procedural import generate

    folder.mkdir(parents=True)
    paths = []
    for i in range(count):
        category = CATEGORIES[i % len(CATEGORIES)]
        v, f, _, _ = generate(category, i)
        paths.append(folder / f"{category}_{i:02d}.obj")
        trimesh.Trimesh(v, f, process=False).export(paths[-1])
    return paths


def run(args: list[str], env: dict) -> float:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "partdistill_cli.cli", *args], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - started


def stage_times(shape_path: Path, settings: list[str], clipseg: str, tmp: Path) -> dict[str, float]:
    """One shape's stages, timed one by one in this process (the teacher loaded beforehand)."""
    from partdistill_cli.config import RenderSettings, SegmentConfig
    from partdistill_cli.parts import PartList
    from partdistill_cli.pipeline import Pipeline

    opts = dict(zip(settings[::2], settings[1::2], strict=True))
    config = SegmentConfig(
        teacher="clipseg", weights={"clipseg": clipseg}, threshold=float(opts["--threshold"]),
        render=RenderSettings(int(opts["--views"]), int(opts["--resolution"])), points=int(opts["--points"]),
        epochs=int(opts["--epochs"]), cache_dir=tmp / "stage_cache", device="cpu",
    )  # fmt: skip
    p = Pipeline(config, verbose=False)
    times = {}
    t = time.perf_counter()
    _ = p.teacher
    times["teacher load (once per process)"] = time.perf_counter() - t
    parts = PartList.parse(PARTS)
    t = time.perf_counter()
    shape = p.load(shape_path)
    times["load"] = time.perf_counter() - t
    t = time.perf_counter()
    views = p.render(shape)
    times["render"] = time.perf_counter() - t
    t = time.perf_counter()
    detections = p.teacher.detect(views, list(parts.asked), None)
    times["teacher"] = time.perf_counter() - t
    t = time.perf_counter()
    knowledge = p.lift(views, detections, parts)
    times["lift"] = time.perf_counter() - t
    t = time.perf_counter()
    labels = p.label(shape, knowledge, None, teacher_name=p.teacher.name)
    times["distill + predict"] = time.perf_counter() - t
    t = time.perf_counter()
    from partdistill_cli.pipeline import TeachResult

    p.result(shape, labels, TeachResult(None, [], knowledge, p.teacher.name), None, shape_path).save(tmp / "stage_out")
    times["write"] = time.perf_counter() - t
    return times


def ray_startup(clipseg: str, tmp: Path) -> float:
    """Seconds from nothing to a local Ray of 2 CPUs with its CLIPSeg teacher actors (one per CPU) ready."""
    from partdistill_cli.config import SegmentConfig
    from partdistill_cli.parallel import RayRunner

    config = SegmentConfig(teacher="clipseg", weights={"clipseg": clipseg}, cache_dir=tmp / "ray_cache", device="cpu")
    started = time.perf_counter()
    with RayRunner(config, workers=2):
        ready = time.perf_counter() - started
    return ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", type=int, default=20, help="procedural shapes to segment")
    parser.add_argument("--views", type=int, default=3, help="views per shape (segment --views)")
    parser.add_argument("--resolution", type=int, default=256, help="view size (segment --resolution)")
    parser.add_argument("--points", type=int, default=2048, help="surface samples (segment --points)")
    parser.add_argument("--epochs", type=int, default=1, help="forward epochs (segment --epochs; backward: half)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma list of {', '.join(MODES)}")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(unknown)}")

    import torch
    from bench_teachers import build_clipseg
    from rich.console import Console
    from rich.table import Table

    from partdistill_cli.progress import seconds_text

    console = Console(width=130)
    settings = ["--views", str(args.views), "--resolution", str(args.resolution), "--points", str(args.points),
                "--epochs", str(args.epochs), "--threshold", "0.5"]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp_name:
        tmp = Path(tmp_name)
        t = time.perf_counter()
        clipseg = build_clipseg(tmp / "clipseg")["clipseg"]
        console.print(f"real-size CLIPSeg (random weights) built in {time.perf_counter() - t:.0f} s")
        shapes = make_shapes(tmp / "shapes", args.shapes)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        common = ["--parts", PARTS, "--teacher", "clipseg", "--clipseg", clipseg, "--device", "cpu", *settings]
        results = {}
        for mode in modes:
            out, cache = tmp / f"out_{mode}", tmp / f"cache_{mode}"
            if MODES[mode] is None:
                seconds = sum(
                    run(["segment", str(p), *common, "--out", str(out), "--cache-dir", str(cache)], env) for p in shapes
                )
            else:
                seconds = run(["segment", str(tmp / "shapes"), *common, "--out", str(out), "--cache-dir", str(cache),
                               *MODES[mode]], env)  # fmt: skip
            results[mode] = seconds
            console.print(f"{mode}: {len(shapes)} shapes in {seconds_text(seconds)}")
            shutil.rmtree(cache, ignore_errors=True)
        stages = stage_times(shapes[0], settings, clipseg, tmp)
        startup = ray_startup(clipseg, tmp) if any(m.startswith("workers") for m in modes) else None

    threads = torch.get_num_threads()
    console.print(
        f"segment, {len(shapes)} procedural shapes, real-size CLIPSeg (random weights) on CPU, {os.cpu_count()} "
        f"cores, {threads} torch thread(s) per process; {' '.join(settings)}"
    )
    table = Table()
    for col in ("mode", "wall time", "shapes / min", "s / shape"):
        table.add_column(col, justify="right" if col != "mode" else "left")
    for mode, seconds in results.items():
        table.add_row(mode, seconds_text(seconds), f"{len(shapes) * 60 / seconds:.1f}", f"{seconds / len(shapes):.2f}")
    console.print(table)
    stage_table = Table(title=f"one shape's stages in one process ({shapes[0].name})")
    stage_table.add_column("stage")
    stage_table.add_column("seconds", justify="right")
    for stage, seconds in stages.items():
        stage_table.add_row(stage, f"{seconds:.3f}")
    console.print(stage_table)
    if startup is not None:
        console.print(f"Ray start-up (local Ray of 2 CPUs + its 2 CLIPSeg actors ready): {startup:.1f} s")
        if "batch" in results:
            for mode in ("workers1", "workers2"):
                if mode in results:
                    per_shape = (results[mode] - results["batch"] - startup) / len(shapes)
                    console.print(f"{mode}: {per_shape:+.2f} s per shape against the batch, start-up excluded")


if __name__ == "__main__":
    main()
