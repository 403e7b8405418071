"""The stages of many shapes on a Ray cluster: `--workers N` (a local Ray started and stopped for the run) or
`--ray-address ADDR` (a running cluster). `batch.make_runner` builds a `RayRunner`; it yields the same
`batch.Outcome`s as the `LocalRunner`, and the results are written by the driver alone (`batch`), atomically.

Layout on the cluster:

- **Teacher actors** (`TeacherWorker`) hold a pipeline whose teacher is loaded once and answer `detect`. With GPUs
  (and a device that allows them) there is one per GPU, each in its own placement-group bundle of one GPU, so
  two never share a card; the bundle's other half-GPU runs distillation tasks beside it. Without GPUs there is
  one CPU actor per CPU, as the teacher is most of a shape's work there (each holds a copy of the models).
- **Tasks**: `load_stage` (file -> Shape, and the knowledge cache looked up), `render_stage`, `lift_stage`
  (knowledge, kept in the shared cache), `label_stage` (votes or a distilled student, and the result),
  `teach_stage` (all of teach for a per-shape teacher: the simulated one). With GPUs, rendering runs in the
  teacher actor instead, as the renderer may need the card the actor holds.
- **The driver** keeps a bounded number of shapes in flight and submits each shape's next stage when the
  previous one ends (`ray.wait`): memory stays bounded for 10,000 shapes, a failure is pinned to its shape and
  stage, cache hits skip the teacher, and progress is per shape.

Why Ray core and not Ray Data's `map_batches` with an actor pool: a data set streams homogeneous rows through
fixed stages, whereas here each shape branches (cached knowledge skips render and teacher; a failed shape must
leave the others running and be reported with its stage), and outputs must be written once, by one process, as
shapes finish. Tasks and actors express that directly; Ray Data would also pull in pandas and pyarrow.

Same answers: every worker runs torch with the driver's thread count (a different count changes float sums in
the last bit, and so labels), and the seeds travel in the config, so labels equal the sequential run's bit for
bit on the same kind of device.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from partdistill_cli.batch import Job, Outcome
from partdistill_cli.device import DeviceError
from partdistill_cli.errors import TeacherError, UserError
from partdistill_cli.teachers.specs import teacher_spec

if TYPE_CHECKING:
    from partdistill_cli.config import SegmentConfig
    from partdistill_cli.knowledge import Detection, Knowledge
    from partdistill_cli.outputs import SegmentResult
    from partdistill_cli.parts import PartList
    from partdistill_cli.pipeline import Pipeline, TeachResult
    from partdistill_cli.progress import Level, Reporter
    from partdistill_cli.render.base import Views
    from partdistill_cli.shapes import Shape
    from partdistill_cli.store import KnowledgeStore
    from partdistill_cli.teachers.base import Teacher

RAY_HINT = "pip install 'partdistill[ray]' (or pip install ray)"
# A GPU holds one teacher actor and two distillations beside it.
TEACHER_GPU = 0.5
STUDENT_GPU = 0.25
# Shapes in flight per worker: enough to keep every stage busy, few enough to bound memory.
IN_FLIGHT_PER_WORKER = 2


def import_ray():
    """The `ray` module; a UserError saying how to install it when it is missing."""
    try:
        import ray
    except ImportError as exc:
        raise UserError(f"--workers and --ray-address need Ray, which is not installed: {RAY_HINT}") from exc
    return ray


def local_ray_options(cpus: int | None) -> dict:
    """`ray.init` keywords of the local Ray `--workers` starts: `cpus` CPUs, no dashboard, Ray's own chatter
    silenced, and workers that import this very partdistill (not another one installed on the machine)."""
    package_root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    return {
        "num_cpus": cpus,
        "include_dashboard": False,
        "logging_level": logging.ERROR,
        "runtime_env": {"env_vars": {"PYTHONPATH": path}},
    }


# ---- what runs on the workers ---------------------------------------------------------------------------------


def worker_pipeline(config: SegmentConfig, store: KnowledgeStore | None, threads: int) -> Pipeline:
    """A quiet pipeline in a worker process, with torch set to the driver's thread count (see the module doc)."""
    import torch

    from partdistill_cli.pipeline import Pipeline
    from partdistill_cli.progress import Reporter

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return Pipeline(config, verbose=False, store=store, progress=Reporter(enabled=False))


