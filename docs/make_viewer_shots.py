"""Screenshots of the HTML viewer: docs/viewer_chair.png and docs/viewer_partnet.png.

Segments (simulated teacher, `default` noise, full distillation) a procedural chair and the PartNet-Mobility
object 40147 of ../shared/data, writes their outputs as `segment --html --explain --preview` would, opens each
page in headless Chromium (Debian's chromium + chromium-driver, as the viewer's tests do), saves the screenshots
and prints page sizes and load times. Run from the repository root with the venv active:
    python docs/make_viewer_shots.py [--method full|vote]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import trimesh

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
SHOTS = ROOT / "docs"
OUT = Path(tempfile.mkdtemp(prefix="viewer-shots-"))
PNM_40147 = ROOT.parent / "shared" / "data" / "partnet_mobility" / "40147"

from partdistill_cli.datasets import load_dataset  # noqa: E402
from partdistill_cli.evaluate import face_areas  # noqa: E402
from partdistill_cli.outputs import write_segment_outputs  # noqa: E402
from partdistill_cli.pipeline import RenderSettings, teach  # noqa: E402
from partdistill_cli.preview import explain_sheet  # noqa: E402
from partdistill_cli.procedural import generate  # noqa: E402
from partdistill_cli.shapes import load_shape  # noqa: E402
from partdistill_cli.teachers.simulated import SimulatedTeacher, load_noise  # noqa: E402

from browser import headless_chromium, move_mouse, open_viewer  # noqa: E402


def segment(input_path, shape, gt_faces, parts, category, method, other):
    settings = RenderSettings(n_views=8, resolution=320)
    teacher = SimulatedTeacher(gt_faces, load_noise("default"), shape_seed=0)
    res = teach(shape, teacher, parts, settings, category, other=other)
    if method == "vote":
        from partdistill_cli.knowledge import face_labels_from_points
        from partdistill_cli.vote import vote

        labels = vote(res.knowledge, shape.points, fill=True)
        labels.face_labels = face_labels_from_points(shape, labels.probs)
    else:
        from partdistill_cli.student import DistillConfig, distill

        labels = distill([(shape, res.knowledge)], DistillConfig(), mode="full").predict(shape, knowledge=res.knowledge)
    with tempfile.TemporaryDirectory() as tmp:
        explain_sheet(res.views, res.detections, labels, res.knowledge.parts, Path(tmp) / "e.png")
        explain = (Path(tmp) / "e.png").read_bytes()
    meta = {
        "teacher": "simulated (default noise)",
        "method": method,
        "category": category,
        "render": settings.to_dict(),
    }
    write_segment_outputs(
        input_path, shape, labels, OUT, overwrite=True, preview=True, meta=meta, html=True, explain=explain
    )
    area = face_areas(shape)
    right = labels.face_labels == np.where(gt_faces < 0, len(parts), gt_faces)
    print(
        f"{input_path.name}: share of the surface labeled right (vs ground truth) {area[right].sum() / area.sum():.3f}"
    )


def shoot(driver, page: Path, name: str, hover_part: str) -> None:
    loads = []
    for _ in range(5):
        loads.append(open_viewer(driver, page)["loadMs"] / 1000)
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    print(
        f"{page.name}: {page.stat().st_size / 1e6:.2f} MB, load median {statistics.median(loads):.2f} s "
        f"(runs {', '.join(f'{t:.2f}' for t in loads)}), console errors: {errors}"
    )
    parts = driver.execute_script("return window.partdistillViewer.parts")
    # hover a visible element of `hover_part` so that the tooltip shows in the shot
    labels = driver.execute_script(
        "const d = JSON.parse(document.getElementById('pd-data').textContent);"
        "const b = atob(d.labels.b64); return Array.from(b, c => c.charCodeAt(0));"
    )
    want = parts.index(hover_part) + 1
    cands = [i for i, v in enumerate(labels) if v == want][::7][:400]
    pts = driver.execute_script("return arguments[0].map(i => window.partdistillViewer.project(i))", cands)
    vis = [p for p in pts if p["visible"]]
    if vis:
        p = vis[len(vis) // 2]
        move_mouse(driver, p["x"], p["y"])
        time.sleep(0.5)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))
    print(f"  wrote {SHOTS / (name + '.png')} ({len(parts)} legend entries)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="full", choices=["full", "vote"])
    args = ap.parse_args()
    try:
        shots(args)
    finally:
        shutil.rmtree(OUT, ignore_errors=True)


def shots(args):
    segment_both(args)
    from partdistill_cli.export import export_results

    written = export_results(OUT, "html", OUT / "export", overwrite=True)
    print("exported", [p.name for p in written])
    with headless_chromium(1400, 900) as driver:
        shoot(driver, OUT / "export" / "chair_3.viewer.html", "viewer_chair", "seat")
        shoot(driver, OUT / "export" / "storage_40147.viewer.html", "viewer_partnet", "door")


def segment_both(args):
    t = time.time()
    v, f, fl, parts = generate("chair", 3)
    chair_obj = OUT / "chair_3.obj"
    trimesh.Trimesh(v, f, process=False).export(chair_obj)
    shape = load_shape(chair_obj, n_points=4096)
    segment(chair_obj, shape, fl, parts, "chair", args.method, other=False)
    print(f"chair segmented in {time.time() - t:.0f} s")

    t = time.time()
    item = load_dataset(PNM_40147, "partnet-mobility", n_points=4096)[0]
    obj_path = OUT / "storage_40147.obj"
    trimesh.Trimesh(item.shape.to_original(item.shape.vertices), item.shape.faces, process=False).export(obj_path)
    shape = load_shape(obj_path, n_points=4096)
    assert len(shape.faces) == len(item.face_labels)
    segment(obj_path, shape, item.face_labels, item.parts, item.category, args.method, other=True)
    print(f"{item.name} ({item.category}, parts {item.parts}) segmented in {time.time() - t:.0f} s")


if __name__ == "__main__":
    main()
