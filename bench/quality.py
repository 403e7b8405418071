"""The quality matrix: every labeled set x noise x protocol, vote / vote-fill / forward / full, one markdown table.

    OMP_NUM_THREADS=2 python bench/quality.py                         # the whole matrix (about 1-2 h on 2 cores)
    python bench/quality.py --sets pnm --noises default --protocols per-shape
    python bench/quality.py --student-seeds 0,1,2,3 --sets snp-v0    # seed spread of the student
    python bench/quality.py --student agreement=ratio                # a student setting changed (a sweep point)

Runs `partdistill_cli.evaluate.run_evaluation` (what `partdistill evaluate` runs) with the simulated teacher.
Noises: the presets `default` and `harsh`, and their box versions (`default-box`, `harsh-box`: the same noise with
boxes instead of masks), or any JSON file. Sets: ShapeNetPart v0_normal (`snp-v0`) and PointTree (`snp-pt`),
PartNet-Mobility (`pnm`), the Genesis bottle (`bottle`), and `procedural` (every generator category,
`--per-category` shapes each). For each row it prints the mean over categories of the point mIoU, the student's
margins, the face-level mIoU of meshes, and the small-part line: mean per-part IoU over (shape, part) pairs whose
part covers under 2% of the ground-truth surface. Reports are written as JSON under `--out`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = {
    "snp-v0": DATA / "shapenetpart_v0_normal",
    "snp-pt": DATA / "shapenetpart_pointtree",
    "pnm": DATA / "partnet_mobility",
    "bottle": DATA / "partnet_mobility_genesis",
    "procedural": None,
}
NOISES = ("default", "harsh", "default-box", "harsh-box")
METHODS = ("vote", "vote-fill", "forward", "full")
SMALL = 0.02


def load_set(name: str, per_category: int, n_points: int, seed: int):
    if name == "procedural":
        from partdistill_cli import procedural

        return procedural.procedural_dataset(None, per_category, seed, n_points)
    from partdistill_cli.datasets import load_dataset

    path = SETS[name]
    if not path.exists():
        sys.exit(f"{path} is absent: the ../shared data folder must be beside this checkout")
    return load_dataset(path, "auto", None, None, n_points, seed)


def noise_config(spec: str):
    from partdistill_cli.teachers.simulated import load_noise

    if spec.endswith("-box"):
        return replace(load_noise(spec[: -len("-box")]), box=True)
    return load_noise(spec)


def noise_label(spec: str) -> str:
    """A file-name-safe name of a noise spec: the preset name, or a JSON file's stem (with its `-box` suffix)."""
    box = spec.endswith("-box")
    base = spec[: -len("-box")] if box else spec
    label = Path(base).stem if base.endswith(".json") else Path(base).name
    return label + ("-box" if box else "")


def small_part_ious(report: dict, method: str) -> list[float]:
    out = []
    for r in report["results"]:
        if r["method"] != method:
            continue
        for s in r["shapes"]:
            for part, share in s["part_share"].items():
                if 0 < share < SMALL:
                    out.append(s["part_iou"][part])
    return out


def run_cell(data, noise: str, protocol: str, seed: int, student: dict, methods: list[str]) -> dict:
    from partdistill_cli.evaluate import EvalConfig, run_evaluation
    from partdistill_cli.pipeline import RenderSettings

    config = EvalConfig(
        list(methods), noise_config(noise), noise, RenderSettings(), protocol, seed, "auto", dict(student)
    )
    return run_evaluation(data, config)


