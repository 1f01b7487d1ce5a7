"""The ray executor: a stage's backend as N Ray actors (replicas), whole chunks sharded over them, results
yielded in chunk order (``executor: {name: ray, replicas: N}``; ``pip install 'skillfactory[ray]'``).

Why it is built this way:
- **Same bytes as one process.** A replica runs exactly the job a single process would run (one chunk: the
  same requests in the same batch, see ``runner``), and results are yielded in job order, so the stage writes
  the same file. Completions are seeded per work unit (``common.completion_seed``), so which replica ran a
  chunk does not matter. Results that finish early wait in memory; at most ``4 x replicas`` jobs are ahead of
  the next one to yield.
- **Faults.** A replica whose process dies (SIGKILL, OOM, a lost node) is restarted by Ray (``max_restarts``;
  the model is loaded again) and the chunk it was running is queued again: nothing is lost, and as only
  finished chunks are yielded, nothing is written twice. A replica that keeps dying is dropped and the others
  go on. A killed driver loses only chunks not yet written; the stage's own resume re-runs them.
- **Resources.** One actor per replica: ``gpus_per_replica`` GPUs (vLLM: tensor x pipeline parallel size, the
  engine runs its parallel workers on the GPUs Ray gave the actor; hf: 1) or, without GPUs,
  ``cluster CPUs / replicas`` CPUs with as many torch threads. A local Ray is started (and stopped) by the
  executor when none is running and no ``address`` is given; ``address: auto`` joins ``ray start --head``.
- **Progress.** Each replica counts completions and tokens of its current job; the driver polls the counts
  (a separate actor thread group, so polls do not wait for a job) for a live bar and tokens/s per replica.
"""

from __future__ import annotations

import heapq
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from skillfactory.errors import SkillFactoryError
from skillfactory.generation.base import Backend
from skillfactory.generation.runner import Executor, ExecutorConfig, JobFn, JobProgress

log = logging.getLogger(__name__)

INSTALL_HINT = "Ray is not installed: pip install 'skillfactory[ray]' (or choose executor local)"
POLL_SECONDS = 0.5  # how often the driver asks replicas for their live counts
AHEAD_PER_REPLICA = 4  # finished-but-unwritten jobs the driver may hold, per replica


