"""Regenerate the README's pictures from the shipped sample chair (no model weights needed).

The 2D knowledge comes from the simulated teacher (the sample's ground truth corrupted with the `default`
noise), so the pictures show what the pipeline does with imperfect VLM output. `viewer.png` is a screenshot of
the chair's `--html` page in headless Chromium (skipped when chromium + chromedriver are not installed). Usage:
    python docs/make_figures.py [--method full]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from partdistill_cli.datasets import load_dataset
from partdistill_cli.pipeline import RenderSettings, teach
from partdistill_cli.preview import explain_sheet, preview_sheet
from partdistill_cli.render.base import contact_sheet
from partdistill_cli.teachers.simulated import SimulatedTeacher, load_noise

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent / "partdistill_cli" / "assets" / "samples" / "chair"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--method", choices=["vote-fill", "full"], default="full")
    args = parser.parse_args()
    item = load_dataset(SAMPLE, "labeled-mesh", n_points=4096)[0]
    teacher = SimulatedTeacher(item.primitive_labels, load_noise("default"), shape_seed=0)
    result = teach(item.shape, teacher, item.parts, RenderSettings(n_views=6, resolution=256), item.category)
    Image.fromarray(contact_sheet(result.views.rgb, columns=6)).save(HERE / "views.png")
    if args.method == "vote-fill":
        from partdistill_cli.knowledge import face_labels_from_points
        from partdistill_cli.vote import vote

        labels = vote(result.knowledge, item.shape.points, fill=True)
        labels.face_labels = face_labels_from_points(item.shape, labels.probs)
    else:
        from partdistill_cli.student import DistillConfig, distill

        labels = distill([(item.shape, result.knowledge)], DistillConfig(), mode="full").predict(
            item.shape, knowledge=result.knowledge
        )
    explain_sheet(result.views, result.detections, labels, item.parts, HERE / "explain.png")
    preview_sheet(item.shape, labels, HERE / "preview.png", n_views=3, resolution=256)
    gt = item.point_labels
    print(f"point accuracy vs ground truth: {np.mean(labels.point_labels == gt):.3f}")
    viewer_figure(item, labels)


def viewer_figure(item, labels) -> None:
    """docs/viewer.png: the chair's viewer page with the explain sheet beside it, the pointer over the seat."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    from partdistill_cli.outputs import make_result
    from partdistill_cli.viewer import viewer_html

    from browser import NO_CHROMIUM, find_chromium, headless_chromium, move_mouse, open_viewer

    if find_chromium() is None:
        print(f"skipped docs/viewer.png: {NO_CHROMIUM}")
        return
    result = make_result(SAMPLE / "chair_0.obj", item.shape, labels, {"teacher": "simulated", "method": "full"})
    with tempfile.TemporaryDirectory() as tmp, headless_chromium(1200, 640) as driver:
        page = Path(tmp) / "chair_0.viewer.html"
        page.write_text(viewer_html(result, (HERE / "explain.png").read_bytes()), encoding="utf-8")
        open_viewer(driver, page)
        seat = labels.parts.index("seat")
        faces = np.flatnonzero(labels.face_labels == seat).tolist()
        spots = driver.execute_script("return arguments[0].map(i => window.partdistillViewer.project(i))", faces)
        spot = next(p for p in spots if p["visible"])
        move_mouse(driver, spot["x"], spot["y"])
        time.sleep(0.3)
        driver.save_screenshot(str(HERE / "viewer.png"))


if __name__ == "__main__":
    main()
