"""The light pixel-level teacher: CLIPSeg dense probability maps per part prompt, thresholded into masks."""

from __future__ import annotations

import numpy as np

from partdistill_cli.knowledge import Detection
from partdistill_cli.render.base import Views
from partdistill_cli.teachers.prompts import DEFAULT_TEMPLATE, check_template, part_prompts
from partdistill_cli.teachers.specs import TEACHER_SPECS
from partdistill_cli.weights import identified, load_hub_model, resolve_hub, torch_device


class ClipSegTeacher:
    """CLIPSeg: one (view, prompt) pair per forward item; the sigmoid map, resized to the view, thresholded.

    Only pixels where the shape was rendered can belong to a mask. With `exclusive`, a pixel above the
    threshold for several parts goes to the part of highest probability only. A mask's score is its mean
    probability.

    Args:
        clipseg: Hub id or local directory (default $PARTDISTILL_CLIPSEG, else CIDAS/clipseg-rd64-refined).
        device: torch device; None picks CUDA when present, else CPU.
        mask_threshold: probability in [0, 1] above which a pixel belongs to a part's mask.
        exclusive: give each pixel to at most one part.
        template: prompt per part, with {part} and optionally {category}.
        batch_size: (view, prompt) pairs per forward pass.
    """

    kind = "mask"

    def __init__(
        self,
        clipseg: str | None = None,
        device: str | None = None,
        mask_threshold: float = TEACHER_SPECS["clipseg"].default_threshold,
        exclusive: bool = True,
        template: str = DEFAULT_TEMPLATE,
        batch_size: int = 8,
    ):
        from transformers import CLIPSegForImageSegmentation

        if not 0.0 <= mask_threshold <= 1.0:
            raise ValueError(f"mask_threshold must lie in [0, 1], got {mask_threshold}")
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        self.source = resolve_hub("clipseg", clipseg)
        self.mask_threshold = float(mask_threshold)
        self.exclusive = bool(exclusive)
        self.template = check_template(template)
        self.batch_size = int(batch_size)
        self.device = torch_device(device)
        self.processor, self.model = load_hub_model(
            "clipseg", self.source, CLIPSegForImageSegmentation, "clipseg", self.device
        )
        self.weights = {"clipseg": identified(self.source)}
        self.name = (
            f"clipseg(clipseg={self.weights['clipseg']},mask_threshold={self.mask_threshold},exclusive={self.exclusive},"
            f"template={self.template!r})"
        )

    def probabilities(self, images: np.ndarray, prompts: list[str]) -> np.ndarray:
        """(V, P, H, W) float32 probabilities of each prompt at each pixel of `images` (V, H, W, 3) uint8."""
        import torch
        import torch.nn.functional as F
        from PIL import Image

        n, h, w = images.shape[:3]
        pairs = [(v, p) for v in range(n) for p in range(len(prompts))]
        out = np.zeros((n, len(prompts), h, w), dtype=np.float32)
        pil = [Image.fromarray(im) for im in images]
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start : start + self.batch_size]
            enc = self.processor(
                text=[prompts[p] for _, p in chunk],
                images=[pil[v] for v, _ in chunk],
                padding=True,
                truncation=True,
                return_tensors="pt",
            )
            with torch.inference_mode():
                logits = self.model(**enc.to(self.device)).logits
            logits = logits.reshape(len(chunk), 1, *logits.shape[-2:]).float()  # a batch of one comes squeezed
            probs = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False).sigmoid()
            probs = probs[:, 0].cpu().numpy()
            for (v, p), prob in zip(chunk, probs, strict=True):
                out[v, p] = prob
        return out

    def detect(self, views: Views, parts: list[str], category: str | None = None) -> list[Detection]:
        probs = self.probabilities(views.rgb, part_prompts(parts, category, self.template))
        masks = (probs > self.mask_threshold) & (views.ids >= 0)[:, None]
        if self.exclusive:
            masks &= probs == probs.max(axis=1, keepdims=True)
        detections = []
        for v in range(views.n_views):
            for p in range(len(parts)):
                mask = masks[v, p]
                if mask.any():
                    score = float(np.clip(probs[v, p][mask].mean(), 0.0, 1.0))
                    detections.append(Detection(v, p, score, mask=mask))
        return detections
