"""Fixtures shared by several test files."""

import pytest


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, dict[str, str]]:
    """Tiny random models of every real teacher architecture, built once: teacher -> weight options."""
    from tiny_models import build_tiny_teachers

    return build_tiny_teachers(tmp_path_factory.mktemp("tiny_models"))
