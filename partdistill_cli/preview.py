"""Pictures of a segmentation: a preview sheet of the labeled shape, and an explain sheet that puts the
teacher's raw 2D detections beside the final labels, view by view.

Both render with our own renderer (`partdistill_cli.render`): each pixel takes the color of the label of the
face or point seen there, shaded by the renderer's grey image so that the 3D form stays readable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from partdistill_cli.colors import UNLABELED_COLOR, colors_of, part_colors
from partdistill_cli.console import counted
from partdistill_cli.io_utils import atomic_path
from partdistill_cli.knowledge import Detection, Labels
from partdistill_cli.render.base import BACKGROUND, Views
from partdistill_cli.shapes import Shape

UNLABELED_NAME = "(unlabeled)"
TEXT = (30, 30, 30)
PAD = 8


def _font(size: int = 14):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def primitive_labels(views: Views, labels: Labels) -> np.ndarray:
    """The labels `views.ids` index: (F,) per face for mesh renderings, (N,) per point for clouds."""
    if views.id_kind == "face":
        if labels.face_labels is None:
            raise ValueError("a mesh rendering needs per-face labels (Labels.face_labels)")
        return np.asarray(labels.face_labels, dtype=np.int64)
    return np.asarray(labels.point_labels, dtype=np.int64)


def label_images(views: Views, prim_labels: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """(V, H, W, 3) uint8: each pixel in its part's color, shaded by `views.rgb`, part borders darkened.

    `prim_labels` (F,) or (N,) int part per primitive (-1 unlabeled), `colors` (C, 3) uint8; background white.
    """
    part = views.part_images(prim_labels).astype(np.int64)
    hit = views.ids >= 0
    base = colors_of(np.where(hit, part, -1), colors).astype(np.float32)
    grey = views.rgb[..., 0].astype(np.float32)
    # The renderer's grey runs from 40 (grazing) to 230 (facing): map it to a brightness factor that keeps
    # dark colors distinguishable.
    factor = 0.45 + 0.55 * np.clip((grey - 40.0) / 190.0, 0.0, 1.0)
    img = base * factor[..., None]
    # A pixel whose right or lower neighbour shows another part (or the background) lies on a border.
    key = np.where(hit, part, -2)
    edge = np.zeros_like(hit)
    edge[:, :, :-1] |= key[:, :, :-1] != key[:, :, 1:]
    edge[:, :-1, :] |= key[:, :-1, :] != key[:, 1:, :]
    img[edge & hit] *= 0.55
    img[~hit] = BACKGROUND
    return np.clip(img, 0, 255).astype(np.uint8)


def _legend_entries(parts: list[str], prim_labels: np.ndarray, share_labels: np.ndarray, colors: np.ndarray):
    """(name, color, share) for every part, plus an unlabeled entry if any primitive is unlabeled."""
    n = max(len(share_labels), 1)
    counts = np.bincount(share_labels[share_labels >= 0], minlength=len(parts))
    entries = [(p, tuple(int(v) for v in colors[i]), counts[i] / n) for i, p in enumerate(parts)]
    if (prim_labels < 0).any() or (share_labels < 0).any():
        entries.append((UNLABELED_NAME, UNLABELED_COLOR, float((share_labels < 0).sum()) / n))
    return entries


def _draw_legend(draw, entries, x0: int, y0: int, width: int, font, line_h: int, dry_run: bool = False) -> int:
    """Lay the entries out in rows within `width` pixels from (x0, y0); returns the height used."""
    x, y = x0, y0
    sw = line_h - 6
    for name, color, share in entries:
        text = f"{name}  {100 * share:.0f}%" if share is not None else name
        w = sw + 6 + int(draw.textlength(text, font=font)) + 18
        if x > x0 and x + w > x0 + width:
            x, y = x0, y + line_h
        if not dry_run:
            draw.rectangle([x, y + 3, x + sw, y + 3 + sw], fill=color, outline=TEXT)
            draw.text((x + sw + 6, y + 2), text, fill=TEXT, font=font)
        x += w
    return y + line_h - y0


def _legend_height(entries, width: int, font, line_h: int) -> int:
    from PIL import Image, ImageDraw

    return _draw_legend(ImageDraw.Draw(Image.new("RGB", (1, 1))), entries, 0, 0, width, font, line_h, True)


def render_preview(
    shape: Shape,
    labels: Labels,
    n_views: int = 6,
    resolution: int = 384,
    up_axis: str = "y",
    title: str | None = None,
):
    """Render the labeled shape from `n_views` cameras into one sheet with a legend.

    Returns (PIL RGB image, metadata {"size": (w, h), "legend": [names], "views": n}). The views are laid out
    3 to a row, each `resolution` pixels square; the legend lists every part (with its share of the shape's
    sample points, i.e. of its surface for meshes), plus "(unlabeled)" when some face or point has no label.
    """
    from PIL import Image, ImageDraw

    from partdistill_cli.cameras import view_set
    from partdistill_cli.render import render

    if n_views < 1:
        raise ValueError(f"a preview needs at least 1 view, got {n_views}")
    colors = part_colors(labels.parts)
    views = render(shape, view_set(n_views, resolution, up_axis=up_axis))
    prim = primitive_labels(views, labels)
    tiles = label_images(views, prim, colors)
    cols = min(n_views, 3)
    rows = -(-n_views // cols)
    font, title_font = _font(14), _font(16)
    line_h = 22
    width = cols * resolution
    entries = _legend_entries(list(labels.parts), prim, np.asarray(labels.point_labels), colors)
    title_h = 28
    legend_h = _legend_height(entries, width - 2 * PAD, font, line_h) + 2 * PAD
    height = title_h + rows * resolution + legend_h
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    for v in range(n_views):
        r, c = divmod(v, cols)
        sheet.paste(Image.fromarray(tiles[v]), (c * resolution, title_h + r * resolution))
    draw = ImageDraw.Draw(sheet)
    kind = counted(len(shape.faces), "face") if shape.is_mesh else counted(shape.n_points, "point")
    draw.text(
        (PAD, 5), title or f"{shape.name}: {counted(len(labels.parts), 'part')}, {kind}", fill=TEXT, font=title_font
    )
    _draw_legend(draw, entries, PAD, title_h + rows * resolution + PAD, width - 2 * PAD, font, line_h)
    meta = {"size": sheet.size, "legend": [e[0] for e in entries], "views": n_views}
    return sheet, meta


def preview_sheet(shape: Shape, labels: Labels, path: Path, n_views: int = 6, resolution: int = 384) -> dict:
    """Write the preview sheet of `render_preview` to `path` (PNG, atomically); returns its metadata."""
    image, meta = render_preview(shape, labels, n_views, resolution)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return meta


def _detection_overlay(rgb: np.ndarray, detections: list[Detection], colors: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: the view's image with each mask blended in its part's color (boxes are drawn later)."""
    img = rgb.astype(np.float32)
    for d in sorted(detections, key=lambda d: d.score):
        if d.mask is not None:
            m = np.asarray(d.mask, dtype=bool)
            img[m] = 0.45 * img[m] + 0.55 * colors[d.part].astype(np.float32)
    return img.astype(np.uint8)


