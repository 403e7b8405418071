"""The default pixel-level teacher: Grounding DINO boxes per part prompt, each turned into a mask by SAM."""

from __future__ import annotations

import numpy as np

from partdistill_cli.knowledge import Detection
from partdistill_cli.render.base import Views
from partdistill_cli.teachers.boxes import GroundingDino
from partdistill_cli.weights import identified, load_sam, resolve_sam


class GroundedSamTeacher:
    """Grounded-SAM: Grounding DINO finds scored boxes for each part; SAM (segment-anything) segments each box.

    A detection's mask is SAM's single-mask answer to the box prompt, its score the detector's.

    Args:
        detector: Grounding DINO Hub id or local directory (default $PARTDISTILL_GDINO, else
            IDEA-Research/grounding-dino-tiny).
        segmenter: SAM variant (vit_b, vit_l, vit_h: fetched once, checksum-verified) or a local .pth /
            .safetensors checkpoint (default $PARTDISTILL_SAM, else vit_b).
        device: torch device; None picks CUDA when present, else CPU.
        **options: detector options (box_threshold, nms_iou, template, batch_size, max_boxes), see
            `GroundingDino`.
    """

    kind = "mask"

    def __init__(self, detector: str | None = None, segmenter: str | None = None, device: str | None = None, **options):
        from segment_anything import SamPredictor

        self.detector = GroundingDino(detector=detector, device=device, **options)
        self.segmenter = resolve_sam(segmenter)
        self.predictor = SamPredictor(load_sam(self.segmenter, self.detector.device))
        self.weights = {**self.detector.weights, "segmenter": identified(self.segmenter)}
        self.name = f"grounded-sam({self.detector.settings},segmenter={self.weights['segmenter']})"

    def detect(self, views: Views, parts: list[str], category: str | None = None) -> list[Detection]:
        import torch

        h, w = views.size
        detections: list[Detection] = []
        for v, found in enumerate(self.detector.detect_boxes(views.rgb, parts, category)):
            if not len(found.boxes):
                continue  # SAM's image encoder is the expensive part: skip views with nothing to segment
            self.predictor.set_image(np.ascontiguousarray(views.rgb[v]), image_format="RGB")
            boxes = torch.as_tensor(found.boxes, dtype=torch.float32, device=self.predictor.device)
            with torch.inference_mode():
                masks, _, _ = self.predictor.predict_torch(
                    point_coords=None,
                    point_labels=None,
                    boxes=self.predictor.transform.apply_boxes_torch(boxes, (h, w)),
                    multimask_output=False,
                )
            masks = masks[:, 0].cpu().numpy()  # (M, H, W) bool
            for mask, score, part in zip(masks, found.scores, found.parts, strict=True):
                if mask.any():
                    detections.append(Detection(v, int(part), float(score), mask=mask))
            self.predictor.reset_image()
        return detections
