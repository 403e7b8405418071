"""Many shapes through one pipeline: `partdistill segment DIR | GLOB | @LIST ... --out OUT`, and the teacher
phase of `train-category` and `evaluate`.

- **Inputs** (`find_inputs`): folders (recursively, by extension), globs, `@list.txt` files (one path per line,
  relative to the list's folder), plain files. Outputs mirror the input tree under OUT: `DIR/a/b.obj` is
  written as `OUT/a/b.parts.ply`, ...
- **Resumable** (`done_before`): a shape whose outputs are complete (every file there, the labels as long as
  the result says, made from this very input with these settings) is skipped; `--overwrite` redoes it. Outputs
  are written all or nothing (`outputs.write_all`, journaled), so a run killed at any moment leaves complete
  results or none, and the next run finishes a journaled set before looking at it.
- **Fault isolation**: a shape that fails (bad file, teacher found nothing, out of memory) is reported in one
  line and recorded in `OUT/failures.json` (path, stage, error), and the batch goes on.
- **Runners** (`make_runner`): `LocalRunner` runs the stages in this process through one `Pipeline`, so the
  models load once; `parallel.RayRunner` spreads them over Ray workers. Both yield the same `Outcome`s, and
  the results are written here, by this one process.
"""

from __future__ import annotations

import glob
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from partdistill_cli.errors import TeacherError, UserError

if TYPE_CHECKING:
    from partdistill_cli.config import SegmentConfig
    from partdistill_cli.outputs import SegmentResult
    from partdistill_cli.parts import PartList
    from partdistill_cli.pipeline import Pipeline, TeachResult
    from partdistill_cli.progress import Level, Reporter
    from partdistill_cli.shapes import Shape
    from partdistill_cli.store import KnowledgeStore
    from partdistill_cli.teachers.base import Teacher

FAILURES_NAME = "failures.json"
LOCK_NAME = ".partdistill-batch.lock"
GLOB_CHARS = "*?["
# Stages a shape goes through, as `Outcome.stage` and failures.json name them.
STAGES = ("check", "load", "teach", "label", "write")


class InputError(UserError, ValueError):
    """The shapes asked for cannot be found or would overwrite each other's outputs."""


class BatchError(UserError):
    """Some shapes of a batch failed (each is recorded in OUT/failures.json)."""


# ---- inputs ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchInput:
    """One shape of a batch: a shape file or a PartNet-Mobility object folder.

    Attributes:
        path: the file or folder (absolute; it need not exist: a listed file that is missing fails at its load).
        rel: its place under the inputs' common root; its outputs go to `OUT / rel.parent`, named `rel.stem`.
    """

    path: Path
    rel: Path

    @property
    def name(self) -> str:
        """The stem of its outputs: the file's stem, or an object folder's name (as `datasets.load_source` names
        its shape)."""
        return self.path.name if self.path.is_dir() else self.path.stem

    def out_dir(self, out: Path) -> Path:
        return Path(out) / self.rel.parent


def is_batch(sources: Sequence[str | Path]) -> bool:
    """Whether `segment`'s arguments name a batch: several of them, or one folder (not a PartNet-Mobility object
    folder, which is one shape), glob or @list."""
    if len(sources) != 1:
        return True
    from partdistill_cli.datasets import is_object_folder

    source = str(sources[0])
    if source.startswith("@"):
        return True
    if Path(source).is_dir():
        return not is_object_folder(source)  # a PartNet-Mobility object folder is one shape
    return _is_glob(source) and not Path(source).exists()


def _is_glob(source: str) -> bool:
    return any(c in source for c in GLOB_CHARS)


def _glob_root(pattern: str) -> Path:
    """The folder a glob pattern searches under: its leading path parts without wildcards."""
    fixed = []
    for part in Path(pattern).parts:
        if _is_glob(part):
            break
        fixed.append(part)
    return Path(os.path.abspath(Path(*fixed) if fixed else Path(".")))


