"""Where edge runs execute: in the planner's process, in a local process pool, or on Ray.

An executor turns ``run_edge(trainer, job)`` into a :class:`concurrent.futures.Future`; the
planner submits every edge whose source node is decided and waits for the first to finish.
Every executor reports each epoch (curve and snapshot) to the driver, which records it, so a
killed plan continues a half-trained edge from its last epoch; pool and Ray workers send their
epochs through a queue that :meth:`Executor.wait` empties.
"""

from __future__ import annotations

import itertools
import os
import queue
import signal
import sys
from abc import ABC, abstractmethod
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any, Iterable

from optplan.errors import OptplanError
from optplan.plan.edge import EdgeJob, EdgeOutcome, run_edge
from optplan.protocol import Checkpoint, EdgeTrainer, EpochCallback

EXECUTORS = ("inprocess", "process", "ray")


class Executor(ABC):
    """Runs edge jobs; ``workers`` is how many may run at once."""

    name: str = ""
    live: bool = False
    workers: int = 1

    @abstractmethod
    def submit(self, trainer: EdgeTrainer, job: EdgeJob, on_epoch: EpochCallback | None = None) -> Future:
        """Start ``job``; ``on_epoch`` is honoured only by live executors."""

    def wait(self, futures: Iterable[Future], block: bool = True) -> set[Future]:
        """The futures that have ended (at least one if ``block``). A live executor delivers
        every epoch of a run to its ``on_epoch`` before its future is returned here."""
        return wait(list(futures), timeout=None if block else 0, return_when=FIRST_COMPLETED)[0]

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


class _ReportingExecutor(Executor):
    """Runs jobs in workers that put every epoch on a queue (``self._events``, set by the
    subclass); :meth:`wait` hands the epochs to the driver's callbacks."""

    live = True

    def __init__(self, workers: int, poll_seconds: float) -> None:
        self.workers, self.poll_seconds = workers, poll_seconds
        self._events: Any = None
        self._tokens = itertools.count()
        self._listeners: dict[int, EpochCallback] = {}
        self._token_of: dict[Future, int] = {}

    @abstractmethod
    def _start(self, trainer: EdgeTrainer, job: EdgeJob, events: Any, token: int) -> Future:
        """Run :func:`_run_and_report` in a worker."""

    def submit(self, trainer: EdgeTrainer, job: EdgeJob, on_epoch: EpochCallback | None = None) -> Future:
        token = next(self._tokens)
        if on_epoch is not None:
            self._listeners[token] = on_epoch
        future = self._start(trainer, job, self._events if on_epoch is not None else None, token)
        self._token_of[future] = token
        return future

    def wait(self, futures: Iterable[Future], block: bool = True) -> set[Future]:
        futures = list(futures)
        while futures:
            done = wait(futures, timeout=self.poll_seconds if block else 0,
                        return_when=FIRST_COMPLETED)[0]
            self._deliver()  # a worker queues its epochs before returning: all are here now
            if done or not block:
                for future in done:
                    self._listeners.pop(self._token_of.pop(future, -1), None)
                return done
        return set()

    def _deliver(self) -> None:
        while True:
            try:
                token, scores, snapshot = self._events.get_nowait()
            except queue.Empty:  # ray.util.queue.Empty is one too
                return
            listener = self._listeners.get(token)
            if listener is not None:
                listener(scores, snapshot)


def _run_and_report(trainer: EdgeTrainer, job: EdgeJob, events: Any, token: int) -> EdgeOutcome:
    """Worker side of the pool and Ray executors: run the edge, queueing every epoch."""
    def report(scores: list[float], snapshot: Checkpoint | None) -> None:
        events.put((token, list(scores), snapshot))
    return run_edge(trainer, job, report if events is not None else None)


_PR_SET_PDEATHSIG = 1  # prctl option from <linux/prctl.h>


def die_with_driver(parent: int) -> None:
    """Worker initialiser: be killed when the driver dies (Linux ``PR_SET_PDEATHSIG``), so that
    a killed plan leaves no orphans training on and holding the run directory's lock. Exits at
    once if the driver died before the request was made."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


class ProcessExecutor(_ReportingExecutor):
    """A local ``ProcessPoolExecutor`` with the 'spawn' start method (safe with torch threads).

    Epochs travel through a ``multiprocessing`` manager queue. The trainer is pickled with
    every job, so it should be small (a config, not a model). Workers and the manager die
    with the driver, however it ends (on Linux).
    """

    name = "process"

    def __init__(self, workers: int = 2, poll_seconds: float = 0.5) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing.managers import SyncManager

        super().__init__(workers, poll_seconds)
        context = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(workers, mp_context=context, initializer=die_with_driver,
                                         initargs=(os.getpid(),))
        self._manager = SyncManager(ctx=context)
        self._manager.start(die_with_driver, (os.getpid(),))
        self._events = self._manager.Queue()

    def _start(self, trainer: EdgeTrainer, job: EdgeJob, events: Any, token: int) -> Future:
        return self._pool.submit(_run_and_report, trainer, job, events, token)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._manager.shutdown()


class RayExecutor(_ReportingExecutor):
    """Ray tasks of ``num_cpus_per_edge`` CPUs and ``num_gpus_per_edge`` GPUs each.

    ``ray.init(address)`` for a cluster, a local Ray otherwise; a Ray session already
    initialised is used as it is. Epochs travel through a ``ray.util.queue.Queue``. Workers read
    source checkpoints by path, so on a cluster the run directory must be on a shared filesystem.
    """

    name = "ray"

    def __init__(self, workers: int = 2, address: str | None = None, num_cpus_per_edge: float = 1,
                 num_gpus_per_edge: float = 0, poll_seconds: float = 0.5) -> None:
        try:
            import ray
            from ray.util.queue import Queue
        except ImportError:
            raise OptplanError("the ray executor needs Ray: pip install 'optplan[ray]'") from None
        super().__init__(workers, poll_seconds)
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            ray.init(address=address, num_cpus=None if address else workers,
                     include_dashboard=False, log_to_driver=False)
        self._ray = ray
        self._events = Queue()
        self._remote = ray.remote(num_cpus=num_cpus_per_edge, num_gpus=num_gpus_per_edge,
                                  max_retries=0)(_run_and_report)
        self._trainers: dict[int, Any] = {}

    def _start(self, trainer: EdgeTrainer, job: EdgeJob, events: Any, token: int) -> Future:
        ref = self._trainers.get(id(trainer))
        if ref is None:  # ship the trainer to the object store once
            ref = self._trainers[id(trainer)] = self._ray.put(trainer)
        return self._remote.remote(ref, job, events, token).future()

    def close(self) -> None:
        self._trainers.clear()
        self._events.shutdown()
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
