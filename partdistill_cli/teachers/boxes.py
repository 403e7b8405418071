"""Box-level teachers: Grounding DINO (`gdino-boxes`) and OWLv2 (`owlv2-boxes`) from transformers.

Both turn each view's RGB image and one text prompt per part into scored XYXY pixel boxes. `GroundingDino` is
also the detector half of the `grounded-sam` teacher.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from partdistill_cli.knowledge import Detection
from partdistill_cli.render.base import Views
from partdistill_cli.teachers.prompts import DEFAULT_TEMPLATE, check_template, part_prompts, part_span
from partdistill_cli.teachers.specs import GDINO_BOX_THRESHOLD, TEACHER_SPECS
from partdistill_cli.weights import identified, load_hub_model, resolve_hub, torch_device

MIN_BOX_PX = 1.0


@dataclass
class ViewBoxes:
    """Boxes found in one view: boxes (M, 4) float64 XYXY pixels inside the image, scores (M,) float64 in
    [0, 1], parts (M,) int64 part indices."""

    boxes: np.ndarray
    scores: np.ndarray
    parts: np.ndarray


def finish_boxes(
    boxes, scores, parts, height: int, width: int, nms_iou: float, max_boxes: int | None = None
) -> ViewBoxes:
    """Clip (M, 4) torch boxes to the image, drop degenerate ones, suppress overlaps per part (NMS) and keep
    the `max_boxes` best (all when None)."""
    import torch
    from torchvision.ops import batched_nms

    boxes = boxes.detach().float().cpu()
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    scores = scores.detach().float().cpu().clamp(0, 1)
    parts = parts.detach().cpu().long()
    ok = ((boxes[:, 2] - boxes[:, 0]) >= MIN_BOX_PX) & ((boxes[:, 3] - boxes[:, 1]) >= MIN_BOX_PX)
    boxes, scores, parts = boxes[ok], scores[ok], parts[ok]
    keep = batched_nms(boxes, scores, parts, nms_iou) if len(boxes) else torch.zeros(0, dtype=torch.long)
    keep = keep[:max_boxes]  # batched_nms returns indices by decreasing score
    return ViewBoxes(
        boxes[keep].numpy().astype(np.float64),
        scores[keep].numpy().astype(np.float64),
        parts[keep].numpy().astype(np.int64),
    )


def _check_unit(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value}")
    return float(value)


def _check_max_boxes(max_boxes: int | None) -> int | None:
    if max_boxes is not None and max_boxes < 1:
        raise ValueError(f"max_boxes must be at least 1 (or None for no limit), got {max_boxes}")
    return max_boxes


def _check_batch(batch_size: int) -> int:
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    return int(batch_size)


def box_detections(found: list[ViewBoxes]) -> list[Detection]:
    return [
        Detection(v, int(p), float(s), box=b.copy())
        for v, vb in enumerate(found)
        for b, s, p in zip(vb.boxes, vb.scores, vb.parts, strict=True)
    ]


class _HubBoxDetector:
    """Settings and model loading shared by the open-vocabulary box detectors (Grounding DINO, OWLv2)."""

    def _setup(self, key, model_class, detector, device, box_threshold, nms_iou, template, batch_size, max_boxes):
        self.source = resolve_hub(key, detector)
        self.box_threshold = _check_unit("box_threshold", box_threshold)
        self.nms_iou = _check_unit("nms_iou", nms_iou)
        self.template = check_template(template)
        self.batch_size = _check_batch(batch_size)
        self.max_boxes = _check_max_boxes(max_boxes)
        self.device = torch_device(device)
        self.processor, self.model = load_hub_model(key, self.source, model_class, "detector", self.device)
        self.weights = {"detector": identified(self.source)}

    @property
    def settings(self) -> str:
        return (
            f"detector={self.weights['detector']},box_threshold={self.box_threshold},nms_iou={self.nms_iou},"
            f"max_boxes={self.max_boxes},template={self.template!r}"
        )


class GroundingDino(_HubBoxDetector):
    """Grounding DINO: all part prompts in one caption ("the leg of a chair. the seat of a chair."); a query's
    score for a part is its highest token probability over the part's own words; each query goes to its best
    part and is kept above `box_threshold`.

    Args:
        detector: Hub id or local directory (default $PARTDISTILL_GDINO, else IDEA-Research/grounding-dino-tiny).
        device: torch device; None picks CUDA when present, else CPU.
        box_threshold: minimum part score in [0, 1] of a kept box.
        nms_iou: boxes of one part overlapping more than this IoU are suppressed (the lower-scored one).
        template: prompt per part, with {part} and optionally {category}.
        batch_size: views per forward pass.
        max_boxes: keep at most this many boxes per view, best first (None: all); bounds SAM's work.
    """

    def __init__(
        self,
        detector: str | None = None,
        device: str | None = None,
        box_threshold: float = GDINO_BOX_THRESHOLD,
        nms_iou: float = 0.5,
        template: str = DEFAULT_TEMPLATE,
        batch_size: int = 2,
        max_boxes: int | None = None,
    ):
        from transformers import GroundingDinoForObjectDetection

        self._setup(
            "gdino", GroundingDinoForObjectDetection, detector, device, box_threshold, nms_iou, template, batch_size,
            max_boxes,
        )  # fmt: skip
        self.max_tokens = int(getattr(self.model.config, "max_text_len", 256))

    def captions(self, parts: list[str], category: str | None) -> list[tuple[str, np.ndarray, list[int]]]:
        """Captions covering all parts, each within the text length limit: (caption, token->part map (T,)
        int64 with -1 for tokens of no part's own words, the part indices it covers)."""
        prompts = [p.lower() for p in part_prompts(parts, category, self.template)]
        groups: list[list[int]] = [[]]
        for i in range(len(parts)):
            trial = groups[-1] + [i]
            if groups[-1] and len(self._tokens(". ".join(prompts[j] for j in trial) + ".")[0]) > self.max_tokens:
                groups.append([i])
            else:
                groups[-1] = trial
        out = []
        for group in groups:
            spans, text = [], ""
            for j in group:
                lo, hi = part_span(parts, category, self.template, j)
                spans.append((j, len(text) + lo, len(text) + hi))
                text += prompts[j] + ". "
            caption = text.strip()
            ids, offsets = self._tokens(caption)
            if len(ids) > self.max_tokens:
                raise ValueError(f"the prompt for part {parts[group[0]]!r} is longer than the detector's text limit")
            owner = np.full(len(ids), -1, dtype=np.int64)
            for j, lo, hi in spans:
                for t, (s, e) in enumerate(offsets):
                    if e > s and s < hi and e > lo:
                        owner[t] = j
            out.append((caption, owner, group))
        return out

    def _tokens(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        enc = self.processor.tokenizer(text, return_offsets_mapping=True)
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]

    def detect_boxes(self, images: np.ndarray, parts: list[str], category: str | None) -> list[ViewBoxes]:
        """Boxes per image of `images` (V, H, W, 3) uint8 RGB."""
        import torch
        from PIL import Image

        n, h, w = images.shape[:3]
        per_view: list[list[tuple]] = [[] for _ in range(n)]
        for caption, owner, group in self.captions(parts, category):
            part_tokens = torch.as_tensor(owner)
            for start in range(0, n, self.batch_size):
                batch = [Image.fromarray(im) for im in images[start : start + self.batch_size]]
                enc = self.processor(images=batch, text=[caption] * len(batch), return_tensors="pt")
                if enc["input_ids"].shape[1] != len(owner):
                    raise RuntimeError("the processor tokenized the caption differently from the part map")
                with torch.inference_mode():
                    out = self.model(**enc.to(self.device))
                probs = out.logits.sigmoid()[..., : len(owner)].float().cpu()  # (B, Q, T)
                part_scores = torch.full((*probs.shape[:2], len(parts)), -1.0)
                for j in group:
                    if bool((part_tokens == j).any()):  # a name the tokenizer drops entirely cannot score
                        part_scores[..., j] = probs[..., part_tokens == j].amax(dim=-1)
                best, label = part_scores.max(dim=-1)  # (B, Q)
                cx, cy, bw, bh = out.pred_boxes.float().cpu().unbind(-1)
                xyxy = torch.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h], -1)
                for b in range(len(batch)):
                    keep = best[b] > self.box_threshold
                    per_view[start + b].append((xyxy[b][keep], best[b][keep], label[b][keep]))
        return [
            finish_boxes(*(torch.cat(x) for x in zip(*found, strict=True)), h, w, self.nms_iou, self.max_boxes)
            for found in per_view
        ]


