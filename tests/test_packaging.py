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


CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def test_readme_gives_a_cpu_only_install_that_the_plain_requirements_keep():
    from packaging.requirements import Requirement

    readme = (PYPROJECT.parent / "README.md").read_text()
    commands = [line for line in readme.splitlines() if "pip install" in line]
    cpu = [line for line in commands if CPU_INDEX in line]
    assert cpu, "README has no CPU-only install"
    for line in cpu:
        # PyTorch's CPU builds first, from their own index; then the package, whose torch requirement they meet,
        # so pip keeps them rather than fetching the CUDA build from PyPI.
        first = line.index(f"pip install torch torchvision --index-url {CPU_INDEX}")
        assert first < line.index('pip install -e ".[vlm]"')
    assert any(CPU_INDEX not in line and 'pip install -e ".[vlm]"' in line for line in commands)  # the plain one
    config = tomllib.loads(PYPROJECT.read_text())
    torch = next(Requirement(r) for r in config["project"]["dependencies"] if r.startswith("torch"))
    assert torch.specifier.contains("2.9.1+cpu")