def _ink_on(color: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on `color` (by its luma)."""
    luma = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
    return (0, 0, 0) if luma > 140 else (255, 255, 255)


def _mask_outline(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return mask & ~ndimage.binary_erosion(mask)


def explain_sheet(
    views: Views, detections: list[Detection], labels: Labels, parts: list[str], path: Path, tile: int = 320
) -> dict:
    """Write a PNG sheet (atomically) that shows, per view, the teacher's raw detections beside the final labels.

    Left column: the rendered view with every detection of that view in its part's color (masks filled and
    outlined, boxes outlined), each tagged "part score". Right column: the final labels seen from the same
    view. `views` are the renderings the teacher saw, `labels` the final segmentation of the same shape,
    `parts` the C part names. Renderings larger than `tile` pixels are shrunk to it. Returns {"size": (w, h), "views": V,
    "detections": count, "legend": [names]}.
    """
    from PIL import Image, ImageDraw

    colors = part_colors(parts)
    prim = primitive_labels(views, labels)
    finals = label_images(views, prim, colors)
    h, w = views.size
    scale = min(1.0, tile / max(h, w))  # shrink large renderings, never blow small ones up
    tw, th = round(w * scale), round(h * scale)
    font, small = _font(14), _font(12)
    line_h, header_h = 22, 26
    width = 2 * tw + 3 * PAD
    entries = _legend_entries(list(parts), prim, np.asarray(labels.point_labels), colors)
    entries = [(n, c, None) for n, c, _ in entries]
    legend_h = _legend_height(entries, width - 2 * PAD, font, line_h) + 2 * PAD
    row_h = th + header_h
    height = header_h + views.n_views * row_h + legend_h
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((PAD, 5), "teacher detections", fill=TEXT, font=font)
    draw.text((2 * PAD + tw, 5), "final labels", fill=TEXT, font=font)
    by_view: dict[int, list[Detection]] = {}
    for d in detections:
        if not 0 <= d.part < len(parts):
            raise ValueError(f"a detection names part {d.part}, but there are {len(parts)} parts")
        by_view.setdefault(int(d.view), []).append(d)
    for v in range(views.n_views):
        y0 = header_h + v * row_h
        dets = by_view.get(v, [])
        draw.text((PAD, y0 + 4), f"view {v}: {len(dets)} detection(s)", fill=TEXT, font=small)
        left = Image.fromarray(_detection_overlay(views.rgb[v], dets, colors)).resize((tw, th), Image.BILINEAR)
        right = Image.fromarray(finals[v]).resize((tw, th), Image.NEAREST)
        ty = y0 + header_h - 4
        sheet.paste(left, (PAD, ty))
        sheet.paste(right, (2 * PAD + tw, ty))
        for d in sorted(dets, key=lambda d: d.score):
            color = tuple(int(c) for c in colors[d.part])
            if d.mask is not None:
                m = np.asarray(d.mask, dtype=bool)
                if not m.any():
                    continue
                ys, xs = np.nonzero(_mask_outline(m))
                pts = np.stack([PAD + xs * scale, ty + ys * scale], axis=1)
                draw.point([tuple(p) for p in pts[:: max(1, len(pts) // 4000)]], fill=color)
                yy, xx = np.nonzero(m)
                anchor = (PAD + xx.min() * scale, ty + yy.min() * scale)
            else:
                x0, y0b, x1, y1 = (float(c) for c in d.box)
                draw.rectangle(
                    [PAD + x0 * scale, ty + y0b * scale, PAD + x1 * scale - 1, ty + y1 * scale - 1],
                    outline=color,
                    width=2,
                )
                anchor = (PAD + x0 * scale, ty + y0b * scale)
            text = f"{parts[d.part]} {d.score:.2f}"
            tx = min(max(anchor[0], PAD), PAD + tw - draw.textlength(text, font=small))
            tyy = min(max(anchor[1] - 14, ty), ty + th - 14)
            bbox = draw.textbbox((tx, tyy), text, font=small)
            draw.rectangle(bbox, fill=color)
            draw.text((tx, tyy), text, fill=_ink_on(color), font=small)
    _draw_legend(draw, entries, PAD, header_h + views.n_views * row_h + PAD, width - 2 * PAD, font, line_h)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return {
        "size": sheet.size,
        "views": views.n_views,
        "detections": len(detections),
        "legend": [e[0] for e in entries],
    }
