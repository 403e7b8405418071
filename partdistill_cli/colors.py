"""Part colors: one palette for every picture and colored file, so a part has the same color everywhere."""

from __future__ import annotations

import colorsys

import numpy as np

from partdistill_cli.parts import PartList

# Part colors, index = part index. The first nine are matplotlib's "tab10" without its grey (grey marks
# unlabeled), then their light variants ("tab20"), darker tones ("tab20b") and a yellow: the first colors,
# which shapes with few parts use, are the most distinct.
PALETTE: list[tuple[int, int, int]] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (188, 189, 34),
    (23, 190, 207),
    (174, 199, 232),
    (255, 187, 120),
    (152, 223, 138),
    (255, 152, 150),
    (197, 176, 213),
    (196, 156, 148),
    (247, 182, 210),
    (219, 219, 141),
    (158, 218, 229),
    (57, 59, 121),
    (99, 121, 57),
    (140, 109, 49),
    (132, 60, 57),
    (123, 65, 115),
    (255, 217, 47),
]
UNLABELED_COLOR: tuple[int, int, int] = (160, 160, 160)

# The background part (`parts.BACKGROUND_PART`, the surface no listed part claims) is drawn in a pale neutral,
# so the named parts stand out; it stays distinct from the darker grey of unlabeled elements.
OTHER_COLOR: tuple[int, int, int] = (222, 215, 200)


def part_colors(parts: list[str]) -> np.ndarray:
    """(C, 3) uint8 RGB colors of the C `parts`: `PALETTE` first, then evenly spread hues for any further parts;
    the background part (the last name, when it is `BACKGROUND_PART`) in `OTHER_COLOR`."""
    n_parts = len(parts)
    colors = list(PALETTE[:n_parts])
    for i in range(len(colors), n_parts):
        # Golden-ratio hue steps keep consecutive extra colors far apart; alternating value separates the
        # colors that land on similar hues after many steps.
        hue = (i * 0.618033988749895) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95 if i % 2 else 0.65)
        colors.append((int(r * 255), int(g * 255), int(b * 255)))
    if n_parts and PartList.of_names(parts).background:
        colors[-1] = OTHER_COLOR
    return np.asarray(colors, dtype=np.uint8).reshape(n_parts, 3)


def colors_of(labels: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """(M, 3) uint8 color of each of M labels (index into the (C, 3) `colors`; -1 -> `UNLABELED_COLOR`)."""
    lut = np.vstack([np.asarray(colors, dtype=np.uint8).reshape(-1, 3), np.asarray(UNLABELED_COLOR, np.uint8)])
    # Label -1 indexes the last row, which is the unlabeled color.
    return lut[np.asarray(labels, dtype=np.int64)]