class GdinoBoxesTeacher:
    """Box-level teacher: Grounding DINO boxes, one `Detection` per box (see `GroundingDino` for options)."""

    kind = "box"

    def __init__(self, detector: str | None = None, device: str | None = None, **options):
        self.detector = GroundingDino(detector=detector, device=device, **options)
        self.weights = self.detector.weights
        self.name = f"gdino-boxes({self.detector.settings})"

    def detect(self, views: Views, parts: list[str], category: str | None = None) -> list[Detection]:
        return box_detections(self.detector.detect_boxes(views.rgb, parts, category))


class Owlv2BoxesTeacher(_HubBoxDetector):
    """Box-level teacher: OWLv2 open-vocabulary boxes, one prompt per part as a separate text query.

    Args:
        detector: Hub id or local directory (default $PARTDISTILL_OWLV2, else google/owlv2-base-patch16-ensemble).
        device: torch device; None picks CUDA when present, else CPU.
        box_threshold: minimum score in [0, 1] of a kept box (a query's sigmoid score for its best part).
        nms_iou: per-part non-maximum suppression IoU.
        template: prompt per part, with {part} and optionally {category}.
        batch_size: views per forward pass.
        max_boxes: keep at most this many boxes per view, best first (None: all).
    """

    kind = "box"

    def __init__(
        self,
        detector: str | None = None,
        device: str | None = None,
        box_threshold: float = TEACHER_SPECS["owlv2-boxes"].default_threshold,
        nms_iou: float = 0.3,
        template: str = DEFAULT_TEMPLATE,
        batch_size: int = 1,
        max_boxes: int | None = None,
    ):
        from transformers import Owlv2ForObjectDetection

        self._setup(
            "owlv2", Owlv2ForObjectDetection, detector, device, box_threshold, nms_iou, template, batch_size, max_boxes
        )
        self.name = f"owlv2-boxes({self.settings})"

    def detect(self, views: Views, parts: list[str], category: str | None = None) -> list[Detection]:
        import torch
        from PIL import Image

        prompts = part_prompts(parts, category, self.template)
        n, h, w = views.rgb.shape[:3]
        found: list[ViewBoxes] = []
        for start in range(0, n, self.batch_size):
            batch = [Image.fromarray(im) for im in views.rgb[start : start + self.batch_size]]
            enc = self.processor(text=[prompts] * len(batch), images=batch, truncation=True, return_tensors="pt")
            with torch.inference_mode():
                out = self.model(**enc.to(self.device))
            # OWLv2 pads each image to a square; post-processing maps boxes back to (h, w) pixels.
            results = self.processor.post_process_grounded_object_detection(
                out, threshold=self.box_threshold, target_sizes=[(h, w)] * len(batch)
            )
            found += [
                finish_boxes(r["boxes"], r["scores"], r["labels"], h, w, self.nms_iou, self.max_boxes) for r in results
            ]
        return box_detections(found)
