"""Teacher registry: name -> factory. Real VLM teachers are imported only when asked for."""

from __future__ import annotations

import importlib
from typing import Any

from partdistill_cli.teachers.base import Teacher, TeacherError

# name -> "module:factory"; the factory takes keyword options and returns a Teacher.
TEACHERS: dict[str, str] = {
    "simulated": "partdistill_cli.teachers.simulated:SimulatedTeacher",
}


def register_teacher(name: str, target: str) -> None:
    TEACHERS[name] = target


def make_teacher(name: str, **options: Any) -> Teacher:
    """Build the teacher registered as `name` with `options`; unknown names raise ValueError."""
    if name not in TEACHERS:
        raise ValueError(f"unknown teacher {name!r}; choose from {', '.join(sorted(TEACHERS))}")
    module, attr = TEACHERS[name].split(":")
    return getattr(importlib.import_module(module), attr)(**options)


__all__ = ["TEACHERS", "Teacher", "TeacherError", "make_teacher", "register_teacher"]
