"""A segment result as one self-contained web page (`NAME.viewer.html`), and an index page over a folder of them.

The page needs nothing but a browser with WebGL: three.js (vendored, `assets/viewer/three.min.js`, rebuilt by
`scripts/build_viewer_assets.sh`), the viewer script (`assets/viewer/viewer.js`) and the geometry are all inlined.
Geometry travels as base64 little-endian buffers inside a JSON block: float32 positions in the input's
coordinates, uint16/uint32 triangle indices (meshes), uint8/uint16 labels stored as label + 1 (0 = unlabeled),
uint8 confidences (value * 255). The page shows the shape with orbit/zoom/pan, a legend that toggles parts and
gives each part's share of the surface (meshes: area; clouds: points), the part and confidence under the
pointer, a part-colour / confidence heat-map switch, and the `--explain` sheet beside the shape when given.

`index.html` (export of a folder of results) is a grid of thumbnails, one per result, each linking to its page.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from partdistill_cli import __version__
from partdistill_cli.console import counted
from partdistill_cli.outputs import UNLABELED_COLOR, SegmentResult

VIEWER_SUFFIX = ".viewer.html"
INDEX_NAME = "index.html"
UNLABELED_NAME = "(unlabeled)"
THUMBNAIL_WIDTH = 360
ASSETS = Path(__file__).resolve().parent / "assets" / "viewer"
_SLOT = re.compile(r"@@([A-Z_]+)@@")


@cache
def _asset(name: str) -> str:
    text = (ASSETS / name).read_text(encoding="utf-8")
    if name.endswith(".js") and "</script" in text.lower():
        raise RuntimeError(f"{ASSETS / name} contains '</script', which would end the page's inline script early")
    return text


def _fill(template: str, **slots: str) -> str:
    """`template` with every `@@NAME@@` replaced by `slots[NAME]`, in one pass (inserted text is not scanned
    again, so a part name or a script that happens to contain `@@X@@` stays as it is)."""
    return _SLOT.sub(lambda m: slots[m.group(1)], template)


def _buffer(array: np.ndarray, dtype: str) -> dict:
    """{"dtype": name, "b64": base64 of the array's little-endian bytes} for the page's `decode`."""
    a = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<"))
    return {"dtype": a.dtype.name, "b64": base64.b64encode(a.tobytes()).decode("ascii")}


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def legend_entries(result: SegmentResult) -> list[dict]:
    """One {"name", "color" [r, g, b], "share", "count"} per part, in part order, then one for unlabeled
    elements when there are any. `share` is the part's fraction of the surface area (meshes) or of the points
    (clouds); `count` its number of faces or points."""
    n_parts = len(result.parts)
    weights = result.element_weights()
    index = np.where(result.labels >= 0, result.labels, n_parts)
    area = np.bincount(index, weights=weights, minlength=n_parts + 1)
    count = np.bincount(index, minlength=n_parts + 1)
    total = float(weights.sum())
    colors = [*np.asarray(result.colors).astype(int).tolist(), list(UNLABELED_COLOR)]
    names = [*result.parts, UNLABELED_NAME]
    shown = range(n_parts + 1) if count[n_parts] else range(n_parts)
    return [
        {
            "name": names[i],
            "color": colors[i],
            "share": float(area[i] / total) if total > 0 else float(count[i] / max(len(index), 1)),
            "count": int(count[i]),
        }
        for i in shown
    ]


def viewer_data(result: SegmentResult, explain_png: bytes | None = None) -> dict:
    """The JSON document the page's script reads (see the module docstring for the buffers)."""
    n_parts = len(result.parts)
    xyz = result.original_vertices()
    stored = result.labels.astype(np.int64) + 1
    doc = {
        "name": result.name,
        "kind": result.kind,
        "parts": list(result.parts),
        "legend": legend_entries(result),
        "up": str(result.meta.get("render", {}).get("up_axis", "y")),
        "positions": _buffer(xyz, "float32"),
        "labels": _buffer(stored, "uint8" if n_parts < 255 else "uint16"),
        "confidence": _buffer(np.rint(np.clip(result.confidence, 0.0, 1.0) * 255), "uint8"),
        "explain": _data_url(explain_png) if explain_png is not None else None,
    }
    if result.kind == "mesh":
        doc["indices"] = _buffer(result.shape.faces.reshape(-1), "uint16" if len(xyz) <= 65536 else "uint32")
    return doc


def _script_json(doc: dict) -> str:
    """JSON safe inside a <script> element: every '<' escaped, so no '</script>' or '<!--' can appear."""
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def _summary(result: SegmentResult) -> str:
    what = counted(len(result.labels), "face" if result.kind == "mesh" else "point")
    made = [f"{k} {result.meta[k]}" for k in ("teacher", "method") if result.meta.get(k)]
    return " · ".join([result.kind, what, counted(len(result.parts), "part"), *made])


def viewer_html(result: SegmentResult, explain_png: bytes | None = None) -> str:
    """The self-contained viewer page of `result`; `explain_png` (the bytes of a `NAME.explain.png` sheet), when
    given, is shown beside the shape."""
    return _fill(
        _asset("viewer.html"),
        VERSION=html.escape(__version__),
        TITLE=html.escape(f"{result.name}: {counted(len(result.parts), 'part')} (partdistill)"),
        NAME=html.escape(result.name),
        SUMMARY=html.escape(_summary(result)),
        SHARE_OF="surface" if result.kind == "mesh" else "points",
        DATA=_script_json(viewer_data(result, explain_png)),
        THREE=_asset("three.min.js"),
        APP=_asset("viewer.js"),
    )


def viewer_path(out_dir: Path, name: str) -> Path:
    """Where the page of result `name` goes in `out_dir`."""
    return Path(out_dir) / f"{name}{VIEWER_SUFFIX}"


def beside_result(result: SegmentResult, suffix: str) -> Path | None:
    """The file `NAME<suffix>` next to the result's `NAME.labels.json`, if the result was read from disk and
    the file is there (e.g. `.explain.png` or `.preview.png` written by the same `segment` call)."""
    if result.path is None:
        return None
    path = result.path.parent / f"{result.name}{suffix}"
    return path if path.is_file() else None


def explain_png_of(result: SegmentResult) -> bytes | None:
    """The bytes of the `NAME.explain.png` beside the result, or None."""
    path = beside_result(result, ".explain.png")
    return path.read_bytes() if path is not None else None


def thumbnail_png(result: SegmentResult, width: int = THUMBNAIL_WIDTH) -> bytes:
    """PNG bytes of a thumbnail `width` pixels wide: the `NAME.preview.png` beside the result, shrunk, or, when
    there is none, a 3-view preview rendered now."""
    from PIL import Image

    path = beside_result(result, ".preview.png")
    if path is not None:
        with Image.open(path) as im:
            image = im.convert("RGB")
    else:
        from partdistill_cli.preview import render_preview

        image, _ = render_preview(result.shape, result.to_labels(), n_views=3, resolution=width // 3)
    if image.width > width:
        image = image.resize((width, max(1, round(image.height * width / image.width))), Image.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


@dataclass
class IndexEntry:
    """One card of the index page: the result, its page's file name (relative link), a PNG thumbnail."""

    result: SegmentResult
    page: str
    thumbnail: bytes


def index_html(entries: list[IndexEntry], title: str) -> str:
    """The index page: a grid of cards (thumbnail, name, size, parts with their colours), each linking to its
    result's viewer page by a relative link, so the folder can be moved or shared as a whole."""
    cards = []
    for e in entries:
        r = e.result
        chips = "".join(
            f'<span class="chip"><i style="background:rgb({",".join(map(str, p["color"]))})"></i>'
            f"{html.escape(p['name'])} {100 * p['share']:.0f}%</span>"
            for p in legend_entries(r)
        )
        href = html.escape(e.page, quote=True)
        cards.append(
            f'<a class="card" href="{href}"><img src="{_data_url(e.thumbnail)}" alt="{html.escape(r.name)}">'
            f'<b>{html.escape(r.name)}</b><small>{html.escape(_summary(r))}</small><div class="chips">{chips}</div></a>'
        )
    return _fill(
        _asset("index.html"),
        VERSION=html.escape(__version__),
        TITLE=html.escape(title),
        COUNT=str(len(entries)),
        CARDS="\n".join(cards),
    )


def folder_index_html(results: list[SegmentResult], title: str) -> str:
    """The index page of `results` whose viewer pages lie in the same folder as the index (relative links);
    thumbnails from `thumbnail_png`."""
    entries = [IndexEntry(r, viewer_path(Path("."), r.name).name, thumbnail_png(r)) for r in results]
    return index_html(entries, title)
