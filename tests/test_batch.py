"""Batch `segment` (partdistill_cli.batch) in this process: inputs found and mirrored, the same outputs as one
`segment` per shape, finished shapes skipped, a bad file recorded and the others finished, a killed run resumed.

The teacher is a tiny random CLIPSeg (tests/tiny_models.py): its answers are meaningless, the tests check
structure, equality and bookkeeping. The Ray runner's tests are in test_parallel.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import trimesh
from typer.testing import CliRunner

from partdistill_cli.batch import FAILURES_NAME, InputError, find_inputs, is_batch
from partdistill_cli.cli import app
from partdistill_cli.procedural import generate
from partdistill_cli.shapes import from_mesh

PARTS = "back,seat,leg"
FAST = ["--views", "2", "--resolution", "64", "--points", "256", "--threshold", "0.0", "--epochs", "1",
        "--device", "cpu"]  # fmt: skip
OUTPUTS = (".labels.json", ".labels.npy", ".parts.ply")


def make_shapes(folder: Path) -> list[str]:
    """Four procedural shapes, one of them a point cloud, two in a sub-folder; returns their paths under `folder`."""
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    for rel, (category, index) in {"chair_a.obj": ("chair", 1), "sub/table_b.ply": ("table", 2),
                                   "sub/chair_c.off": ("chair", 3)}.items():  # fmt: skip
        v, f, _, _ = generate(category, index)
        trimesh.Trimesh(v, f, process=False).export(folder / rel)
    v, f, _, _ = generate("mug", 0)
    np.savetxt(folder / "mug_d.xyz", from_mesh(v, f, 300, seed=1).points.astype(np.float64), fmt="%.17g")
    return ["chair_a.obj", "mug_d.xyz", "sub/chair_c.off", "sub/table_b.ply"]


def invoke(args):
    return CliRunner().invoke(app, [str(a) for a in args])


def clipseg(tiny) -> list[str]:
    return ["--teacher", "clipseg", "--clipseg", tiny["clipseg"]["clipseg"]]


def result_files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))


def stems(rels) -> list[str]:
    return [str(Path(r).with_suffix("")) for r in rels]


@pytest.fixture
def shapes(tmp_path) -> tuple[Path, list[str]]:
    return tmp_path / "in", make_shapes(tmp_path / "in")


# ---- inputs ------------------------------------------------------------------------------------------------


def test_a_folder_is_searched_recursively_and_mirrored(shapes, tmp_path):
    folder, rels = shapes
    (folder / "chair_a.face_labels.npy").write_bytes(b"labels, not a shape")
    (folder / "old.parts.ply").write_text("an earlier output beside the inputs")
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "x.obj").write_text("v 0 0 0")
    (folder / "notes.md").write_text("not a shape")
    (folder / "out").mkdir()
    (folder / "out" / "inside_out.obj").write_text("v 0 0 0")
    found = find_inputs([folder], folder / "out")
    assert [str(i.rel) for i in found] == rels
    assert all(i.path == folder / i.rel for i in found)
    assert found[2].out_dir(tmp_path / "o") == tmp_path / "o" / "sub" and found[2].name == "chair_c"


def test_partnet_mobility_object_folders_are_one_shape_each(shapes, tmp_path):
    folder, rels = shapes
    objects = [folder / "sub" / "box_7", folder / "42"]
    for obj in objects:
        (obj / "textured_objs").mkdir(parents=True)
        trimesh.creation.box().export(obj / "textured_objs" / "a.obj")
        parts = {"a": {"file": "textured_objs/a.obj", "partnete_label": "lid"}}
        (obj / "parts.json").write_text(json.dumps({"category": "Box", "partnete_part_names": ["lid"], "objs": parts}))
    found = find_inputs([folder], tmp_path / "o")
    assert [str(i.rel) for i in found] == sorted(["42", "sub/box_7", *rels])  # not the part meshes inside them
    assert [i.name for i in found if i.path.is_dir()] == ["42", "box_7"]
    assert not is_batch([objects[0]]) and is_batch([folder])  # `segment OBJECT_FOLDER` stays one shape


def test_globs_lists_and_several_files_mirror_from_their_common_folder(shapes, tmp_path, monkeypatch):
    folder, rels = shapes
    monkeypatch.chdir(tmp_path)
    by_glob = find_inputs(["in/**/*.o*"], tmp_path / "o")
    assert [str(i.rel) for i in by_glob] == ["chair_a.obj", "sub/chair_c.off"]
    listing = folder / "sub" / "list.txt"
    listing.write_text("# the two in sub, relative to this list\nchair_c.off\n\n../chair_a.obj\n")
    by_list = find_inputs([f"@{listing}"], tmp_path / "o")
    assert [str(i.rel) for i in by_list] == ["sub/chair_c.off", "chair_a.obj"]
    by_files = find_inputs([folder / "sub" / "table_b.ply", folder / "mug_d.xyz"], tmp_path / "o")
    assert [str(i.rel) for i in by_files] == ["sub/table_b.ply", "mug_d.xyz"]
    assert is_batch([folder]) and is_batch(["in/*.obj"]) and is_batch([f"@{listing}"]) and is_batch(["a", "b"])
    assert not is_batch([folder / "chair_a.obj"])


def test_inputs_that_name_nothing_or_collide_are_refused_before_any_work(shapes, tmp_path):
    folder, _ = shapes
    with pytest.raises(InputError, match=r"matches no shape files"):
        find_inputs([str(folder / "*.stl")], tmp_path / "o")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"empty: is a folder holding no shape files nor PartNet-Mobility object"):
        find_inputs([tmp_path / "empty"], tmp_path / "o")
    with pytest.raises(InputError, match=r"no such file or folder"):
        find_inputs([tmp_path / "nowhere"], tmp_path / "o")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(InputError, match=r"lists no shapes"):
        find_inputs([f"@{tmp_path / 'empty.txt'}"], tmp_path / "o")
    trimesh.creation.box().export(folder / "chair_a.stl")
    with pytest.raises(InputError) as info:
        find_inputs([folder], tmp_path / "o")
    assert str(info.value) == (
        f"{folder / 'chair_a.obj'} and {folder / 'chair_a.stl'} would write the same outputs "
        f"({tmp_path / 'o' / 'chair_a'}.*): rename one or segment them in separate runs"
    )


def test_batch_options_are_checked_before_any_work(shapes, tmp_path, monkeypatch):
    folder, _ = shapes
    result = invoke(["segment", folder, "--parts", PARTS])
    assert isinstance(result.exception, InputError) and "needs --out DIR" in str(result.exception)
    result = invoke(["segment", folder / "chair_a.obj", "--parts", PARTS, "--workers", "2"])
    assert isinstance(result.exception, InputError) and "--workers and --ray-address are for many shapes" in str(
        result.exception
    )
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    result = invoke(["segment", folder, "--parts", PARTS, "--out", tmp_path / "o", "--workers", "2",
                     "--teacher", "clipseg", "--clipseg", tmp_path / "nowhere"])  # fmt: skip
    assert str(result.exception) == (
        "--workers and --ray-address need Ray, which is not installed: pip install 'partdistill[ray]' (or pip "
        "install ray)"
    )


def test_a_batch_stopped_before_any_result_leaves_no_output_folder(shapes, tmp_path):
    folder, _ = shapes
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, "-m", "partdistill_cli.cli", "segment", str(folder), "--parts", PARTS, "--out",
            str(tmp_path / "new" / "out"), "--teacher", "clipseg", "--clipseg", str(tmp_path / "nowhere"), *FAST]  # fmt: skip
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert str(tmp_path / "nowhere") in proc.stderr
    assert not (tmp_path / "new").exists()  # the output folder it made (lock and all) is gone


# ---- segmenting -------------------------------------------------------------------------------------------------


def test_batch_outputs_equal_per_shape_segment_outputs(tiny, shapes, tmp_path):
    folder, rels = shapes
    common = ["--parts", PARTS, "--category", "chair", *clipseg(tiny), *FAST, "--method", "forward"]
    result = invoke(["segment", folder, *common, "--out", tmp_path / "batch", "--cache-dir", tmp_path / "c1"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    # No failures.json when nothing failed; the lock on the folder is gone with the run.
    assert result_files(tmp_path / "batch") == sorted(s + suffix for s in stems(rels) for suffix in OUTPUTS)
    assert not list((tmp_path / "batch").glob(".*"))
    # Not a terminal: one plain line per shape with its time, then the summary.
    for i, rel in enumerate(rels, 1):
        assert f"[{i}/4] {rel}: done, distilled 1 epoch (a fixed schedule) (" in (result.output)
    assert "done" in result.output and "skipped (done before)" in result.output
    for rel in rels:
        single = tmp_path / "single" / Path(rel).parent
        one = invoke(["segment", folder / rel, *common, "--out", single, "--cache-dir", tmp_path / "c2"])
        assert one.exit_code == 0, one.output + repr(one.exception)
        assert "distilled 1 epoch (a fixed schedule) in " in one.output  # one shape: its training's line
        stem = Path(rel).stem
        a = json.loads((tmp_path / "batch" / Path(rel).parent / f"{stem}.labels.json").read_text())
        b = json.loads((single / f"{stem}.labels.json").read_text())
        for key in ("parts", "labels", "confidence", "count", "meta", "input_sha256", "colors"):
            assert a[key] == b[key], (rel, key)
        assert np.array_equal(
            np.load(tmp_path / "batch" / Path(rel).parent / f"{stem}.labels.npy"),
            np.load(single / f"{stem}.labels.npy"),
        )


def test_a_corrupt_file_fails_alone_and_a_rerun_skips_what_is_done(tiny, shapes, tmp_path):
    folder, rels = shapes
    (folder / "sub" / "broken.ply").write_text("ply\nformat ascii 1.0\nelement vertex 3\nend_header\n1 2\n")
    out = tmp_path / "out"
    args = ["segment", folder, "--parts", PARTS, *clipseg(tiny), *FAST, "--method", "vote-fill", "--out", out,
            "--cache-dir", tmp_path / "cache"]  # fmt: skip
    result = invoke(args)
    assert result.exit_code == 1 and str(result.exception) == (
        f"1 of 5 shapes failed; each is listed in {out / FAILURES_NAME}"
    )
    (failure,) = json.loads((out / FAILURES_NAME).read_text())
    assert failure["path"] == str(folder / "sub" / "broken.ply") and failure["stage"] == "load"
    assert failure["error"].startswith(f"{folder / 'sub' / 'broken.ply'}: ")
    assert f"sub/broken.ply: failed at load: {failure['error']}" in " ".join(result.output.split())
    assert result_files(out) == sorted([FAILURES_NAME] + [s + x for s in stems(rels) for x in OUTPUTS])
    written = {p: p.stat().st_mtime_ns for p in out.rglob("*.labels.npy")}

    again = invoke(args)
    assert again.exit_code == 1 and "4 of 5 shapes were segmented before with these settings: skipped" in " ".join(
        again.output.split()
    )
    assert "[1/1] sub/broken.ply: failed at load" in again.output
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.labels.npy")} == written
    assert len(json.loads((out / FAILURES_NAME).read_text())) == 1

    (folder / "sub" / "broken.ply").unlink()
    redo = invoke([*args, "--overwrite"])
    assert redo.exit_code == 0, redo.output + repr(redo.exception)
    assert not (out / FAILURES_NAME).exists()  # the earlier run's failure is fixed, its record gone
    assert all(p.stat().st_mtime_ns != t for p, t in written.items())


def test_results_of_other_settings_or_incomplete_are_not_skipped_nor_replaced(tiny, shapes, tmp_path):
    folder, _ = shapes
    out = tmp_path / "out"
    base = ["segment", folder, *clipseg(tiny), *FAST, "--method", "vote-fill", "--out", out,
            "--cache-dir", tmp_path / "c"]  # fmt: skip
    assert invoke([*base, "--parts", PARTS]).exit_code == 0
    result = invoke([*base, "--parts", "back,seat,arm"])
    assert result.exit_code == 1
    failures = json.loads((out / FAILURES_NAME).read_text())
    assert [f["stage"] for f in failures] == ["check"] * 4
    assert failures[0]["error"] == (
        f"{out / 'chair_a.labels.json'}: was made with other settings (parts ['back', 'seat', 'leg'], now "
        "['back', 'seat', 'arm']); pass --overwrite to redo it"
    )
    assert json.loads((out / "chair_a.labels.json").read_text())["parts"] == ["back", "seat", "leg"]
    (out / "mug_d.labels.npy").unlink()
    result = invoke([*base, "--parts", PARTS])
    (failure,) = json.loads((out / FAILURES_NAME).read_text())
    assert failure["error"] == (
        f"{out / 'mug_d.parts.ply'}: an earlier result lacks mug_d.labels.npy; pass --overwrite to redo it"
    )


def test_a_journal_left_by_a_kill_between_renames_is_completed_and_the_shape_skipped(tiny, shapes, tmp_path):
    import partdistill_cli.outputs as outputs

    folder, _ = shapes
    out = tmp_path / "out"
    args = ["segment", folder, "--parts", PARTS, *clipseg(tiny), *FAST, "--method", "vote-fill", "--out", out,
            "--cache-dir", tmp_path / "cache"]  # fmt: skip
    assert invoke(args).exit_code == 0
    # Redo chair_a and die after its first rename: the journal stays, two of three files are the old ones.
    calls = []

    def dying_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt
        os.replace(src, dst)

    fake_os = types.SimpleNamespace(**{**vars(os), "replace": dying_replace})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(outputs, "os", fake_os)
        assert invoke([*args, "--overwrite", "--seed", "1"]).exit_code == 130  # typer's exit for an interrupt
    assert len(calls) == 2
    assert list(out.glob(outputs.JOURNAL_GLOB))
    result = invoke([*args, "--seed", "1"])
    assert "1 of 4 shapes were segmented before with these settings: skipped" in " ".join(result.output.split())
    assert not list(out.glob(outputs.JOURNAL_GLOB)) and not list(out.rglob(".*.part.*"))
    doc = json.loads((out / "chair_a.labels.json").read_text())
    assert doc["meta"]["seed"] == 1 and np.load(out / "chair_a.labels.npy").tolist() == doc["labels"]
    # The other three were made with seed 0: reported, not replaced.
    failures = json.loads((out / FAILURES_NAME).read_text())
    assert [Path(f["path"]).name for f in failures] == ["mug_d.xyz", "chair_c.off", "table_b.ply"]
    assert all("(seed 0, now 1)" in f["error"] for f in failures)


def test_a_run_killed_midway_leaves_no_partial_file_and_a_rerun_completes(tiny, shapes, tmp_path):
    folder, rels = shapes
    out = tmp_path / "out"
    env = {**os.environ, "PARTDISTILL_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, "-m", "partdistill_cli.cli", "segment", str(folder), "--parts", PARTS, *clipseg(tiny),
            *FAST, "--method", "forward", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.rglob("*.labels.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere inside the next shapes
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = [s for s in stems(rels) if (out / f"{s}.labels.json").exists()]
    assert 1 <= len(finished) < 4
    for s in stems(rels):
        present = [(out / f"{s}{x}").exists() for x in OUTPUTS]
        assert all(present) or not any(present), s  # a shape's files are all there or none
        if all(present):
            doc = json.loads((out / f"{s}.labels.json").read_text())
            assert np.load(out / f"{s}.labels.npy").tolist() == doc["labels"]
    # A temporary of an unfinished shape, as a kill inside its write leaves it: the rerun clears it.
    unfinished = next(s for s in stems(rels) if not (out / f"{s}.labels.json").exists())
    stale = out / Path(unfinished).parent / f".{Path(unfinished).name}.labels.npy.k1ll3d.part.npy"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"half a file")
    rerun = subprocess.run(args, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(finished)} of 4 shapes were segmented before" in " ".join(rerun.stderr.split())
    assert result_files(out) == sorted(s + x for s in stems(rels) for x in OUTPUTS)
    assert not list(out.rglob(".*.part.*"))  # the killed run's temporaries are gone
