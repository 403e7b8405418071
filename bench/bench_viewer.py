"""HTML viewer benchmark (issue 12 targets): a 100k-face result's page stays under ~10 MB and opens in under 2 s
in headless Chromium on this machine. Prints medians of several runs.

The result is a procedural chair subdivided to 110,592 faces, labeled with its true parts and a random
confidence per face. Figures:
- page size (MB) and the time to build it in Python;
- load time in headless Chromium (SwiftShader WebGL on the CPU): the page's own clock from navigation start to
  its first frame on screen, and the wall time from `driver.get` until the page reports it is ready;
- one hover pick (ray cast against every visible face) at the centre of the view.

Needs chromium + chromedriver (Debian: apt-get install chromium chromium-driver) and selenium.
Usage: python bench/bench_viewer.py [--repeats 5] [--keep PAGE.html]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def chair_result(levels: int = 3):
    """A `SegmentResult` of the procedural chair (seed 0) with each face split in 4, `levels` times."""
    import trimesh

    from partdistill_cli.outputs import SegmentResult, part_colors
    from partdistill_cli.procedural import generate
    from partdistill_cli.shapes import from_mesh

    vertices, faces, labels, parts = generate("chair", 0)
    for _ in range(levels):
        # trimesh puts the 4 children of face i at 4i..4i+3.
        vertices, faces = trimesh.remesh.subdivide(vertices, faces)
        labels = np.repeat(labels, 4)
    shape = from_mesh(vertices, faces, n_points=2048, name="chair_100k")
    confidence = np.random.default_rng(0).uniform(0.3, 1.0, len(faces)).astype(np.float32)
    meta = {"teacher": "ground truth", "method": "none", "render": {"up_axis": "y"}}
    return SegmentResult("chair_100k", "mesh", shape, parts, part_colors(parts), labels, confidence, meta=meta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="also save the page here")
    args = parser.parse_args()

    from partdistill_cli.viewer import viewer_html

    from browser import NO_CHROMIUM, find_chromium, headless_chromium, open_viewer

    if find_chromium() is None:
        sys.exit(NO_CHROMIUM)
    result = chair_result()
    builds = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        page = viewer_html(result)
        builds.append(time.perf_counter() - t)
    data = page.encode("utf-8")
    print(f"result: {len(result.labels):,} faces, {len(result.shape.vertices):,} vertices, {len(result.parts)} parts")
    print(f"page size: {len(data) / 1e6:.2f} MB (target < 10 MB); built in {statistics.median(builds):.2f} s")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chair_100k.viewer.html"
        path.write_bytes(data)
        if args.keep:
            args.keep.write_bytes(data)
        loads, walls, picks = [], [], []
        with headless_chromium(1280, 800) as driver:
            open_viewer(driver, path)  # warm-up: the first load also starts the GPU process
            for _ in range(args.repeats):
                t = time.perf_counter()
                state = open_viewer(driver, path)
                walls.append(time.perf_counter() - t)
                if state["error"]:
                    sys.exit(f"the page failed: {state['error']}")
                loads.append(state["loadMs"] / 1000)
                picks.append(
                    driver.execute_script(
                        "const c = document.getElementById('pd-canvas').getBoundingClientRect();"
                        "const t = performance.now();"
                        "window.partdistillViewer.pickAt(c.left + c.width / 2, c.top + c.height / 2);"
                        "return performance.now() - t;"
                    )
                )
    print(
        f"load in headless chromium (1280x800, SwiftShader), median of {args.repeats}: "
        f"{statistics.median(loads):.2f} s to the first frame (page clock; target < 2 s), "
        f"{statistics.median(walls):.2f} s wall from driver.get to ready"
    )
    print(f"hover pick (ray cast over all faces): {statistics.median(picks):.0f} ms")


if __name__ == "__main__":
    main()
