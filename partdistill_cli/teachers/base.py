"""The teacher interface: view images + part names -> 2D detections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, Protocol

from partdistill_cli.errors import TeacherError

if TYPE_CHECKING:
    from partdistill_cli.knowledge import Detection
    from partdistill_cli.render.base import Views


class Teacher(Protocol):
    """Anything that turns rendered views and part names into `Detection`s.

    `name` identifies the teacher (its settings and the content of its weights) in caches; `kind` says whether
    it gives masks or boxes; `weights` maps each weight option to the weights loaded for it, as
    `source@identity` (`weights.identified`; empty for a teacher without weights).
    """

    name: str
    kind: Literal["mask", "box"]
    weights: Mapping[str, str]

    def detect(self, views: Views, parts: list[str], category: str | None = None) -> list[Detection]:
        """Detections for every view of `views` (their `view` field indexes `views.cameras`)."""
        ...


__all__ = ["Teacher", "TeacherError"]
