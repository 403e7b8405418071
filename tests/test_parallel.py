"""The Ray runner (`--workers`, `--ray-address`) on a local Ray of 2 CPUs, started once for the module: the same
labels as the sequential run, bit for bit, a bad file recorded alone, and train-category / evaluate teaching on
the workers with the same answers. One test starts and stops its own local Ray in a subprocess, as the command
line does."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from test_batch import FAST, PARTS, clipseg, invoke, make_shapes

from partdistill_cli.batch import FAILURES_NAME

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    from partdistill_cli.parallel import local_ray_options

    # Two GPUs that CUDA does not see: the GPU layout (a placement group, actors that render and detect,
    # distillation beside them) runs on the CPU, for --device auto.
    ray.init(**local_ray_options(2), num_gpus=2)
    yield
    ray.shutdown()


def same_results(a, b, stems) -> None:
    for stem in stems:
        ja = json.loads((a / f"{stem}.labels.json").read_text())
        jb = json.loads((b / f"{stem}.labels.json").read_text())
        for key in ("parts", "labels", "confidence", "meta", "input_sha256"):
            assert ja[key] == jb[key], (stem, key)
        assert np.array_equal(np.load(a / f"{stem}.labels.npy"), np.load(b / f"{stem}.labels.npy")), stem
        assert (a / f"{stem}.parts.ply").read_bytes() == (b / f"{stem}.parts.ply").read_bytes(), stem


def test_workers_2_give_the_sequential_labels_bit_for_bit_and_isolate_a_bad_file(tiny, tmp_path):
    folder = tmp_path / "in"
    rels = make_shapes(folder)
    (folder / "sub" / "empty.obj").write_text("")
    common = ["segment", folder, "--parts", PARTS, "--category", "chair", *clipseg(tiny), *FAST, "--method", "full"]
    sequential = invoke([*common, "--out", tmp_path / "seq", "--cache-dir", tmp_path / "c1"])
    parallel = invoke([*common, "--out", tmp_path / "par", "--cache-dir", tmp_path / "c2", "--workers", "2"])
    for result in (sequential, parallel):
        assert result.exit_code == 1 and "1 of 5 shapes failed" in str(result.exception), result.output
    assert "Ray: 2 teacher worker(s) on CPU, 2 CPUs" in " ".join(parallel.output.split())
    same_results(tmp_path / "seq", tmp_path / "par", [r.rsplit(".", 1)[0] for r in rels])
    failures = [json.loads((tmp_path / d / FAILURES_NAME).read_text()) for d in ("seq", "par")]
    assert failures[0] == failures[1] == [
        {"path": str(folder / "sub" / "empty.obj"), "stage": "load", "error": f"{folder / 'sub' / 'empty.obj'}: the file is empty"}
    ]  # fmt: skip
    # The workers' lift tasks kept the knowledge in the cache, one entry per shape.
    assert len(list((tmp_path / "c2" / "knowledge").rglob("*.npz"))) == 4
    # ... each with the card that names the teacher and its weights, as the sequential run writes it.
    cards = [
        sorted((json.loads(p.read_text())["teacher"], json.loads(p.read_text())["weights"]["clipseg"])
               for p in (tmp_path / c / "knowledge").rglob("*.json"))
        for c in ("c1", "c2")
    ]  # fmt: skip
    assert len(cards[1]) == 4 and cards[0] == cards[1] and str(tiny["clipseg"]["clipseg"]) in cards[1][0][1]


def test_the_gpu_layout_gives_the_sequential_labels(tiny, tmp_path):
    folder = tmp_path / "in"
    rels = make_shapes(folder)
    fast = [a for a in FAST if a not in ("--device", "cpu")]
    common = ["segment", folder, "--parts", PARTS, *clipseg(tiny), *fast, "--method", "forward", "--device", "auto"]
    assert invoke([*common, "--out", tmp_path / "seq", "--cache-dir", tmp_path / "c1"]).exit_code == 0
    parallel = invoke([*common, "--out", tmp_path / "par", "--cache-dir", tmp_path / "c2", "--workers", "2"])
    assert parallel.exit_code == 0, parallel.output + repr(parallel.exception)
    assert "Ray: 2 teacher worker(s) on GPU" in " ".join(parallel.output.split())
    same_results(tmp_path / "seq", tmp_path / "par", [r.rsplit(".", 1)[0] for r in rels])


def test_train_category_and_evaluate_teach_on_workers_with_the_same_answers(tiny, tmp_path):
    from safetensors.numpy import load_file

    folder = tmp_path / "chairs"
    make_shapes(folder)
    students = []
    for name, extra in (("seq", []), ("par", ["--workers", "2"])):
        args = ["train-category", folder / "sub", "--category", "chair", "--parts", PARTS, *clipseg(tiny), *FAST,
                "--cache-dir", tmp_path / name, *extra]  # fmt: skip
        result = invoke(args)
        assert result.exit_code == 0, result.output + repr(result.exception)
        (entry,) = (tmp_path / name / "students").iterdir()
        students.append(load_file(entry / "student.safetensors"))
        assert json.loads((entry / "card.json").read_text())["trained_on"] == ["chair_c", "table_b"]
    assert students[0].keys() == students[1].keys()
    assert all(np.array_equal(students[0][k], students[1][k]) for k in students[0])

    reports = []
    for name, extra in (("seq", []), ("par", ["--workers", "2"])):
        args = ["evaluate", "procedural:chair,mug", "--per-category", "2", "--views", "2", "--resolution", "64",
                "--method", "vote,vote-fill", "--report", tmp_path / f"{name}.json", *extra]  # fmt: skip
        result = invoke(args)
        assert result.exit_code == 0, result.output + repr(result.exception)
        reports.append(json.loads((tmp_path / f"{name}.json").read_text()))
    assert reports[0]["results"] == reports[1]["results"] and reports[0]["summary"] == reports[1]["summary"]


def test_workers_start_and_stop_their_own_local_ray(tiny, tmp_path):
    folder = tmp_path / "in"
    rels = make_shapes(folder)
    common = ["segment", folder, "--parts", PARTS, *clipseg(tiny), *FAST, "--method", "vote-fill"]
    assert invoke([*common, "--out", tmp_path / "seq", "--cache-dir", tmp_path / "c1"]).exit_code == 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "partdistill_cli.cli", *map(str, common), "--out", str(tmp_path / "par"),
         "--cache-dir", str(tmp_path / "c2"), "--workers", "1"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "a local Ray: 1 teacher worker(s) on CPU, 1 CPUs" in " ".join(proc.stderr.split())
    same_results(tmp_path / "seq", tmp_path / "par", [r.rsplit(".", 1)[0] for r in rels])
