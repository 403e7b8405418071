"""Teacher registry: name -> factory. Real VLM teachers are imported only when asked for."""

from __future__ import annotations

import importlib
from typing import Any

from partdistill_cli.teachers.base import Teacher, TeacherError

# name -> "module:factory"; the factory takes keyword options and returns a Teacher.
TEACHERS: dict[str, str] = {
    "grounded-sam": "partdistill_cli.teachers.grounded_sam:GroundedSamTeacher",
    "gdino-boxes": "partdistill_cli.teachers.boxes:GdinoBoxesTeacher",
    "owlv2-boxes": "partdistill_cli.teachers.boxes:Owlv2BoxesTeacher",
    "clipseg": "partdistill_cli.teachers.clipseg:ClipSegTeacher",
    "simulated": "partdistill_cli.teachers.simulated:SimulatedTeacher",
}
DEFAULT_TEACHER = "grounded-sam"


def register_teacher(name: str, target: str) -> None:
    TEACHERS[name] = target


def make_teacher(name: str, **options: Any) -> Teacher:
    """Build the teacher registered as `name` with `options`; unknown names raise ValueError."""
    if name not in TEACHERS:
        raise ValueError(f"unknown teacher {name!r}; choose from {', '.join(sorted(TEACHERS))}")
    module, attr = TEACHERS[name].split(":")
    try:
        return getattr(importlib.import_module(module), attr)(**options)
    except ModuleNotFoundError as exc:
        raise TeacherError(
            f"the {name} teacher needs the package {exc.name!r}, which is not installed; "
            "install the vision-language extra: pip install 'partdistill[vlm]'"
        ) from exc


__all__ = ["DEFAULT_TEACHER", "TEACHERS", "Teacher", "TeacherError", "make_teacher", "register_teacher"]
