"""Resumable generation over many work units, shared by the sampling and reflection stages, and the executors
that run a stage's backend in this process or as replicas on Ray (used by evaluation too).

A *unit* is one request that wants ``params.n`` completions (a question in one prompt variant; a sample to
reflect on). Completion ``(unit.key, index)`` is the atom of resume: a stage records finished atoms in its
JSONL file, and on a re-run only the missing ones are written.

Why fixed chunks: the unit list is cut into chunks of a fixed number of units, decided from the *whole* list,
not from what is left. A chunk with any missing atom is generated again as a whole, so the backend sees
exactly the same batch as in an uninterrupted run, and even float-level effects of batch shape cannot make a
resumed run differ from an uninterrupted one. Only missing atoms are yielded (no duplicates).

A backend may declare ``preferred_batch``: the fewest completions per ``generate`` call that keep it efficient
(vLLM schedules continuously, and a small chunk waits for its slowest completion). Chunks are then at least
that big; the chunk size still depends only on the backend and the caller's size, so resume is unchanged.

Why the chunk is also the unit of distribution: an executor (``executor: {name: ray, replicas: N}``) hands
whole chunks to N replicas of the backend and yields their results in chunk order, so every replica sees the
batches a single process would have seen and the stage writes its file in the same order: the same bytes as
one process, with the same seed. Chunks are never re-cut to spread work, so give ``chunk_size`` small enough
that there are several chunks per replica.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from skillfactory.generation.base import Backend, Completion, GenerationRequest, ProgressFn, SamplingParams


@dataclass(frozen=True)
class Unit:
    key: Any  # hashable id of the unit, e.g. (question_id, variant) or a sample id
    request: GenerationRequest
    payload: Any = None  # whatever the stage needs to turn a completion into a record


# ---- executors ----------------------------------------------------------------------------------------------------

class ExecutorConfig(BaseModel):
    """Where a generating stage's backend runs (``executor:`` in sample/reflect/eval configs, ``launcher.executor``
    in a recipe, ``--executor/--replicas/--ray-address`` on the command line). It never changes the output.

        executor: ray                                   # shorthand for {name: ray}
        executor: {name: ray, replicas: 16, address: auto}
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["local", "ray"] = "local"  # local: one backend in this process; ray: `replicas` Ray actors
    replicas: int = Field(1, ge=1)  # model replicas (ray): an hf model per CPU worker, a vLLM engine per GPU group
    address: str | None = None  # ray: None starts a local Ray here; "auto" or HOST:PORT joins `ray start --head`
    num_cpus: int | None = Field(None, ge=1)  # ray, local start only: CPUs of the local Ray (None: this machine's)
    cpus_per_replica: float | None = Field(None, gt=0)  # None: cluster CPUs / replicas (CPU replicas), else 1
    gpus_per_replica: float | None = Field(None, ge=0)  # None: vllm tensor x pipeline size, hf 1; 0 without GPUs
    max_restarts: int = Field(3, ge=0)  # deaths a replica survives (restarted, its chunk re-run) before it is dropped

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _ray_only(self) -> ExecutorConfig:
        if self.name == "local":
            extra = [f"{k}={getattr(self, k)!r}" for k in ("replicas", "address", "num_cpus", "cpus_per_replica",
                                                          "gpus_per_replica") if getattr(self, k) not in (None, 1)]
            if extra:
                raise ValueError(f"{', '.join(extra)} need the ray executor: add --executor ray "
                                 "(or executor: {name: ray, ...})")
        return self


JobFn = Callable[[Backend, Any, "ProgressFn | None"], Any]  # fn(backend, job, progress) -> result
JobProgress = Callable[[int, int, int], None]  # (job position, completions delta, tokens delta)


class Executor:
    """Runs jobs ``fn(backend, job, progress)`` on one or more replicas of a backend; yields results in job order."""

    preferred_batch: int = 1

    def map(self, fn: JobFn, jobs: Sequence[Any], progress: JobProgress | None = None) -> Iterator[Any]:
        raise NotImplementedError

    def describe(self) -> str:
        """Throughput per replica for a progress line ("" when there is one replica in this process)."""
        return ""

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class LocalExecutor(Executor):
    """One backend in this process, built on first use (a finished stage never loads its model)."""

    def __init__(self, factory: Callable[[], Backend] | None = None, backend: Backend | None = None):
        self._factory, self._backend = factory, backend

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = self._factory()  # type: ignore[misc]
        return self._backend

    @property
    def preferred_batch(self) -> int:  # type: ignore[override]
        return getattr(self.backend, "preferred_batch", 1)  # optional, see the module docstring

    def map(self, fn: JobFn, jobs: Sequence[Any], progress: JobProgress | None = None) -> Iterator[Any]:
        for k, job in enumerate(jobs):
            yield fn(self.backend, job, (lambda c, t, k=k: progress(k, c, t)) if progress else None)


def backend_factory(name: str, model: str, options: dict[str, Any]) -> Callable[[], Backend]:
    """A picklable ``() -> Backend`` for a registry backend (a Ray replica builds its own backend with it)."""
    from skillfactory.generation import get_backend

    return functools.partial(get_backend, name, model, **options)


