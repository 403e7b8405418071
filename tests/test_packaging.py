"""pyproject.toml: the licence is an SPDX string, and building the package's metadata raises no warning."""

import warnings
from pathlib import Path

import pytest
import tomllib

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_license_is_an_spdx_string_with_a_setuptools_that_reads_it():
    config = tomllib.loads(PYPROJECT.read_text())
    assert config["project"]["license"] == "MIT"
    assert "setuptools>=77" in config["build-system"]["requires"]  # the first to read SPDX strings


def test_setuptools_reads_the_project_table_without_a_warning(monkeypatch):
    setuptools = pytest.importorskip("setuptools")
    if tuple(int(x) for x in setuptools.__version__.split(".")[:2]) < (77, 0):
        pytest.skip(f"setuptools {setuptools.__version__} here predates SPDX licences (the build uses >= 77)")
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    monkeypatch.chdir(PYPROJECT.parent)  # the table's paths (readme, packages) are relative to it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dist = apply_configuration(Distribution(), str(PYPROJECT))
    assert dist.metadata.license_expression == "MIT"
