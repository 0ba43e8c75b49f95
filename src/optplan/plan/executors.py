"""Where edge runs execute: in the planner's process, in a local process pool, or on Ray.

An executor turns ``run_edge(trainer, job)`` into a :class:`concurrent.futures.Future`; the
planner submits every edge whose source node is decided and waits for the first to finish.
Only the in-process executor reports each epoch to the driver (``live``), so only there is a
half-trained edge resumable from its last epoch; pool and Ray workers report when the edge ends.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import Future
from typing import Any

from optplan.errors import OptplanError
from optplan.plan.edge import EdgeJob, EpochCallback, run_edge
from optplan.plan.protocol import EdgeTrainer

EXECUTORS = ("inprocess", "process", "ray")


class Executor(ABC):
    """Runs edge jobs; ``workers`` is how many may run at once."""

    name: str = ""
    live: bool = False
    workers: int = 1

    @abstractmethod
    def submit(self, trainer: EdgeTrainer, job: EdgeJob, on_epoch: EpochCallback | None = None) -> Future:
        """Start ``job``; ``on_epoch`` is honoured only by live executors."""

    def close(self) -> None:
        """Release workers."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class InProcessExecutor(Executor):
    """Runs each job at submission, in order (the paper's sequential planner)."""

    name, live = "inprocess", True

    def submit(self, trainer: EdgeTrainer, job: EdgeJob, on_epoch: EpochCallback | None = None) -> Future:
        future: Future = Future()
        future.set_result(run_edge(trainer, job, on_epoch))
        return future


class ProcessExecutor(Executor):
    """A local ``ProcessPoolExecutor`` with the 'spawn' start method (safe with torch threads).

    The trainer is pickled with every job, so it should be small (a config, not a model).
    """

    name = "process"

    def __init__(self, workers: int = 2) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.workers = workers
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, trainer: EdgeTrainer, job: EdgeJob, on_epoch: EpochCallback | None = None) -> Future:
        return self._pool.submit(run_edge, trainer, job)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor(Executor):
    """Ray tasks of one CPU each (``ray.init(address)`` for a cluster; local otherwise).

    Uses a Ray session that is already initialised as it is. Workers read source checkpoints
    by path, so on a cluster the run directory must be on a shared filesystem.
    """

    name = "ray"

    def __init__(self, workers: int = 2, address: str | None = None, num_cpus_per_edge: float = 1) -> None:
        try:
            import ray
        except ImportError:
            raise OptplanError("the ray executor needs Ray: pip install 'optplan[ray]'") from None
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            ray.init(address=address, num_cpus=None if address else workers,
                     include_dashboard=False, log_to_driver=False)
        self.workers = workers
        self._ray = ray
        self._remote = ray.remote(num_cpus=num_cpus_per_edge, max_retries=0)(run_edge)
        self._trainers: dict[int, Any] = {}

    def submit(self, trainer: EdgeTrainer, job: EdgeJob, on_epoch: EpochCallback | None = None) -> Future:
        ref = self._trainers.get(id(trainer))
        if ref is None:  # ship the trainer to the object store once
            ref = self._trainers[id(trainer)] = self._ray.put(trainer)
        return self._remote.remote(ref, job).future()

    def close(self) -> None:
        self._trainers.clear()
        if self._owns_ray:
            self._ray.shutdown()


def make_executor(name: str = "inprocess", workers: int = 2, address: str | None = None) -> Executor:
    """The executor called ``name`` (one of :data:`EXECUTORS`)."""
    if name == "inprocess":
        return InProcessExecutor()
    if name == "process":
        return ProcessExecutor(workers)
    if name == "ray":
        return RayExecutor(workers, address)
    raise OptplanError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
