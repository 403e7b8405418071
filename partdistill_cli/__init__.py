"""partdistill: zero-shot 3D part segmentation by distilling 2D vision-language knowledge (PartDistill).

The Python API (see `partdistill_cli.api`): `Segmenter`, `segment`, `SegmentConfig`, `RenderSettings` and the
result type `SegmentResult`. They are imported on first use, so that `import partdistill_cli` (and the command
line's start) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = ("RenderSettings", "SegmentConfig", "SegmentResult", "Segmenter", "segment")

if TYPE_CHECKING:
    from partdistill_cli.api import RenderSettings, SegmentConfig, Segmenter, SegmentResult, segment


def __getattr__(name: str) -> Any:
    if name in _API:
        from partdistill_cli import api

        return getattr(api, name)
    raise AttributeError(f"module 'partdistill_cli' has no attribute {name!r}")


__all__ = ["RenderSettings", "SegmentConfig", "SegmentResult", "Segmenter", "__version__", "segment"]
