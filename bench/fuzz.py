"""Long fuzz run of the shape loader (issue 13): byte flips and truncations of one valid file per format and
variant (tests/corpus/make_corpus.py), each loaded in a worker process with a time limit.

Prints how many files loaded, failed with a one-line error, raised a traceback, hung or crashed the worker,
and lists every defect (tracebacks, hangs, crashes, errors that do not name their file or span lines, Python
warnings, library output on the console) with its file, which is kept under --keep for a look.

Usage: python bench/fuzz.py [--per-seed 60] [--seed 1] [--timeout 20] [--keep DIR]
(18 seeds x 60 = 1,080 files, about 5 s on 2 cores; --per-seed 300 gives 5,400 in about 10 s.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "corpus")]

from fuzz import Fuzzer, mutants  # noqa: E402
from make_corpus import valid_seeds  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-seed", type=int, default=60, help="mutated files per seed file")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the mutations")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds a file may take before it is a hang")
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the files in (default: a temp dir)")
    args = parser.parse_args()

    folder = args.keep or Path(tempfile.mkdtemp(prefix="partdistill-fuzz-"))
    seed_dir = folder / "seeds"
    seed_dir.mkdir(parents=True, exist_ok=True)
    seeds = []
    for name, write in valid_seeds().items():
        write(seed_dir / name)
        seeds.append(seed_dir / name)
    files = mutants(seeds, args.per_seed, folder / "mutants", args.seed)
    started = time.perf_counter()
    with Fuzzer(timeout=args.timeout) as fuzzer:
        report = fuzzer.run(files)
    elapsed = time.perf_counter() - started
    counts = report.counts
    print(f"{len(files)} files from {len(seeds)} seeds (seed {args.seed}) in {elapsed:.0f} s, kept in {folder}")
    print(", ".join(f"{k} {counts[k]}" for k in ("ok", "error", "traceback", "hang", "crash")))
    print(", ".join(f"{k} {counts[k]}" for k in ("unnamed", "multiline", "warned", "noisy")))
    slowest = max(report.results, key=lambda r: r.seconds)
    print(f"slowest file: {slowest.path.name} ({slowest.seconds:.1f} s)")
    for r in report.defects():
        detail = r.message or ", ".join(r.warnings)
        print(f"  {r.outcome:9} {r.path.name}: {detail.splitlines()[0][:200] if detail else ''}")
        if r.warnings and r.outcome != "traceback":
            print(f"            warnings: {'; '.join(r.warnings)[:200]}")
        if r.noise:
            print(f"            printed: {' / '.join(r.noise)[:200]}")
    return 1 if report.defects() else 0


if __name__ == "__main__":
    sys.exit(main())