def _expand(source: str, out: Path) -> tuple[list[Path], Path]:
    """The files one argument names (absolute, unresolved: a link keeps its place in the tree), and the folder
    they mirror from."""
    from partdistill_cli.datasets import is_object_folder
    from partdistill_cli.shapes import is_shape_file

    if source.startswith("@"):
        listing = Path(source[1:])
        try:
            lines = listing.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{listing}: cannot read the list of shapes ({exc.strerror or exc})") from exc
        entries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        if not entries:
            raise InputError(f"{listing}: lists no shapes (one path per line; # starts a comment)")
        files = [Path(os.path.abspath(listing.parent / entry)) for entry in entries]
        return files, Path(os.path.commonpath([f.parent for f in files]))
    path = Path(source)
    if is_object_folder(path):
        return [Path(os.path.abspath(path))], Path(os.path.abspath(path.parent))
    if path.is_dir():
        files = [Path(os.path.abspath(f)) for f in _shapes_in(path, out)]
        if not files:
            raise InputError(f"{path}: is a folder holding no shape files nor PartNet-Mobility object folders")
        return files, Path(os.path.abspath(path))
    if path.exists() or path.is_symlink():
        return [Path(os.path.abspath(path))], Path(os.path.abspath(path.parent))
    if _is_glob(source):
        skip = Path(out).resolve()
        matches = [Path(os.path.abspath(m)) for m in sorted(glob.glob(source, recursive=True))]
        files = [m for m in matches if ((m.is_file() and is_shape_file(m)) or is_object_folder(m))
                 and not m.resolve().is_relative_to(skip)]  # fmt: skip
        if not files:
            raise InputError(f"{source}: matches no shape files")
        return files, _glob_root(source)
    raise InputError(f"{source}: no such file or folder")


def _shapes_in(folder: Path, out: Path) -> list[Path]:
    """The shapes under `folder`: its shape files (`shapes.find_shape_files`) and PartNet-Mobility object folders
    (each one shape: the part meshes inside are not shapes of their own), sorted."""
    from partdistill_cli.datasets import is_object_folder
    from partdistill_cli.shapes import find_shape_files

    skip = Path(out).resolve()
    objects: list[Path] = []
    for sub in sorted(p for p in folder.rglob("*") if p.is_dir()):
        inside = sub.relative_to(folder).parts
        if any(part.startswith(".") for part in inside) or sub.resolve().is_relative_to(skip):
            continue
        if not any(sub.is_relative_to(o) for o in objects) and is_object_folder(sub):
            objects.append(sub)
    files = [f for f in find_shape_files(folder, skip=out) if not any(f.is_relative_to(o) for o in objects)]
    return sorted(files + objects)


def find_inputs(sources: Sequence[str | Path], out: Path) -> list[BatchInput]:
    """The shape files `sources` name (folders, globs, @lists, files), each once, in order, with their place
    under the common root of all of them. Raises InputError when a source names nothing, or when two files
    would write the same outputs (`a.obj` and `a.ply` in one folder)."""
    files: list[Path] = []
    roots: list[Path] = []
    for source in sources:
        found, root = _expand(str(source), Path(out))
        files += found
        roots.append(root)
    root = Path(os.path.commonpath(roots))
    inputs = [BatchInput(f, f.relative_to(root)) for f in dict.fromkeys(files)]
    seen: dict[Path, BatchInput] = {}
    for item in inputs:
        key = item.rel.parent / item.name
        if key in seen:
            raise InputError(
                f"{seen[key].path} and {item.path} would write the same outputs ({Path(out) / key}.*): rename one "
                "or segment them in separate runs"
            )
        seen[key] = item
    return inputs


# ---- jobs and runners ----------------------------------------------------------------------------------------


