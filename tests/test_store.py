"""The cache: students (safetensors + card) and knowledge paths."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from partdistill_cli import store
from partdistill_cli.errors import UserError
from partdistill_cli.knowledge import Knowledge
from partdistill_cli.student import DistillConfig, Student

PARTS = ["seat", "back", "leg"]
CONFIG = DistillConfig(k=4, widths=(8, 8), global_dim=16, head=(8,), points_per_shape=64, tta=1, ensemble=2)


def _student() -> Student:
    student = Student.create(PARTS, CONFIG)
    student.history = {"loss": [1.0, 0.5], "epochs": 2, "backward_epoch": 1, "trained_on": ["a", "b"]}
    return student


def _card(**overrides) -> store.StudentCard:
    fields = {"category": "chair", "parts": PARTS, "teacher": "simulated", "render": {"views": 10}}
    return store.StudentCard(**{**fields, **overrides})


def _logits(student: Student, x: torch.Tensor) -> list[torch.Tensor]:
    out = []
    with torch.no_grad():
        for m in student.modules:
            m.eval()
            out.append(m(x))
    return out


def test_cache_root_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv(store.CACHE_ENV, str(tmp_path / "env"))
    assert store.cache_root() == tmp_path / "env"
    assert store.cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv(store.CACHE_ENV)
    assert store.cache_root().parts[-2:] == (".cache", "partdistill")


def test_save_find_round_trip_gives_identical_logits(tmp_path):
    student = _student()
    entry = store.save_student(student, _card(), root=tmp_path)
    assert (entry / store.WEIGHTS_NAME).is_file() and (entry / store.CARD_NAME).is_file()
    assert not list(entry.glob(".*.part*")), "no temporary files left behind"
    card = json.loads((entry / store.CARD_NAME).read_text())
    assert card["parts"] == PARTS and card["teacher"] == "simulated" and card["loss"] == [1.0, 0.5]
    assert card["backward_epoch"] == 1 and card["epochs"] == 2 and card["version"] and card["created"]
    assert card["config"]["ensemble"] == 2 and card["render"] == {"views": 10}

    found = store.find_student("chair", PARTS, "simulated", CONFIG, root=tmp_path)
    assert found is not None and found.parts == PARTS and len(found.modules) == 2
    x = torch.randn(1, 6, 64)
    for a, b in zip(_logits(student, x), _logits(found, x), strict=True):
        assert torch.equal(a, b)
    from_file = store.load_student(entry / store.WEIGHTS_NAME, parts=PARTS)
    assert torch.equal(_logits(from_file, x)[0], _logits(student, x)[0])
    assert found.history["trained_on"] == ["a", "b"]


def test_key_separates_parts_order_teacher_and_config(tmp_path):
    store.save_student(_student(), _card(), root=tmp_path)
    assert store.find_student("chair", ["back", "seat", "leg"], "simulated", CONFIG, root=tmp_path) is None
    assert store.find_student("chair", PARTS, "clipseg", CONFIG, root=tmp_path) is None
    assert store.find_student("table", PARTS, "simulated", CONFIG, root=tmp_path) is None
    other = DistillConfig.from_dict({**CONFIG.to_dict(), "lr": 0.1})
    assert store.find_student("chair", PARTS, "simulated", other, root=tmp_path) is None
    on_gpu = DistillConfig.from_dict({**CONFIG.to_dict(), "device": "cuda"})
    assert store.student_key("chair", PARTS, "t", on_gpu) == store.student_key("chair", PARTS, "t", CONFIG)
    dilated = DistillConfig.from_dict({**CONFIG.to_dict(), "dilation": 2})
    assert store.student_key("chair", PARTS, "t", dilated) != store.student_key("chair", PARTS, "t", CONFIG)
    # the plain network hashes as it did before `dilation` existed, so students cached then are still found
    assert "dilation" not in CONFIG.model_dict() and dilated.model_dict()["dilation"] == 2


def test_loading_a_mismatched_part_list_is_refused(tmp_path):
    entry = store.save_student(_student(), _card(), root=tmp_path)
    with pytest.raises(UserError, match="segments into"):
        store.load_student(entry, parts=["seat", "leg", "back"])
    with pytest.raises(store.StoreError, match="student predicts"):
        store.save_student(_student(), _card(parts=["a", "b", "c"]), root=tmp_path)


def test_corrupt_weights_are_reported_and_skipped(tmp_path, capsys):
    entry = store.save_student(_student(), _card(), root=tmp_path)
    (entry / store.WEIGHTS_NAME).write_bytes(b"\x00garbage, not safetensors")
    assert store.find_student("chair", PARTS, "simulated", CONFIG, root=tmp_path) is None
    assert "skipping cached student" in capsys.readouterr().err
    with pytest.raises(UserError, match="unreadable student weights"):
        store.load_student(entry)


def test_corrupt_foreign_or_incompatible_cards_are_skipped(tmp_path, capsys):
    entry = store.save_student(_student(), _card(), root=tmp_path)
    card_path = entry / store.CARD_NAME
    good = json.loads(card_path.read_text())
    bad_cards = [
        "{not json",
        json.dumps({**good, "format": "partdistill-student/999"}),
        json.dumps({**good, "teacher": "someone-else"}),
        json.dumps({**good, "key": "0" * 24}),
    ]
    for text in bad_cards:
        card_path.write_text(text)
        assert store.find_student("chair", PARTS, "simulated", CONFIG, root=tmp_path) is None
        assert "skipping cached student" in capsys.readouterr().err
    card_path.write_text(bad_cards[0])
    with pytest.raises(UserError, match="unreadable student card"):
        store.load_student(entry)


def test_weights_that_do_not_fit_the_card_are_refused(tmp_path):
    entry = store.save_student(_student(), _card(), root=tmp_path)
    card = json.loads((entry / store.CARD_NAME).read_text())
    card["config"]["widths"] = [32, 32]
    (entry / store.CARD_NAME).write_text(json.dumps(card))
    with pytest.raises(UserError, match="do not fit"):
        store.load_student(entry)


def test_missing_student_file(tmp_path):
    with pytest.raises(UserError, match="no such student"):
        store.load_student(tmp_path / "nothing.safetensors")
    lone = tmp_path / "lone.safetensors"
    lone.write_bytes(b"x")
    with pytest.raises(UserError, match="no student card"):
        store.load_student(lone)


def test_knowledge_path_keys_and_round_trip(tmp_path):
    base = store.knowledge_path("abc123", "simulated", PARTS, {"views": 10, "resolution": 512}, root=tmp_path)
    assert base.suffix == ".npz" and base.is_relative_to(tmp_path)
    same = store.knowledge_path("abc123", "simulated", PARTS, {"resolution": 512, "views": 10}, root=tmp_path)
    assert same == base
    others = [
        store.knowledge_path("abc124", "simulated", PARTS, {"views": 10, "resolution": 512}, root=tmp_path),
        store.knowledge_path("abc123", "clipseg", PARTS, {"views": 10, "resolution": 512}, root=tmp_path),
        store.knowledge_path("abc123", "simulated", PARTS[::-1], {"views": 10, "resolution": 512}, root=tmp_path),
        store.knowledge_path("abc123", "simulated", PARTS, {"views": 6, "resolution": 512}, root=tmp_path),
    ]
    assert len({base, *others}) == 5
    k = Knowledge(
        np.array([0, 2]),
        np.array([0.5, 0.9], np.float32),
        np.array([0, 1]),
        np.array([0, 2, 3]),
        np.array([0, 4, 1]),
        5,
        PARTS,
    )
    k.save(base)
    back = Knowledge.load(base)
    np.testing.assert_array_equal(back.indices, k.indices)
    assert back.parts == PARTS


def test_knowledge_store_keys_the_background_part_and_category_and_refuses_what_does_not_fit(tmp_path, capsys):
    from partdistill_cli.config import RenderSettings
    from partdistill_cli.parts import PartList
    from partdistill_cli.shapes import from_points

    shape = from_points(np.random.default_rng(0).normal(size=(5, 3)), name="blob")
    parts, settings = PartList(tuple(PARTS)), RenderSettings(4, 128)
    kept = store.KnowledgeStore(tmp_path)
    path = kept.path(shape, "clipseg", parts, settings, "chair")
    # The same key as knowledge_path with the render settings and the category: caches written before still load.
    assert path == store.knowledge_path(
        shape.fingerprint(), "clipseg", PARTS, {**settings.to_dict(), "category": "chair"}, tmp_path
    )
    others = {
        kept.path(shape, "clipseg", PartList(tuple(PARTS), background=True), settings, "chair"),
        kept.path(shape, "clipseg", parts, settings, "table"),
        kept.path(shape, "clipseg", parts, RenderSettings(4, 256), "chair"),
    }
    assert path not in others and len(others) == 3
    assert kept.load(path, shape, parts) is None  # nothing there yet
    k = Knowledge(
        np.array([0]), np.ones(1, np.float32), np.zeros(1, np.int64), np.array([0, 2]), np.array([1, 3]), 5, PARTS
    )
    k.save(path)
    assert kept.load(path, shape, parts).indices.tolist() == [1, 3]
    assert kept.load(path, shape, PartList(tuple(PARTS), background=True)) is None  # another part list
    assert kept.load(path, from_points(np.zeros((6, 3)) + np.arange(6)[:, None]), parts) is None  # other points
    path.write_bytes(b"not an npz")
    assert kept.load(path, shape, parts) is None
    assert "ignoring a corrupt knowledge cache entry" in capsys.readouterr().err
    # A folder where the entry should be: reported and skipped on reading and on writing, never raised.
    path.unlink()
    path.mkdir()
    assert kept.load(path, shape, parts) is None
    kept.save(k, path)
    err = " ".join(capsys.readouterr().err.split())
    assert f"ignoring a corrupt knowledge cache entry: {path}" in err
    assert f"could not cache the teacher knowledge at {path}" in err and path.is_dir()
    beside = store.KnowledgeStore(tmp_path, folder=tmp_path / "mine").path(shape, "clipseg", parts, settings, "chair")
    assert beside.parent == tmp_path / "mine" and beside.name.startswith("blob.") and beside.suffix == ".npz"


def test_check_cache_root_creates_nothing_and_names_what_is_in_the_way(tmp_path, monkeypatch):
    assert store.check_cache_root(tmp_path / "new" / "cache") == tmp_path / "new" / "cache"
    assert not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv(store.CACHE_ENV, str(tmp_path / "file" / "cache"))
    with pytest.raises(
        store.StoreError, match=f"the cache root cannot be a folder \\({tmp_path / 'file'} is a file\\)"
    ):
        store.check_cache_root()
    # Permission bits do not stop root (these tests may run as root), so the access check itself is simulated.
    monkeypatch.setattr(store.os, "access", lambda path, mode: False)
    with pytest.raises(store.StoreError, match=f"cannot write the cache there \\({tmp_path} is not writable\\)"):
        store.check_cache_root(tmp_path / "cache")


def _teach_box(folder, cache):
    """Teach a box with the clipseg weights in `folder`: (TeachResult, whether it came from the cache)."""
    import trimesh

    from partdistill_cli.api import Segmenter
    from partdistill_cli.config import RenderSettings

    from helpers import two_box_mesh

    seg = Segmenter(teacher="clipseg", weights={"clipseg": str(folder)}, threshold=0.0, points=300,
                    render=RenderSettings(2, 64), cache_dir=cache, verbose=False)  # fmt: skip
    v, f, _ = two_box_mesh()
    shape = seg.load(trimesh.Trimesh(v, f, process=False), name="boxes")
    taught = seg.teach(shape, seg.parts("tower,base"))
    return taught, taught.views is None


def test_swapped_weights_in_a_local_model_folder_are_never_answered_from_the_cache(tiny, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path / "clipseg"
    shutil.copytree(tiny["clipseg"]["clipseg"], folder)
    first, cached = _teach_box(folder, tmp_path / "cache")
    assert not cached
    again, cached = _teach_box(folder, tmp_path / "cache")
    assert cached and np.array_equal(again.knowledge.labels, first.knowledge.labels)
    # Other weights of the same architecture under the same file name, in the same folder.
    weights = folder / "model.safetensors"
    generator = torch.Generator().manual_seed(1)
    tensors = {k: v + torch.randn(v.shape, generator=generator) for k, v in load_file(weights).items()}
    save_file(tensors, weights, metadata={"format": "pt"})
    swapped, cached = _teach_box(folder, tmp_path / "cache")
    assert not cached, "the old weights' answers were reused"
    cards = sorted((tmp_path / "cache" / "knowledge").rglob("*.json"))
    assert len(cards) == 2
    made_by = [json.loads(c.read_text())["weights"]["clipseg"] for c in cards]
    assert all(m.startswith(f"{folder}@files:") for m in made_by) and made_by[0] != made_by[1]
    assert {json.loads(c.read_text())["teacher"] for c in cards} == {first.teacher, swapped.teacher}
