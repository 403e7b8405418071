"""The PartDistill student: a point network distilled from lifted 2D knowledge (DESIGN.md section 4)."""

from partdistill_cli.student.losses import (
    AGREEMENT_MEASURES,
    distillation_loss,
    member_agreement,
    point_targets,
    rescore,
    target_loss,
)
from partdistill_cli.student.model import BACKBONES, register_backbone
from partdistill_cli.student.train import DistillConfig, Student, distill, fuse_knowledge

__all__ = [
    "AGREEMENT_MEASURES",
    "BACKBONES",
    "DistillConfig",
    "Student",
    "distill",
    "distillation_loss",
    "fuse_knowledge",
    "member_agreement",
    "point_targets",
    "register_backbone",
    "rescore",
    "target_loss",
]