def load_stage(
    config: SegmentConfig,
    store: KnowledgeStore | None,
    threads: int,
    path: Path,
    parts: PartList,
    category: str | None,
    teacher_name: str,
    look_up: bool,
) -> tuple[Shape, Knowledge | None]:
    """The shape in `path` and, when `look_up`, its knowledge from the cache (None when not there)."""
    p = worker_pipeline(config, store, threads)
    shape = p.load(path)
    return shape, p.cached(shape, parts, category, teacher_name) if look_up else None


def render_stage(config: SegmentConfig, store: KnowledgeStore | None, threads: int, shape: Shape) -> Views:
    return worker_pipeline(config, store, threads).render(shape)


@dataclass(frozen=True)
class TeacherIdentity:
    """What the knowledge cache needs of the actors' teacher, which stays in its actors: its `name` (the cache
    key) and its `weights` (`Teacher.weights`, for the entry's card)."""

    name: str
    weights: dict[str, str]


def lift_stage(
    config: SegmentConfig,
    store: KnowledgeStore | None,
    threads: int,
    shape: Shape,
    views: Views,
    detections: list[Detection],
    parts: PartList,
    category: str | None,
    teacher: TeacherIdentity,
    keep: bool,
) -> Knowledge:
    """The detections lifted to knowledge, kept in the (shared) cache when `keep`."""
    p = worker_pipeline(config, store, threads)
    knowledge = p.lift(views, detections, parts)
    if keep:
        p.keep(knowledge, shape, parts, category, teacher)
    return knowledge


def teach_stage(
    config: SegmentConfig,
    store: KnowledgeStore | None,
    threads: int,
    shape: Shape,
    parts: PartList,
    category: str | None,
    teacher: Teacher,
    need_views: bool,
    cache: bool,
) -> TeachResult:
    """All of `Pipeline.teach` for a teacher of this shape alone (the simulated teacher: light, per shape)."""
    p = worker_pipeline(config, store, threads)
    return p.teach(shape, parts, category, teacher=teacher, need_views=need_views, cache=cache)


def label_stage(
    config: SegmentConfig,
    store: KnowledgeStore | None,
    threads: int,
    shape: Shape,
    knowledge: Knowledge,
    views: Views | None,
    detections: list[Detection] | None,
    teacher_name: str,
    category: str | None,
    input_path: Path | None,
) -> tuple[SegmentResult, str | None]:
    """The shape's labels made into its `SegmentResult`, and how its student trained (None without one)."""
    from partdistill_cli.pipeline import TeachResult

    p = worker_pipeline(config, store, threads)
    labels = p.label(shape, knowledge, category, teacher_name=teacher_name)
    taught = TeachResult(views, list(detections or []), knowledge, teacher_name)
    return p.result(shape, labels, taught, category, input_path), p.progress.last_training


class TeacherWorker:
    """A Ray actor's state: a pipeline whose teacher's models are loaded once, when the actor starts."""

    def __init__(self, config: SegmentConfig, store: KnowledgeStore | None, threads: int) -> None:
        self.pipeline = worker_pipeline(config, store, threads)
        self.name = self.pipeline.teacher.name

    def describe(self) -> dict:
        """The teacher's name (its weights and settings) and weights, where it runs, and this worker's partdistill
        version."""
        from partdistill_cli import __version__

        weights = dict(getattr(self.pipeline.teacher, "weights", {}))  # a teacher from outside may have none
        return {"teacher": self.name, "weights": weights, "device": self.pipeline.device, "version": __version__}

    def render(self, shape: Shape) -> Views:
        return self.pipeline.render(shape)

    def detect(self, views: Views, parts: list[str], category: str | None) -> list[Detection]:
        return self.pipeline.teacher.detect(views, list(parts), category)


