"""A bounded, seeded fuzz run of the shape loader (bench/fuzz.py runs the long one): byte flips and truncations
of one valid file per format and variant, each loaded in a worker process with a time limit."""

import pytest

from corpus.fuzz import Fuzzer, Report, Result, mutants
from corpus.make_corpus import valid_seeds

PER_SEED = 100  # x 18 seed files = 1,800 files, ~10 s here


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seeds")
    paths = []
    for name, write in valid_seeds().items():
        write(folder / name)
        paths.append(folder / name)
    return paths


def test_every_seed_loads(seeds):
    with Fuzzer() as fuzzer:
        report = fuzzer.run(seeds)
    assert report.counts["ok"] == len(seeds), [(r.path.name, r.message) for r in report.results]
    assert not report.defects()


def test_fuzzed_files_give_one_line_errors_and_no_traceback_hang_warning_or_noise(seeds, tmp_path):
    files = mutants(seeds, PER_SEED, tmp_path, seed=0)
    suffixes = {p.suffix for p in files}
    assert suffixes == {".obj", ".ply", ".glb", ".gltf", ".off", ".stl", ".xyz", ".txt", ".npy", ".npz", ".pcd"}
    with Fuzzer(timeout=30) as fuzzer:
        report = fuzzer.run(files)
    counts = report.counts
    assert counts["ok"] + counts["error"] == len(files), counts
    assert counts["ok"] > 0 and counts["error"] > 0, counts  # the mutations break files, and not all of them
    assert not report.defects(), "\n".join(
        f"{r.outcome} {r.path.name}: {(r.message or r.printed or ', '.join(r.warnings))[:300]}"
        for r in report.defects()
    )


def test_mutants_are_seeded(seeds, tmp_path):
    a = mutants(seeds[:3], 4, tmp_path / "a", seed=7)
    b = mutants(seeds[:3], 4, tmp_path / "b", seed=7)
    c = mutants(seeds[:3], 4, tmp_path / "c", seed=8)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert [p.read_bytes() for p in a] != [p.read_bytes() for p in c]


def test_a_file_that_takes_too_long_is_a_hang_and_the_worker_restarts(seeds):
    with Fuzzer(timeout=0.0) as fuzzer:
        fuzzer.run(seeds[:1])  # starts the worker
        hung = fuzzer.load(seeds[1])
        fuzzer.timeout = 30
        after = fuzzer.load(seeds[1])
    assert hung.outcome == "hang" and after.outcome == "ok"


def test_the_report_counts_each_kind_of_defect(tmp_path):
    p = tmp_path / "x.obj"
    results = [
        Result(p, "ok"),
        Result(p, "error", f"{p}: fine"),
        Result(p, "error", "x.obj: only the stem"),
        Result(p, "error", f"{p}: two\nlines"),
        Result(p, "traceback", "KeyError: 1"),
        Result(p, "hang"),
        Result(p, "ok", warnings=["RuntimeWarning: overflow"]),
        Result(p, "ok", printed="warning: ours\n[Open3D WARNING] theirs\n"),
        Result(p, "ok", printed="warning: ours only\n"),
    ]
    report = Report(results)
    counts = report.counts
    assert (counts["ok"], counts["error"], counts["traceback"], counts["hang"]) == (4, 3, 1, 1)
    assert (counts["unnamed"], counts["multiline"], counts["warned"], counts["noisy"]) == (1, 1, 1, 1)
    assert report.defects() == results[2:8]