@dataclass
class Job:
    """One shape's way through the stages.

    Attributes:
        index: its place in the caller's list.
        source: a shape file to load, or a loaded `Shape`.
        parts: the part list asked for.
        category: the object category (prompts, student lookup), or None.
        name: how the shape is named in progress lines.
        segment: go on to label the shape and make its `SegmentResult`; off: stop after teaching.
        teacher: a teacher for this shape alone (the simulated one); None: the runner's.
        need_views: keep the teacher's views and detections (explain sheets, saved knowledge).
        cache: use the knowledge store (off where a teacher's name does not identify its answers).
    """

    index: int
    source: Path | Shape
    parts: PartList
    category: str | None
    name: str
    segment: bool = True
    teacher: Teacher | None = None
    need_views: bool = False
    cache: bool = True


@dataclass
class Outcome:
    """How a job ended: its `value` (a `SegmentResult`, or a `TeachResult` for a teach-only job), or the
    `error` raised at `stage`; `seconds` of work; `training` says how the student trained, when one did."""

    job: Job
    value: SegmentResult | TeachResult | None = None
    error: BaseException | None = None
    stage: str = ""
    seconds: float = 0.0
    training: str | None = None


def error_text(exc: BaseException) -> str:
    """One line for an error: a UserError's own message, else its type and first line."""
    if isinstance(exc, UserError):
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


class LocalRunner:
    """Every stage in this process, one shape after another, through one `Pipeline` (its teacher is built on the
    first shape that needs it and kept: the models load once)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    @property
    def teacher_name(self) -> str:
        """The name of the pipeline's teacher (building it: its models load)."""
        return self.pipeline.teacher.name

    def __enter__(self) -> LocalRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def run(self, jobs: Iterable[Job], level: Level | None = None) -> Iterator[Outcome]:
        """Run `jobs` in order, yielding each one's outcome when it ends; an error ends only its own job."""
        for job in jobs:
            yield self._one(job, level)

    def _one(self, job: Job, level: Level | None) -> Outcome:
        p = self.pipeline
        started = time.perf_counter()
        stage = "load"
        p.progress.last_training = None
        try:
            if level is not None:
                level.start(job.name, "loading")
            shape = p.load(job.source) if isinstance(job.source, (str, Path)) else job.source
            stage = "teach"
            if level is not None:
                level.stage("teaching")
            taught = p.teach(
                shape, job.parts, job.category, teacher=job.teacher, need_views=job.need_views, cache=job.cache
            )
            if not job.segment:
                return Outcome(job, taught, seconds=time.perf_counter() - started)
            stage = "label"
            if level is not None:
                level.stage("labelling")
            labels = p.label(shape, taught.knowledge, job.category, teacher_name=taught.teacher)
            input_path = job.source if isinstance(job.source, (str, Path)) else None
            result = p.result(shape, labels, taught, job.category, input_path)
            return Outcome(job, result, seconds=time.perf_counter() - started, training=p.progress.last_training)
        except TeacherError:
            raise  # a teacher that cannot be built fails every shape alike: the run stops with its one message
        except Exception as exc:  # one shape's failure, whatever it is, must not end the batch
            return Outcome(job, error=exc, stage=stage, seconds=time.perf_counter() - started)


def check_cluster_options(workers: int | None, address: str | None) -> None:
    """InputError when both `--workers` and `--ray-address` are given."""
    if workers is not None and address is not None:
        raise InputError("--workers starts a local Ray cluster, --ray-address joins a running one: give one of them")


def make_runner(
    config: SegmentConfig,
    *,
    workers: int | None = None,
    address: str | None = None,
    store: KnowledgeStore | None = None,
    progress: Reporter | None = None,
    pipeline: Pipeline | None = None,
) -> Any:
    """The runner for `config`: a `parallel.RayRunner` when `workers` (start a local Ray with that many CPUs) or
    `address` (join a running Ray cluster) is given, else a `LocalRunner` on `pipeline` (default: a new quiet
    pipeline reporting trainings to `progress`). Use it as a context manager: a local Ray is stopped on exit."""
    if workers is not None or address is not None:
        from partdistill_cli.parallel import RayRunner

        return RayRunner(config, workers=workers, address=address, store=store, progress=progress)
    if pipeline is None:
        from partdistill_cli.pipeline import Pipeline

        pipeline = Pipeline(config, verbose=False, store=store, progress=progress)
    return LocalRunner(pipeline)


