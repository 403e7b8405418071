"""`partdistill doctor`: the report's lines, the weights it finds, the cache size, and its exit code."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from partdistill_cli.cli import app
from partdistill_cli.commands import doctor as doc

from tiny_models import build_tiny_clipseg, build_tiny_sam


@pytest.fixture
def empty_caches(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PARTDISTILL_CACHE", str(tmp_path / "pd"))
    for env in ["PARTDISTILL_GDINO", "PARTDISTILL_SAM", "PARTDISTILL_OWLV2", "PARTDISTILL_CLIPSEG"]:
        monkeypatch.delenv(env, raising=False)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    return tmp_path


def by_name(checks):
    return {c.name: c for c in checks}


def test_missing_weights_are_reported_with_the_fix(empty_caches):
    checks = by_name(doc.check_weights())
    for name in ["Grounding DINO weights", "OWLv2 weights", "CLIPSeg weights", "SAM checkpoint"]:
        assert checks[name].status == "missing", name
    assert "hf download IDEA-Research/grounding-dino-tiny" in checks["Grounding DINO weights"].fix
    assert "PARTDISTILL_CLIPSEG" in checks["CLIPSeg weights"].fix
    assert "sam_vit_b_01ec64.pth" in checks["SAM checkpoint"].fix
    assert str(empty_caches / "pd" / "weights") in checks["SAM checkpoint"].detail


def test_weights_given_by_environment_are_found(empty_caches, monkeypatch):
    clipseg = build_tiny_clipseg(empty_caches / "clipseg")
    sam = build_tiny_sam(empty_caches / "sam.safetensors")
    monkeypatch.setenv("PARTDISTILL_CLIPSEG", str(clipseg))
    monkeypatch.setenv("PARTDISTILL_SAM", str(sam))
    monkeypatch.setenv("PARTDISTILL_OWLV2", str(empty_caches / "nowhere"))
    checks = by_name(doc.check_weights())
    assert checks["CLIPSeg weights"].status == "ok" and str(clipseg) in checks["CLIPSeg weights"].detail
    assert checks["SAM checkpoint"].status == "ok" and str(sam) in checks["SAM checkpoint"].detail
    assert checks["OWLv2 weights"].status == "missing" and "PARTDISTILL_OWLV2" in checks["OWLv2 weights"].fix


def test_cache_size_is_reported(monkeypatch, tmp_path):
    root = tmp_path / "pd"
    (root / "weights").mkdir(parents=True)
    (root / "weights" / "blob").write_bytes(b"x" * 3 * 1024 * 1024)
    monkeypatch.setenv("PARTDISTILL_CACHE", str(root))
    checks = by_name(doc.check_caches())
    assert checks["Hugging Face cache"].status == "ok"
    assert str(root) in checks["partdistill cache"].detail and "3.0 MB" in checks["partdistill cache"].detail


def test_doctor_exits_0_when_the_core_works(empty_caches):
    result = CliRunner().invoke(app, ["doctor"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    for line in ["torch", "CUDA", "open3d", "CPU renderer", "nvdiffrast", "SAM checkpoint", "the core works"]:
        assert line in text
    assert "partdistill[gpu]" in text  # rich markup must not eat the extra's brackets


def test_doctor_exits_1_when_the_core_is_broken(empty_caches, monkeypatch):
    broken = doc.Check("open3d", "fail", "libusb-1.0.so.0: cannot open shared object file", "apt-get install ...")
    monkeypatch.setattr(doc, "CHECKS", [doc.check_core, lambda: broken])
    result = CliRunner().invoke(app, ["doctor"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "core does not work" in text and "open3d" in text


def test_libusb_failure_names_the_system_package(monkeypatch):
    def fail(name, *a, **k):
        raise OSError("libusb-1.0.so.0: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(doc.importlib, "import_module", fail)
    check = doc.check_open3d()
    assert check.status == "fail" and "libusb-1.0-0" in check.fix
