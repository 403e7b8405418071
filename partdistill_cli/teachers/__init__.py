"""Teacher registry: name -> `TeacherSpec` (see `specs`). Real VLM teachers are imported only when asked for."""

from __future__ import annotations

import importlib
from typing import Any

from partdistill_cli.teachers.base import Teacher, TeacherError
from partdistill_cli.teachers.specs import DEFAULT_TEACHER, REAL_TEACHERS, TEACHER_SPECS, TeacherSpec

TEACHERS = TEACHER_SPECS


def register_teacher(spec: TeacherSpec) -> None:
    """Add a teacher (or replace one of the same name); `make_teacher(spec.name, ...)` then builds it."""
    TEACHERS[spec.name] = spec


def make_teacher(name: str, **options: Any) -> Teacher:
    """Build the teacher registered as `name` with `options`; unknown names raise ValueError.

    Its weights are checked first (`weights.require_weights`): every missing one is reported in one TeacherError
    before any model is loaded."""
    if name not in TEACHERS:
        raise ValueError(f"unknown teacher {name!r}; choose from {', '.join(sorted(TEACHERS))}")
    module, attr = TEACHERS[name].factory.split(":")
    try:
        factory = getattr(importlib.import_module(module), attr)
        if TEACHERS[name].weights:
            from partdistill_cli.weights import require_weights

            require_weights(name, options)
        return factory(**options)
    except ModuleNotFoundError as exc:
        raise TeacherError(
            f"the {name} teacher needs the package {exc.name!r}, which is not installed; "
            "install the vision-language extra: pip install 'partdistill[vlm]'"
        ) from exc


__all__ = [
    "DEFAULT_TEACHER",
    "REAL_TEACHERS",
    "TEACHERS",
    "Teacher",
    "TeacherError",
    "TeacherSpec",
    "make_teacher",
    "register_teacher",
]
