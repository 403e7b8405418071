"""Every bad input of tests/corpus through every command that reads files: one `error:` line naming the file,
exit 1, no traceback, no warning, and nothing written anywhere (inside --out or outside it)."""

import contextlib
import io
import json
import re
import sys

import numpy as np
import pytest

from partdistill_cli import cli

from corpus.make_corpus import BadInput, bad_shapes

CASES = bad_shapes()
NO_TEACHER = ["--teacher", "clipseg", "--clipseg", "/nonexistent/clipseg"]


def run_main(*args) -> tuple[int, str]:
    """Run the console entry point in this process: (exit code, stderr). An exception that escapes it (a
    traceback for a user) fails the test."""
    err = io.StringIO()
    argv = ["partdistill", *map(str, args)]
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
        pytest.MonkeyPatch.context() as mp,
    ):
        mp.setattr(sys, "argv", argv)
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code
    return code, err.getvalue()


def snapshot(root) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _result_doc(case: BadInput, path) -> dict:
    """A segment result whose recorded input is the bad file (so that export has to load it)."""
    return {
        "format": "partdistill-segmentation",
        "version": 1,
        "name": "bad",
        "input": str(path),
        "input_sha256": None,
        "kind": "mesh" if case.is_mesh else "points",
        "parts": ["a"],
        "colors": [[1, 2, 3]],
        "labels": [0, 0, 0],
        "confidence": [1.0, 1.0, 1.0],
    }


def command_args(command: str, case: BadInput, work) -> list:
    """Write the bad file where `command` reads it from and return the command line."""
    folder = work / "in"
    folder.mkdir()
    path = folder / case.name
    case.write(path)
    out = work / "out"
    if command == "segment":
        return ["segment", path, "--parts", "a,b", *NO_TEACHER, "--out", out, "--cache-dir", work / "cache"]
    if command == "render":
        return ["render", path, "--out", out]
    if command == "evaluate":
        (folder / "meta.json").write_text(json.dumps({"category": "thing", "parts": ["a", "b"]}))
        labels = path.with_name(path.stem + (".face_labels.npy" if case.is_mesh else ".point_labels.npy"))
        np.save(labels, np.zeros(case.faces, dtype=np.int64))
        return ["evaluate", folder, "--format", "labeled-mesh", "--out", work / "report.json"]
    if command == "train-category":
        return ["train-category", folder, "--category", "thing", "--parts", "a,b", *NO_TEACHER,
                "--cache-dir", work / "cache", "--out", work / "student"]  # fmt: skip
    result = work / "result"
    result.mkdir()
    (result / "bad.labels.json").write_text(json.dumps(_result_doc(case, path)))
    return ["export", result / "bad.labels.json", "--format", "ply", "--out", out]


@pytest.mark.parametrize(
    ("case", "command"),
    [pytest.param(case, command, id=f"{case.name}-{command}") for case in CASES for command in case.commands],
)
def test_bad_input_gives_one_error_line_and_writes_nothing(case, command, tmp_path, monkeypatch):
    monkeypatch.setenv("PARTDISTILL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    args = command_args(command, case, tmp_path)
    before = snapshot(tmp_path)
    code, stderr = run_main(*args)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 1, stderr
    assert "Traceback" not in stderr and "Warning" not in stderr, stderr
    assert [line for line in lines if line.startswith("error:")] == [lines[-1]], stderr
    assert re.search(case.needle, lines[-1].lower()), stderr
    assert case.name in lines[-1], f"the error does not name the file: {stderr}"
    assert snapshot(tmp_path) == before, "files were written"


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 25
    assert len({c.name for c in CASES}) == len(CASES)