class ExecutorError(SkillFactoryError, RuntimeError):
    """The ray executor cannot run as asked (Ray missing, too few resources, every replica lost)."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExecutorError(INSTALL_HINT) from None
    return ray


def replica_resources(config: ExecutorConfig, backend: str, options: dict[str, Any],
                      cluster: dict[str, float]) -> tuple[float, float]:
    """(CPUs, GPUs) of one replica: the config's, else derived from the backend and the cluster's resources."""
    gpus = config.gpus_per_replica
    if gpus is None:
        if not cluster.get("GPU"):
            gpus = 0.0
        elif backend == "vllm":
            gpus = float(options.get("tensor_parallel_size", 1) * options.get("pipeline_parallel_size", 1))
        else:
            gpus = 1.0
    cpus = config.cpus_per_replica
    if cpus is None:
        cpus = 1.0 if gpus else max(1.0, float(int(cluster.get("CPU", 1) // config.replicas)))
    return cpus, gpus


def _replica_class(ray: Any) -> Any:
    """The actor class (defined once Ray is imported; Ray ships it to the workers by value)."""

    class Replica:
        def __init__(self, factory: Callable[[], Backend], threads: int | None):
            self.threads, self.job, self.count = threads, None, [0, 0]
            self._set_threads()
            try:
                self.backend, self.error = factory(), None
            except Exception as e:  # noqa: BLE001 - re-raised in the driver, whatever it is
                self.backend, self.error = None, e

        def _set_threads(self) -> None:
            if self.threads:
                import torch

                torch.set_num_threads(self.threads)

        @ray.method(concurrency_group="poll")
        def info(self) -> dict[str, Any]:
            return {"pid": os.getpid(), "node": ray.util.get_node_ip_address(), "error": self.error,
                    "preferred_batch": getattr(self.backend, "preferred_batch", 1), "job": self.job}

        @ray.method(concurrency_group="poll")
        def poll(self) -> tuple[Any, int, int]:
            return self.job, self.count[0], self.count[1]

        def run(self, fn: JobFn, job: Any, position: int) -> tuple[Any, int, int]:
            self._set_threads()  # this runs in the actor's job thread, not the constructor's
            count = self.count = [0, 0]

            def progress(completions: int, tokens: int) -> None:
                count[0] += completions
                count[1] += tokens

            self.job = position
            try:
                return fn(self.backend, job, progress), count[0], count[1]
            finally:
                self.job = None

    return ray.remote(concurrency_groups={"poll": 1})(Replica)


class RayExecutor(Executor):
    """``config.replicas`` replicas of the backend ``factory()`` builds, as Ray actors (started on first use)."""

    def __init__(self, config: ExecutorConfig, factory: Callable[[], Backend], backend: str = "",
                 options: dict[str, Any] | None = None):
        self.config, self.factory, self.backend_name, self.options = config, factory, backend, dict(options or {})
        self._ray: Any = None
        self._owns_ray = False
        self._actors: list[Any] = []
        self._infos: list[dict[str, Any]] = []
        self.alive: list[bool] = []
        self.deaths: list[int] = []
        self.tokens: list[int] = []  # generated by each replica (finished and live jobs)
        self._t0 = 0.0

    # ---- life cycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._actors:
            return
        ray = self._ray = import_ray()
        cfg = self.config
        if not ray.is_initialized():
            if cfg.address:
                try:
                    ray.init(address=cfg.address)
                except (ConnectionError, RuntimeError, ValueError) as e:
                    raise ExecutorError(f"executor ray: cannot join the Ray cluster at {cfg.address!r} "
                                        f"({str(e).splitlines()[0]}); start one with `ray start --head`, or give "
                                        "no address to start a local Ray") from None
            else:
                ray.init(address="local", num_cpus=cfg.num_cpus or os.cpu_count() or 1, include_dashboard=False)
            self._owns_ray = True
        cluster = ray.cluster_resources()
        cpus, gpus = replica_resources(cfg, self.backend_name, self.options, cluster)
        for kind, need, have in (("CPU", cpus, cluster.get("CPU", 0)), ("GPU", gpus, cluster.get("GPU", 0))):
            if need * cfg.replicas > have:
                raise ExecutorError(f"{cfg.replicas} replicas x {need:g} {kind}s need {need * cfg.replicas:g} {kind}s; "
                                    f"the Ray cluster has {have:g}: lower executor.replicas (or "
                                    f"{kind.lower()}s_per_replica), or add nodes (ray start --address ...)")
        threads = None if gpus else max(1, int(cpus))  # torch threads of a CPU replica (Ray sets OMP_NUM_THREADS too)
        options: dict[str, Any] = {"num_cpus": cpus, "num_gpus": gpus, "max_restarts": cfg.max_restarts,
                                   "max_task_retries": 0}  # the driver re-queues a lost job itself
        tag = f"skillfactory-{uuid.uuid4().hex[:8]}"
        cls = _replica_class(ray)
        self._actors = [cls.options(name=f"{tag}-r{i}", **options).remote(self.factory, threads)
                        for i in range(cfg.replicas)]
        try:
            self._infos = ray.get([a.info.remote() for a in self._actors])
        except ray.exceptions.RayActorError as e:
            self.close()
            raise ExecutorError(f"a replica died while loading the model: {str(e).splitlines()[0]}") from None
        for info in self._infos:
            if info["error"] is not None:
                self.close()
                raise info["error"]
        self.alive = [True] * cfg.replicas
        self.deaths = [0] * cfg.replicas
        self.tokens = [0] * cfg.replicas
        nodes = len({i["node"] for i in self._infos})
        log.info("ray: %d replicas on %d node(s), %g CPUs and %g GPUs each", cfg.replicas, nodes, cpus, gpus)

    def close(self) -> None:
        ray = self._ray
        if ray is None:
            return
        for a in self._actors:
            try:
                ray.kill(a)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self._actors = []
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False
        self._ray = None

    @property
    def preferred_batch(self) -> int:  # type: ignore[override]
        self.start()
        return max(i["preferred_batch"] for i in self._infos)

    def describe(self) -> str:
        if not self._actors or not self._t0:
            return ""
        dt = max(time.monotonic() - self._t0, 1e-9)
        parts = [f"r{i} {t / dt:,.0f}" if up else f"r{i} lost"
                 for i, (t, up) in enumerate(zip(self.tokens, self.alive))]
        return " · ".join(parts) + " tok/s"

    # ---- the work ---------------------------------------------------------------------------------------------
    def map(self, fn: JobFn, jobs: Sequence[Any], progress: JobProgress | None = None) -> Iterator[Any]:
        jobs = list(jobs)
        if not jobs:
            return
        self.start()
        ray = self._ray
        queue = list(range(len(jobs)))  # a heap: a re-queued job goes back to the front
        results: dict[int, Any] = {}
        running: dict[Any, tuple[int, int]] = {}  # task ref -> (job, replica)
        current: dict[int, list[int]] = {}  # replica -> [job, completions, tokens] reported so far
        polls: dict[Any, int] = {}
        nxt = 0
        self._t0, self.tokens = time.monotonic(), [0] * len(self._actors)  # rates per map call
        report = progress or (lambda job, c, t: None)
        try:
            while nxt < len(jobs):
                busy = {r for _, r in running.values()}
                horizon = nxt + AHEAD_PER_REPLICA * len(self._actors)  # bounds the results held for writing
                for r, actor in enumerate(self._actors):
                    if self.alive[r] and r not in busy and queue and queue[0] < horizon:
                        j = heapq.heappop(queue)
                        running[actor.run.remote(fn, jobs[j], j)] = (j, r)
                        current[r] = [j, 0, 0]
                ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_SECONDS)
                for ref in ready:
                    j, r = running.pop(ref)
                    seen = current.pop(r)
                    try:
                        value, completions, tokens = ray.get(ref)
                    except ray.exceptions.RayActorError as e:
                        self._lost(r, j, e, seen, report)
                        heapq.heappush(queue, j)
                        continue
                    except ray.exceptions.RayTaskError as e:
                        raise _cause(e) from None
                    report(j, completions - seen[1], tokens - seen[2])
                    self.tokens[r] += tokens - seen[2]
                    results[j] = value
                self._poll(polls, current, report)
                while nxt in results:
                    yield results.pop(nxt)
                    nxt += 1
        finally:
            for ref in running:  # an interrupted map (Ctrl-C, an error): stop what is queued; close() kills the rest
                try:
                    ray.cancel(ref)
                except Exception:  # noqa: BLE001 - already finished or its replica is gone
                    pass

    def _lost(self, r: int, job: int, error: Exception, seen: list[int], report: JobProgress) -> None:
        self.deaths[r] += 1
        report(job, -seen[1], 0)  # its completions are lost; its tokens were spent all the same
        why = str(error).splitlines()[0][:160]
        if self.deaths[r] > self.config.max_restarts:
            self.alive[r] = False
            log.warning("ray: replica %d died %d times (%s): dropped; chunk %d goes to another replica",
                        r, self.deaths[r], why, job)
            if not any(self.alive):
                raise ExecutorError(f"every replica died more than executor.max_restarts="
                                    f"{self.config.max_restarts} times; last: {why}")
        else:
            log.warning("ray: replica %d died (%s): Ray restarts it; chunk %d is run again", r, why, job)

    def _poll(self, polls: dict[Any, int], current: dict[int, list[int]], report: JobProgress) -> None:
        """Collect the replicas' live counts (without waiting) and ask again those with a job in flight."""
        ray = self._ray
        if polls:
            ready, _ = ray.wait(list(polls), num_returns=len(polls), timeout=0)
            for ref in ready:
                r = polls.pop(ref)
                try:
                    job, completions, tokens = ray.get(ref)
                except ray.exceptions.RayError:
                    continue  # a dead replica: its job's own reference says so
                seen = current.get(r)
                if seen is not None and job == seen[0]:
                    report(job, completions - seen[1], tokens - seen[2])
                    self.tokens[r] += tokens - seen[2]
                    seen[1], seen[2] = completions, tokens
        asked = set(polls.values())
        for r in current:
            if r not in asked:
                polls[self._actors[r].poll.remote()] = r


def _cause(error: Exception) -> BaseException:
    """The exception a job raised inside a replica (a BackendError stays one, for the CLI's one-line message)."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error