def open_executor(config: ExecutorConfig, factory: Callable[[], Backend], backend: str = "",
                  options: dict[str, Any] | None = None, *, backend_object: Backend | None = None) -> Executor:
    """The executor ``config`` asks for. ``backend``/``options`` (the backend's registry name and options) let
    the ray executor size each replica (GPUs of a vLLM engine); ``backend_object`` is a backend already built in
    this process (tests, notebooks): it can only run locally."""
    if config.name == "local":
        return LocalExecutor(factory, backend_object)
    if backend_object is not None:
        from skillfactory.generation import BackendError

        raise BackendError("executor ray builds its replicas from the backend name, model and options; "
                           "a backend object built in this process cannot be sent to them")
    if backend == "openai":
        from skillfactory.generation import BackendError

        raise BackendError("executor ray with the openai backend adds nothing: list the servers in the backend "
                           "option base_urls: [...] instead (requests are spread over them)")
    from skillfactory.generation.ray_executor import RayExecutor

    return RayExecutor(config, factory, backend, options or {})


# ---- the resumable runner -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GenerateJob:
    requests: tuple[GenerationRequest, ...]
    params: SamplingParams


def generate_job(backend: Backend, job: GenerateJob, progress: ProgressFn | None) -> list[list[Completion]]:
    """One chunk: ``backend.generate`` (module level, so that a Ray replica can be sent it)."""
    return backend.generate(list(job.requests), job.params, progress=progress)


def chunk_units(units: Sequence[Unit], n: int, chunk_completions: int) -> list[list[Unit]]:
    """Fixed chunks of about ``chunk_completions`` completions each (at least one unit per chunk)."""
    size = max(1, chunk_completions // n)
    return [list(units[k:k + size]) for k in range(0, len(units), size)]


def run_units(backend: Backend | Executor, units: Sequence[Unit], params: SamplingParams,
              done: set[tuple[Any, int]], chunk_completions: int = 512, *, label: str = "generating",
              quiet: bool = False) -> Iterator[tuple[Unit, int, Completion]]:
    """Yield ``(unit, index, completion)`` for every atom not in ``done``, chunk by chunk in unit order, with a
    progress bar. ``backend`` is a backend (run here) or an executor (possibly several replicas)."""
    executor = backend if isinstance(backend, Executor) else LocalExecutor(backend=backend)
    total = len(units) * params.n
    already = sum(1 for u in units for i in range(params.n) if (u.key, i) in done)
    todo = []
    for chunk in chunk_units(units, params.n, max(chunk_completions, executor.preferred_batch)):
        missing = [(u, i) for u in chunk for i in range(params.n) if (u.key, i) not in done]
        if missing:
            todo.append((chunk, missing))
    if not todo:
        return
    jobs = [GenerateJob(tuple(u.request for u in chunk), params) for chunk, _ in todo]
    with GenerationProgress(label, total, already, quiet=quiet, detail=executor.describe) as bar:
        for k, ((chunk, missing), results) in enumerate(zip(todo, executor.map(generate_job, jobs, bar.job_update))):
            bar.job_done(k, len(missing))
            by_key = {u.key: comps for u, comps in zip(chunk, results)}
            for u, i in missing:
                yield u, i, by_key[u.key][i]


class GenerationProgress:
    """The stage's progress bar (:class:`~skillfactory.console.StepProgress`) counting completions, with generated
    tokens/s (and per replica). Silent when ``quiet``.

    Backends report every completion of a chunk, including atoms that were already done (the chunk is
    regenerated whole), and several chunks may be in flight on several replicas: the bar shows finished chunks'
    new atoms exactly plus the live counts of chunks in flight (capped at the total).
    """

    def __init__(self, label: str, total: int, already: int, quiet: bool = False,
                 detail: Callable[[], str] | None = None):
        self.label, self.total, self.quiet, self.detail = label, total, quiet, detail
        self.confirmed = already  # atoms on disk or in finished chunks
        self.live: dict[int, int] = {}  # job -> completions reported so far
        self.tokens = 0
        self.t0 = time.monotonic()
        self._bar: Any = None

    def __enter__(self) -> GenerationProgress:
        from skillfactory.console import StepProgress

        self._bar = StepProgress(self.label, self.total, unit="completions", completed=self.completed,
                                 quiet=self.quiet).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._refresh()
            self._bar.stop()

    @property
    def completed(self) -> int:
        return min(self.total, self.confirmed + sum(self.live.values()))

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / max(time.monotonic() - self.t0, 1e-9)

    def job_update(self, job: int, completions: int, tokens: int) -> None:
        """A job in flight made progress (an executor's ``progress`` callback)."""
        self.tokens += tokens
        self.live[job] = max(0, self.live.get(job, 0) + completions)
        self._refresh()

    def job_done(self, job: int, new_atoms: int) -> None:
        """A job's results were handed on: count its new atoms exactly."""
        self.live.pop(job, None)
        self.confirmed += new_atoms
        self._refresh()

    def _refresh(self) -> None:
        if self._bar is not None:
            rate = f"{self.tokens_per_second:,.0f} tok/s"
            extra = self.detail() if self.detail else ""
            self._bar.update(self.completed, note=f"{rate} ({extra})" if extra else rate)