def parse_student(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = json.loads(value) if value[:1] in "[{0123456789-tfn" else value
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--noises", default=",".join(NOISES))
    ap.add_argument("--protocols", default="per-shape,category")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seeds", default="0", help="evaluation seeds (sampling, teacher noise, student); comma list")
    ap.add_argument(
        "--student-seeds",
        default=None,
        help="vary only the student's seed (same knowledge); with several, cells are means and the spread is shown",
    )
    ap.add_argument("--per-category", type=int, default=3, help="procedural shapes per category")
    ap.add_argument("--points", type=int, default=2048, help="surface samples per mesh")
    ap.add_argument("--student", nargs="*", default=[], help="student settings key=value (DistillConfig fields)")
    ap.add_argument("--out", type=Path, default=Path("bench_out/quality"))
    ap.add_argument("--tag", default="", help="name of this run's report files")
    args = ap.parse_args()

    methods = args.methods.split(",")
    student = parse_student(args.student)
    runs = [(int(s), student) for s in args.seeds.split(",")]
    if args.student_seeds:
        runs = [(runs[0][0], {**student, "seed": int(s)}) for s in args.student_seeds.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    header = ["noise", "protocol", "set", "shapes", *methods]
    if "full" in methods and "vote-fill" in methods:
        header.append("full − vote-fill")
    if "full" in methods and "forward" in methods:
        header.append("full − forward")
    header += [f"face {m}" for m in ("vote-fill", "full") if m in methods]
    header += [f"small {m}" for m in ("vote-fill", "full") if m in methods]
    if len(runs) > 1:
        header.append("seed spread full")
    rows = []
    started = time.perf_counter()
    for set_name in args.sets.split(","):
        cache: dict[int, list] = {}
        for noise in args.noises.split(","):
            for protocol in args.protocols.split(","):
                per_seed = []
                for seed, settings in runs:
                    data = cache.setdefault(seed, load_set(set_name, args.per_category, args.points, seed))
                    t0 = time.perf_counter()
                    report = run_cell(data, noise, protocol, seed, settings, methods)
                    report["config"]["data"] = set_name
                    report["seconds"] = time.perf_counter() - t0
                    tag = f"s{seed}" + (f"-ss{settings['seed']}" if "seed" in settings else "")
                    name = f"{args.tag + '-' if args.tag else ''}{set_name}-{noise_label(noise)}-{protocol}-{tag}.json"
                    (args.out / name).write_text(json.dumps(report))
                    per_seed.append(report)
                    print(f"  [{time.perf_counter() - started:7.0f} s] {set_name} {noise_label(noise)} {protocol} {tag}: "
                          + ", ".join(f"{m} {report['summary'][m]['mean_over_categories'] * 100:.1f}" for m in methods),
                          file=sys.stderr, flush=True)  # fmt: skip
                rows.append(row_of(per_seed, noise_label(noise), protocol, set_name, methods, len(data)))
    print(f"\nmIoU ×100, mean over categories; {len(runs)} run(s) per cell; {time.perf_counter() - started:.0f} s\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def row_of(reports: list[dict], noise: str, protocol: str, set_name: str, methods: list[str], n: int) -> list[str]:
    def mean(method: str, key: str = "mean_over_categories") -> float | None:
        vals = [r["summary"][method].get(key) for r in reports]
        return None if any(v is None for v in vals) else 100 * statistics.fmean(vals)

    def fmt(x: float | None) -> str:
        return "–" if x is None else f"{x:.1f}"

    row = [noise, protocol, set_name, str(n), *(fmt(mean(m)) for m in methods)]
    if "full" in methods and "vote-fill" in methods:
        row.append(f"{mean('full') - mean('vote-fill'):+.1f}")
    if "full" in methods and "forward" in methods:
        row.append(f"{mean('full') - mean('forward'):+.1f}")
    row += [fmt(mean(m, "face_mean_over_categories")) for m in ("vote-fill", "full") if m in methods]
    for m in ("vote-fill", "full"):
        if m in methods:
            vals = [v for r in reports for v in small_part_ious(r, m)]
            row.append(f"{100 * np.mean(vals):.1f} ({len(vals) // len(reports)})" if vals else "–")
    if len(reports) > 1:
        fulls = [100 * r["summary"]["full"]["mean_over_categories"] for r in reports]
        row.append(f"{max(fulls) - min(fulls):.1f}")
    return row


if __name__ == "__main__":
    main()