def teach_all(runner: Any, jobs: list[Job], level: Level | None = None) -> list[TeachResult]:
    """The `TeachResult` of every teach-only job, in the order of `jobs`; the first failure is raised as it was
    (train-category and evaluate need every shape's knowledge)."""
    results: list[Any] = [None] * len(jobs)
    for outcome in runner.run(jobs, level):
        if outcome.error is not None:
            raise outcome.error
        results[outcome.job.index] = outcome.value
        if level is not None:
            level.done(outcome.job.name, outcome.seconds, f"{outcome.value.knowledge.n_units} pieces of knowledge")
    return results


# ---- resuming ------------------------------------------------------------------------------------------------


def expected_meta(config: SegmentConfig, parts: PartList, category: str | None) -> dict:
    """What a result made by this run records (`labels.json`'s parts and meta), to tell an earlier run's result
    from one made with other settings. The teacher is told by its kind: its full name needs its models."""
    return {
        "parts": parts.names,
        "teacher": config.teacher,
        "method": config.method,
        "category": category,
        "render": config.render.to_dict(),
        "points": config.points,
        "seed": config.seed,
        "other": parts.background,
    }


def done_before(paths: dict[str, Path], input_path: Path, expected: dict, overwrite: bool) -> bool:
    """Whether the outputs at `paths` (see `outputs.output_paths`) are a complete result of `input_path` made
    with the `expected` settings (`expected_meta`): the run skips it. False when none of them exists, or with
    `overwrite` (the run redoes it). An interrupted commit in their folder is completed first. Raises
    OutputError (the shape fails, nothing is replaced) for outputs that are incomplete, unreadable, or of
    another input or settings."""
    import numpy as np

    from partdistill_cli.io_utils import OutputError, file_sha256
    from partdistill_cli.outputs import finish_writes

    folder = next(iter(paths.values())).parent
    if folder.is_dir():
        finish_writes(folder)
    present = [p for p in paths.values() if p.exists() or p.is_symlink()]
    if not present or overwrite:
        return False
    redo = "pass --overwrite to redo it"
    missing = [p.name for p in paths.values() if p not in present]
    if missing:
        raise OutputError(f"{present[0]}: an earlier result lacks {', '.join(missing)}; {redo}")
    try:
        doc = json.loads(paths["json"].read_text(encoding="utf-8"))
        labels = np.load(paths["npy"], allow_pickle=False)
        count = int(doc["count"])
        meta = doc.get("meta") or {}
        found = {k: doc["parts"] if k == "parts" else meta.get(k) for k in expected}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise OutputError(f"{paths['json']}: cannot read the earlier result ({error_text(exc)}); {redo}") from exc
    if labels.shape != (count,) or len(doc.get("labels") or []) != count:
        raise OutputError(f"{paths['npy']}: its labels do not match {paths['json'].name}; {redo}")
    if input_path.is_file() and doc.get("input_sha256") not in (None, file_sha256(input_path)):
        raise OutputError(f"{paths['json']}: was made from another version of {input_path}; {redo}")
    found["teacher"] = str(found["teacher"] or "").split("(")[0]
    differ = [k for k in expected if found[k] != expected[k]]
    if differ:
        shown = "; ".join(f"{k} {found[k]!r}, now {expected[k]!r}" for k in differ)
        raise OutputError(f"{paths['json']}: was made with other settings ({shown}); {redo}")
    return True


def remove_stale_temporaries(paths: Iterable[Path]) -> None:
    """Delete the temporaries a killed run left for `paths` (`write_all` names them `.NAME.*.part.EXT`). Only for
    the one process that writes these paths, after their folder's journals were completed."""
    for path in paths:
        for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.part{glob.escape(path.suffix)}"):
            tmp.unlink(missing_ok=True)