# ---- the driver ------------------------------------------------------------------------------------------------


@dataclass
class _Flight:
    """A job on its way: what has been submitted for it so far."""

    job: Job
    started: float
    stage: str = "load"
    shape: Any = None  # ObjectRef of the Shape
    views: Any = None
    detections: Any = None
    actor: int | None = None


def _unwrap(exc: BaseException) -> BaseException:
    """The exception a task raised, out of Ray's wrapper (a worker or actor that died stays Ray's error)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


class RayRunner:
    """Runs `batch.Job`s on Ray (see the module doc). A context manager: entering connects to Ray (starting a local
    one with `workers` CPUs, joining `address`, or using the Ray this process already runs) and starts the teacher
    actors, whose models load in parallel; leaving stops a Ray it started.

    Args:
        config: the pipeline settings every worker uses.
        workers: CPUs of the local Ray to start.
        address: a running cluster to join ("auto", "HOST:PORT", "ray://HOST:PORT").
        store: where knowledge is kept (must be a path every node sees).
        progress: where to say what was started.
    """

    def __init__(
        self,
        config: SegmentConfig,
        *,
        workers: int | None = None,
        address: str | None = None,
        store: KnowledgeStore | None = None,
        progress: Reporter | None = None,
    ) -> None:
        from partdistill_cli.progress import Reporter

        self.config = config
        self.workers = workers
        self.address = address
        self.store = store
        self.progress = progress if progress is not None else Reporter(enabled=False)
        self.teacher_name = ""
        self._teacher = TeacherIdentity("", {})
        self._ray = None
        self._started_ray = False
        self._actors: list = []
        self._actor_load: list[int] = []
        self._group = None

    # -- set-up ---------------------------------------------------------------------------------------------------

    def __enter__(self) -> RayRunner:
        ray = self._ray = import_ray()
        import torch

        started = time.perf_counter()
        if not ray.is_initialized():
            if self.address is not None:
                ray.init(address=self.address, logging_level=logging.ERROR, log_to_driver=True)
            else:
                ray.init(**local_ray_options(self.workers))
                self._started_ray = True
        try:
            self._start_workers(ray, torch.get_num_threads())
        except BaseException:
            self.__exit__(None, None, None)
            raise
        where = "a local Ray" if self._started_ray else "Ray"
        self.progress.say(
            f"[dim]{where}: {len(self._actors)} teacher worker(s) on {'GPU' if self._group else 'CPU'}, "
            f"{self._cpus} CPUs for rendering, lifting and distillation (ready in {time.perf_counter() - started:.1f} s)[/]"
        )
        return self

    def _start_workers(self, ray, threads: int) -> None:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        self._cpus = max(1, int(resources.get("CPU", 1)))
        use_gpu = self.config.device != "cpu" and gpus > 0
        if self.config.device.startswith("cuda") and not use_gpu:
            raise DeviceError(f"device {self.config.device!r} was asked for but the Ray cluster has no GPU")
        if self._started_ray and threads * self._cpus > (os.cpu_count() or 1):
            self.progress.say(
                f"[yellow]warning:[/] {self._cpus} workers × {threads} torch threads exceed the {os.cpu_count()} "
                "cores here; set OMP_NUM_THREADS to cores / workers (the same value for a run without --workers "
                "gives the same labels)"
            )
        self._args = [ray.put(self.config), ray.put(self.store), threads]
        remote = ray.remote(max_restarts=1, max_task_retries=0)(TeacherWorker)
        if teacher_spec(self.config.teacher).needs_ground_truth:
            # Each shape brings its own teacher (the simulated one, built from its ground truth): no actors.
            label_options: dict = {"num_cpus": 1}
        elif use_gpu:
            from ray.util.placement_group import placement_group
            from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            # Bundles of one GPU (no CPU: reserving CPUs here could leave none to load, render and lift).
            self._group = placement_group([{"GPU": 1}] * gpus, strategy="PACK")
            try:
                ray.get(self._group.ready(), timeout=120)
            except ray.exceptions.GetTimeoutError as exc:
                raise UserError(
                    f"could not reserve {gpus} GPU(s) on the Ray cluster in 2 minutes (are other jobs holding them?)"
                ) from exc
            self._actors = [
                remote.options(
                    num_gpus=TEACHER_GPU,
                    num_cpus=0,
                    scheduling_strategy=PlacementGroupSchedulingStrategy(self._group, placement_group_bundle_index=i),
                ).remote(self.config, self.store, threads)
                for i in range(gpus)
            ]
            label_options = {
                "num_gpus": STUDENT_GPU,
                "num_cpus": 0,
                "scheduling_strategy": PlacementGroupSchedulingStrategy(self._group),
            }
        else:
            # One CPU actor per CPU: on a CPU the teacher is most of a shape's work (bench/bench_batch.py). An
            # actor reserves no CPU: it is busy only while it answers, and tasks use the CPUs meanwhile.
            self._actors = [
                remote.options(num_cpus=0, scheduling_strategy="SPREAD").remote(self.config, self.store, threads)
                for _ in range(self._cpus)
            ]
            label_options = {"num_cpus": 1}
        self._actor_load = [0] * len(self._actors)
        described = [self._get(a.describe.remote()) for a in self._actors]
        from partdistill_cli import __version__

        versions = {d["version"] for d in described}
        if versions - {__version__}:
            raise UserError(
                f"the Ray workers run partdistill {', '.join(sorted(versions))}, this is {__version__}: install the "
                "same version on every node"
            )
        self.teacher_name = described[0]["teacher"] if described else ""
        self._teacher = TeacherIdentity(self.teacher_name, described[0]["weights"] if described else {})
        task = {"max_retries": 1}
        self._load = ray.remote(load_stage).options(num_cpus=1, num_returns=2, **task)
        self._render = ray.remote(render_stage).options(num_cpus=1, **task)
        self._lift = ray.remote(lift_stage).options(num_cpus=1, **task)
        self._teach = ray.remote(teach_stage).options(num_cpus=1, **task)
        self._label = ray.remote(label_stage).options(**label_options, **task)
        self._pipeline = worker_pipeline(self.config, self.store, threads)

    def _get(self, ref):
        """`ray.get`, with a task's own exception raised as itself (a missing weight is a TeacherError here too)."""
        try:
            return self._ray.get(ref)
        except self._ray.exceptions.RayError as exc:
            cause = _unwrap(exc)
            if cause is exc:
                raise
            raise cause from None

    def __exit__(self, *exc: object) -> None:
        ray = self._ray
        if ray is None:
            return
        for actor in self._actors:
            ray.kill(actor)
        self._actors = []
        if self._group is not None:
            from ray.util.placement_group import remove_placement_group

            remove_placement_group(self._group)
            self._group = None
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False

    # -- running ----------------------------------------------------------------------------------------------------

    def run(self, jobs: Iterable[Job], level: Level | None = None) -> Iterator[Outcome]:
        """Run `jobs` on the cluster, yielding each one's outcome as it ends (in any order)."""
        ray = self._ray
        queue = deque(jobs)
        waiting: dict[Any, _Flight] = {}
        limit = IN_FLIGHT_PER_WORKER * (self._cpus + len(self._actors))
        while queue or waiting:
            while queue and len(waiting) < limit:
                flight = _Flight(queue.popleft(), time.perf_counter())
                step = self._step(flight, lambda f=flight: self._start(f))
                if isinstance(step, Outcome):
                    yield step
                else:
                    waiting[step] = flight
            if not waiting:
                continue
            if level is not None:
                counts: dict[str, int] = {}
                for f in waiting.values():
                    counts[f.stage] = counts.get(f.stage, 0) + 1
                level.stage(" · ".join(f"{n} {stage}" for stage, n in counts.items()))
            (ref,), _ = ray.wait(list(waiting), num_returns=1)
            flight = waiting.pop(ref)
            step = self._step(flight, lambda f=flight, r=ref: self._advance(f, ray.get(r)))
            if isinstance(step, Outcome):
                yield step
            else:
                waiting[step] = flight

    def _step(self, flight: _Flight, do) -> Any:
        """`do()` (the next ObjectRef to wait on, or the job's Outcome), with an error made the job's Outcome."""
        try:
            return do()
        except self._ray.exceptions.RayError as exc:
            error: BaseException = _unwrap(exc)
        except UserError as exc:
            error = exc
        self._release(flight)
        if isinstance(error, TeacherError):
            raise error  # as in the sequential run: a teacher that cannot run stops the run
        stage = {"loading": "load", "teaching": "teach", "labelling": "label"}.get(flight.stage, flight.stage)
        return Outcome(flight.job, error=error, stage=stage, seconds=time.perf_counter() - flight.started)

    def _release(self, flight: _Flight) -> None:
        if flight.actor is not None:
            self._actor_load[flight.actor] -= 1
            flight.actor = None

    def _start(self, flight: _Flight) -> Any:
        job = flight.job
        look_up = job.cache and not job.need_views and job.teacher is None
        if isinstance(job.source, (str, Path)):
            flight.shape, cached = self._load.remote(
                *self._args, Path(job.source), job.parts, job.category, self.teacher_name, look_up
            )
            flight.stage = "loading"
            return cached
        flight.shape = self._ray.put(job.source)
        cached = self._pipeline.cached(job.source, job.parts, job.category, self.teacher_name) if look_up else None
        return self._after_load(flight, cached)

    def _advance(self, flight: _Flight, value: Any) -> Any:
        """The next stage after `flight.stage` ended with `value` (its ObjectRef), or the job's Outcome."""
        if flight.stage == "loading":
            return self._after_load(flight, value)
        if flight.stage == "teaching":
            self._release(flight)
            return self._after_teach(flight, value)
        result, training = value
        return Outcome(flight.job, result, seconds=time.perf_counter() - flight.started, training=training)

    def _after_load(self, flight: _Flight, cached: Knowledge | None) -> Any:
        job = flight.job
        if cached is not None:
            return self._after_teach(flight, cached)
        flight.stage = "teaching"
        if job.teacher is not None:
            return self._teach.remote(*self._args, flight.shape, job.parts, job.category, job.teacher,
                                      job.need_views, job.cache)  # fmt: skip
        i = min(range(len(self._actors)), key=self._actor_load.__getitem__)
        self._actor_load[i] += 1
        flight.actor = i
        actor = self._actors[i]
        views = actor.render.remote(flight.shape) if self._group else self._render.remote(*self._args, flight.shape)
        flight.views = views
        flight.detections = actor.detect.remote(views, list(job.parts.asked), job.category)
        return self._lift.remote(*self._args, flight.shape, views, flight.detections, job.parts, job.category,
                                 self._teacher, job.cache)  # fmt: skip

    def _after_teach(self, flight: _Flight, taught: Any) -> Any:
        """After teaching (`taught`: Knowledge from the actors or the cache, a TeachResult from a per-shape
        teacher): the teach-only job's Outcome, or the label task."""
        from partdistill_cli.pipeline import TeachResult

        job = flight.job
        if isinstance(taught, TeachResult):
            knowledge, name = taught.knowledge, taught.teacher
            views, detections = taught.views, taught.detections
        else:
            knowledge, name = taught, self.teacher_name
            views, detections = flight.views, flight.detections
        if not job.need_views:
            views = detections = None
        if not job.segment:
            if views is not None and not isinstance(taught, TeachResult):
                views, detections = self._ray.get([views, detections])
            result = TeachResult(views, list(detections or []), knowledge, name)
            return Outcome(job, result, seconds=time.perf_counter() - flight.started)
        flight.stage = "labelling"
        input_path = Path(job.source) if isinstance(job.source, (str, Path)) else None
        return self._label.remote(*self._args, flight.shape, knowledge, views, detections, name, job.category,
                                  input_path)  # fmt: skip


__all__ = ["RayRunner", "TeacherIdentity", "TeacherWorker", "import_ray", "local_ray_options"]
