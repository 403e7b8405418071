"""Seeded fuzzing of the shape loader: byte flips and truncations of valid files, each loaded with a time limit.

`mutants(seeds, per_seed, seed)` writes mutated copies of the seed files (see `make_corpus.valid_seeds`);
`Fuzzer` loads files one by one in a worker process (kept alive between files, so imports are paid once) and
sorts each into: `ok` (loaded), `error` (a one-line `UserError`, as the CLI prints it), `traceback` (any other
exception: a bug), `hang` (no answer within the time limit; the worker is killed and restarted) or `crash`
(the worker died). A file whose error message does not name it, or spans several lines, is counted in
`unnamed` / `multiline` as well; files that raised Python warnings are counted in `warned`, files during
whose loading a library printed to the console (not our own `warning:` lines) in `noisy`.

Used by tests/test_fuzz.py (a bounded run) and bench/fuzz.py (a long run).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

OUTCOMES = ("ok", "error", "traceback", "hang", "crash")

# The worker: one JSON line per path read from stdin. Kept as source text so that the worker is a fresh
# interpreter (a hang or a crash in it cannot take the caller down).
_WORKER = r"""
import json, os, sys, tempfile, traceback, warnings

# Answers go to the original stdout. Whatever else is printed while a file loads (by us or by a library at
# the C level, as open3d does) is caught in a file and sent back with the answer.
answers = os.fdopen(os.dup(1), "w")
printed = tempfile.TemporaryFile()
os.dup2(printed.fileno(), 1)
os.dup2(printed.fileno(), 2)
from partdistill_cli.errors import UserError
from partdistill_cli.shapes import load_shape

print(json.dumps({"ready": True}), file=answers, flush=True)
for line in sys.stdin:
    path = line.rstrip("\n")
    printed.seek(0)
    printed.truncate()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            load_shape(path, n_points=256, seed=0)
            answer = {"outcome": "ok"}
        except UserError as exc:
            answer = {"outcome": "error", "message": str(exc)}
        except Exception as exc:
            answer = {"outcome": "traceback", "message": f"{type(exc).__name__}: {exc}",
                      "traceback": traceback.format_exc()}
    sys.stdout.flush()
    sys.stderr.flush()
    printed.seek(0)
    answer["printed"] = printed.read().decode("utf-8", "replace")
    answer["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
    print(json.dumps(answer), file=answers, flush=True)
"""


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One seeded mutation of `data`: random bytes overwritten (1 to 16 of them, or a run of up to 64), a
    truncation, or both."""
    buf = bytearray(data)
    kind = rng.choice(["flip", "run", "truncate", "flip+truncate"])
    if kind in ("flip", "flip+truncate"):
        for pos in rng.integers(0, len(buf), size=int(rng.integers(1, 17))):
            buf[pos] = int(rng.integers(0, 256))
    if kind == "run":
        start = int(rng.integers(0, len(buf)))
        length = min(int(rng.integers(1, 65)), len(buf) - start)
        buf[start : start + length] = rng.bytes(length)
    if kind in ("truncate", "flip+truncate"):
        buf = buf[: int(rng.integers(1, len(buf)))]
    return bytes(buf)


def mutants(seeds: list[Path], per_seed: int, folder: Path, seed: int = 0) -> list[Path]:
    """Write `per_seed` mutated copies of each seed file into `folder` (names keep the seed's extension).
    The same `seed` gives the same files."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for s, path in enumerate(sorted(seeds)):
        data = path.read_bytes()
        for i in range(per_seed):
            rng = np.random.default_rng([seed, s, i])
            target = folder / f"{path.stem}.{i:04d}{path.suffix}"
            target.write_bytes(mutate(data, rng))
            out.append(target)
    return out


@dataclass
class Result:
    """What loading one file gave."""

    path: Path
    outcome: str
    message: str = ""
    traceback: str = ""
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    printed: str = ""

    @property
    def noise(self) -> list[str]:
        """Lines printed while loading other than our own `warning:` lines (a library talking to the user)."""
        return [line for line in self.printed.splitlines() if line.strip() and not line.startswith("warning:")]


@dataclass
class Report:
    """Outcome counts over a fuzz run, and the files behind every count that is a defect."""

    results: list[Result] = field(default_factory=list)

    @property
    def counts(self) -> Counter:
        c = Counter({k: 0 for k in OUTCOMES})
        c.update(r.outcome for r in self.results)
        c["unnamed"] = len(self.unnamed)
        c["multiline"] = sum("\n" in r.message for r in self.results if r.outcome == "error")
        c["warned"] = sum(bool(r.warnings) for r in self.results)
        c["noisy"] = sum(bool(r.noise) for r in self.results)
        return c

    @property
    def unnamed(self) -> list[Result]:
        """Errors whose message does not name the file (by its path)."""
        return [r for r in self.results if r.outcome == "error" and str(r.path) not in r.message]

    def defects(self) -> list[Result]:
        """Every result that is a defect: a traceback, hang or crash, an error not naming its file or spanning
        several lines, a Python warning, or a library printing to the console."""
        return [
            r
            for r in self.results
            if r.outcome in ("traceback", "hang", "crash")
            or (r.outcome == "error" and (str(r.path) not in r.message or "\n" in r.message))
            or r.warnings
            or r.noise
        ]


class Fuzzer:
    """Loads files in a separate worker process, at most `timeout` seconds each."""

    def __init__(self, timeout: float = 20.0, start_timeout: float = 120.0):
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Fuzzer:
        return self

    def __exit__(self, *exc) -> None:
        self._stop()

    def _start(self) -> None:
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        if self._answer(self.start_timeout) is None:
            self._stop()
            raise RuntimeError("the fuzz worker did not start")

    def _stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def _answer(self, timeout: float) -> dict | None:
        """The worker's next JSON line, or None if it gave none within `timeout` seconds (or died)."""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def load(self, path: Path) -> Result:
        """Load one file in the worker; a worker that hangs is killed, one that dies is restarted."""
        if self.proc is None:
            self._start()
        started = time.perf_counter()
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        answer = self._answer(self.timeout)
        seconds = time.perf_counter() - started
        if answer is None:
            outcome = "hang" if self.proc.poll() is None else "crash"
            self._stop()
            return Result(path, outcome, seconds=seconds)
        message, trace = answer.get("message", ""), answer.get("traceback", "")
        return Result(path, answer["outcome"], message, trace, answer["warnings"], seconds, answer["printed"])

    def run(self, files: list[Path]) -> Report:
        report = Report()
        for path in files:
            report.results.append(self.load(path))
        return report