# ---- the batch -----------------------------------------------------------------------------------------------


@dataclass
class Failure:
    """A shape that failed: its file, the stage (`STAGES`) and the one-line error."""

    path: str
    stage: str
    error: str


@dataclass
class BatchReport:
    """What a batch did: shapes `done` (name, seconds), `skipped` (done before), `failed`, and the wall time."""

    total: int
    done: list[tuple[str, float]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class BatchOutputs:
    """What each shape of a batch writes: into `out` (mirroring the inputs), which optional files, and whether
    existing results are redone."""

    out: Path
    overwrite: bool = False
    preview: bool = False
    explain: bool = False
    html: bool = False


def _write_failures(out: Path, failures: list[Failure]) -> None:
    from dataclasses import asdict

    from partdistill_cli.io_utils import write_text

    write_text(out / FAILURES_NAME, json.dumps([asdict(f) for f in failures], indent=1) + "\n")


class _OutLock:
    """An exclusive lock on OUT for the run: two batches writing one folder would redo and race on each other's
    shapes. flock is released by the kernel when the process ends, however it ends. The lock file is removed
    when the run ends (a run that wrote nothing leaves no folder behind), so a run that opened it just before
    checks, once it holds the lock, that it still is the file at that path."""

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / LOCK_NAME
        self._file = None

    def __enter__(self) -> _OutLock:
        import fcntl

        while True:
            file = open(self.path, "a+")  # noqa: SIM115 (held open for the lock's life)
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                file.close()
                raise InputError(
                    f"{self.path.parent}: another partdistill batch is writing there; wait for it or pass another --out"
                ) from exc
            try:
                current = os.stat(self.path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(file.fileno()).st_ino:
                self._file = file
                return self
            file.close()  # the run that held it removed it meanwhile: lock the new one

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)
        self._file.close()


def segment_batch(
    config: SegmentConfig,
    inputs: list[BatchInput],
    outputs: BatchOutputs,
    parts: str | list[str] | None = None,
    category: str | None = None,
    *,
    workers: int | None = None,
    address: str | None = None,
    progress: Reporter | None = None,
) -> BatchReport:
    """Segment every shape of `inputs` into `outputs.out` (mirroring their tree), models loaded once.

    Shapes done before are skipped, failures are recorded in OUT/failures.json (the failures of the last run:
    an earlier run's file is removed when this one starts, as its failed shapes are tried again) and the batch
    goes on. Returns the report; the caller decides the exit status.
    """
    from partdistill_cli.io_utils import check_writable_dir, make_dirs
    from partdistill_cli.outputs import output_paths
    from partdistill_cli.parts import PartList
    from partdistill_cli.pipeline import normalise_category
    from partdistill_cli.progress import Reporter

    progress = progress if progress is not None else Reporter(announce_training=False)
    category = normalise_category(category)
    part_list = PartList.parse(parts, category, config.other)
    out = check_writable_dir(outputs.out)
    make_dirs(out)
    expected = expected_meta(config, part_list, category)
    report = BatchReport(len(inputs))
    started = time.perf_counter()

    def targets(item: BatchInput) -> dict[str, Path]:
        return output_paths(item.out_dir(out), item.name, outputs.preview, html=outputs.html, explain=outputs.explain)

    def fail(item: BatchInput, stage: str, exc: BaseException, say: bool) -> str:
        report.failed.append(Failure(str(item.path), stage, error_text(exc)))
        _write_failures(out, report.failed)
        note = f"failed at {stage}: {error_text(exc)}"
        if say:
            progress.say(f"[red]{item.rel}[/]: {note}")
        return note

    with _OutLock(out):
        (out / FAILURES_NAME).unlink(missing_ok=True)
        todo: list[BatchInput] = []
        for item in inputs:
            try:
                if done_before(targets(item), item.path, expected, outputs.overwrite):
                    report.skipped.append(str(item.rel))
                else:
                    todo.append(item)
            except UserError as exc:
                fail(item, "check", exc, say=True)
        if report.skipped:
            progress.say(
                f"{len(report.skipped)} of {len(inputs)} shapes were segmented before with these settings: skipped "
                "(--overwrite redoes them)"
            )
        jobs = [Job(i, item.path, part_list, category, str(item.rel), need_views=outputs.explain)
                for i, item in enumerate(todo)]  # fmt: skip
        if jobs:
            with make_runner(config, workers=workers, address=address, progress=progress) as runner, progress:
                level = progress.level("shapes", len(jobs))
                for outcome in runner.run(jobs, level):
                    item = todo[outcome.job.index]
                    # Live, the bars show no line per shape: a failure gets its own line above them.
                    if outcome.error is not None:
                        note = fail(item, outcome.stage, outcome.error, say=progress.live)
                    else:
                        try:
                            remove_stale_temporaries(targets(item).values())
                            outcome.value.save(
                                item.out_dir(out),
                                overwrite=outputs.overwrite,
                                preview=outputs.preview,
                                explain=outputs.explain,
                                html=outputs.html,
                            )
                        except Exception as exc:  # a failed write (disk full, a folder in the way) ends this shape only
                            note = fail(item, "write", exc, say=progress.live)
                        else:
                            report.done.append((str(item.rel), outcome.seconds))
                            note = "done" + (f", {outcome.training}" if outcome.training else "")
                    level.done(str(item.rel), outcome.seconds, note)
    report.seconds = time.perf_counter() - started
    return report


def segment_many(
    sources: Sequence[str | Path],
    config: SegmentConfig,
    outputs: BatchOutputs,
    parts: str | list[str] | None = None,
    category: str | None = None,
    *,
    workers: int | None = None,
    address: str | None = None,
) -> BatchReport:
    """`partdistill segment` on many shapes: find them, segment them (`segment_batch`), print the summary table.
    Raises BatchError (exit status 1) when any shape failed, InputError before any work when `sources` name
    nothing or there is no `outputs.out`."""
    from partdistill_cli.progress import Reporter
    from partdistill_cli.store import check_cache_root

    if outputs.out is None:
        raise InputError("segmenting many shapes needs --out DIR (their outputs mirror the input folders there)")
    check_cluster_options(workers, address)
    check_cache_root(config.cache_dir)
    inputs = find_inputs(sources, outputs.out)
    progress = Reporter(announce_training=False)
    report = segment_batch(
        config, inputs, outputs, parts, category, workers=workers, address=address, progress=progress
    )
    print_summary(report, outputs.out, progress)
    if report.failed:
        raise BatchError(
            f"{len(report.failed)} of {report.total} shapes failed; each is listed in {outputs.out / FAILURES_NAME}"
        )
    return report


def print_summary(report: BatchReport, out: Path, progress: Reporter) -> None:
    """The table that ends a batch: shapes done, skipped and failed, with their time."""
    from rich.table import Table

    from partdistill_cli.console import counted
    from partdistill_cli.progress import seconds_text

    if not progress.enabled:
        return
    table = Table(title=f"{counted(report.total, 'shape')} in {seconds_text(report.seconds)}")
    table.add_column("outcome")
    table.add_column("shapes", justify="right")
    table.add_column("time", justify="right")
    mean = sum(s for _, s in report.done) / max(len(report.done), 1)
    table.add_row("done", str(len(report.done)), f"{seconds_text(mean)} per shape" if report.done else "")
    table.add_row("skipped (done before)", str(len(report.skipped)), "")
    table.add_row("failed", str(len(report.failed)), f"see {Path(out) / FAILURES_NAME}" if report.failed else "")
    progress.console.print(table)


__all__ = [
    "BatchError",
    "BatchInput",
    "BatchOutputs",
    "BatchReport",
    "Failure",
    "InputError",
    "Job",
    "LocalRunner",
    "Outcome",
    "done_before",
    "find_inputs",
    "is_batch",
    "make_runner",
    "segment_batch",
    "segment_many",
    "teach_all",
]
