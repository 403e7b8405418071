"""partdistill: zero-shot 3D part segmentation by distilling 2D vision-language knowledge (PartDistill)."""

__version__ = "0.1.0"
