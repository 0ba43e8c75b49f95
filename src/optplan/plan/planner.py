"""The planner: the paper's dynamic programme over knee-terminated edges.

Every edge u -> v trains from u's kept model in v's state until the knee (:mod:`optplan.knee`;
the edge's loop is :func:`optplan.plan.edge.run_edge`, and an epoch of the video trainer trains
in :meth:`optplan.train.epoch.EpochTrainer.train`); its score is the knee score. Once every edge into v has ended, v keeps the best model (beam:
the ``beam`` best; objective ``score_at_budget``: every model on the (replay GFLOPs, score)
Pareto front within the budget, see :mod:`optplan.plan.objective`) with its parent and epochs.
Backtracking from the final node gives the path. With racing (:mod:`optplan.plan.racing`) an
edge stops as soon as it cannot beat a finished competitor into the same node; with the climb
rule (:mod:`optplan.plan.climb`) a start whose training loss climbs is dropped.
Edges run as soon as their source is decided, on any :mod:`executor <optplan.plan.executors>`;
every epoch, edge and decision goes to the :mod:`store <optplan.plan.store>`, so a plan run
again on the same store trains only what is missing (failed edges and edges whose model was
lost included) and ends with the identical result.
"""

from __future__ import annotations

import heapq
import json
import math
import time
from concurrent.futures import Future
from operator import attrgetter
from typing import Any

from optplan.defaults import objective_problem
from optplan.errors import DiskFull, OptplanError
from optplan.knee import Knee, KneeRule
from optplan.plan.edge import EdgeJob, EdgeOutcome
from optplan.plan.executors import Executor, InProcessExecutor
from optplan.plan.graph import Edge, StateGraph
from optplan.plan.objective import Objective
from optplan.plan.progress import Progress, TqdmProgress
from optplan.protocol import Checkpoint, EdgeTrainer, EpochCallback
from optplan.plan.climb import Climb
from optplan.plan.racing import Racing
from optplan.plan.records import (DONE, DROPPED, FAILED, RUNNING, SKIPPED, USABLE, Candidate, EdgeRecord,
                                  NodeRecord, edge_id)
from optplan.plan.result import ParetoPoint, PlanResult, Stage, pareto_front, planned_runs
from optplan.plan.store import InMemoryStore, PlanStore

ATTEMPTS = 2  # a failing edge is retried once


class Planner:
    """Plan ``graph`` with ``trainer`` (an :class:`~optplan.plan.EdgeTrainer`).

    ``store`` defaults to an :class:`InMemoryStore`, ``executor`` to in-process (one passed in
    is left open for the caller). ``rule`` is the knee rule (:class:`~optplan.knee.KneeRule`);
    without one, ``patience`` (T, epochs), ``knee_method`` and ``max_epochs`` build it; ``beam``
    models kept per node (1: the paper's DP); ``budget_epochs`` picks
    :attr:`PlanResult.budget`; ``progress`` True draws a tqdm bar (or pass a
    :class:`~optplan.plan.progress.Progress`); ``config`` is anything else the results depend
    on, stored with the run and compared when it resumes. ``objective`` is what the DP
    maximises (:class:`~optplan.plan.objective.Objective`; default the paper's score);
    ``racing`` (:class:`~optplan.plan.racing.Racing`, default off) stops edges that cannot win;
    ``climb`` (:class:`~optplan.plan.climb.Climb`, default off) drops starts whose training loss
    climbs.
    A trainer with ``epoch_gflops(state)`` (training GFLOPs of one epoch, a
    :class:`~optplan.protocol.CountingEdgeTrainer`) has its compute counted; ``score_at_budget``
    needs one.
    """

    def __init__(self, graph: StateGraph, trainer: EdgeTrainer, store: PlanStore | None = None,
                 patience: int = 10, knee_method: str = "paper", executor: Executor | None = None,
                 max_epochs: int | None = None, beam: int = 1, budget_epochs: int | None = None,
                 progress: bool | Progress = False, config: dict[str, Any] | None = None,
                 end: str = "graph", rule: KneeRule | None = None, objective: Objective | None = None,
                 racing: Racing | None = None, climb: Climb | None = None) -> None:
        if end not in ("graph", "best"):
            raise OptplanError(f"end must be 'graph' (the final node) or 'best' (the best node), got {end!r}")
        if beam < 1:
            raise OptplanError("beam must be at least 1")
        self.objective = objective or Objective()
        problem = objective_problem(self.objective.name, self.objective.budget_gflops, beam)
        if problem:
            raise OptplanError(problem)
        if self.objective.budgeted and not hasattr(trainer, "epoch_gflops"):
            raise OptplanError(f"score_at_budget needs a trainer that counts compute (an "
                               f"epoch_gflops(state) method); {type(trainer).__name__} has none")
        try:
            self.rule = rule or KneeRule(method=knee_method, patience=patience, max_epochs=max_epochs)
        except ValueError as err:
            raise OptplanError(str(err)) from None
        self.graph = graph
        self.trainer = trainer
        self.store = store if store is not None else InMemoryStore()
        self.executor = executor
        self.beam = beam
        self.budget_epochs = budget_epochs
        self.progress = progress if isinstance(progress, Progress) else (
            TqdmProgress() if progress else Progress())
        self.config = config or {}
        self.end = end
        self.racing = racing
        self.climb = climb
        self._rank = {e: i for i, e in enumerate(graph.edges)}
        self._node_rank = {n: i for i, n in enumerate(graph.order)}
        self._judged = self._judged_starts()

    def _judged_starts(self) -> set[str]:
        """The start's targets the climb rule judges: all but the lowest-lr one among those that
        differ only in lr, so the rule chooses between learning rates and never takes a clip
        setting out of the plan, however the data train (none without the rule)."""
        if self.climb is None:
            return set()
        gentlest: dict[str, tuple[float, str]] = {}
        for edge in self.graph.outgoing(self.graph.start):
            state = self.graph.state(edge.target)
            if state is not None:
                setting = json.dumps(state.model_dump(mode="json", exclude={"name", "lr"}), sort_keys=True)
                gentlest[setting] = min(gentlest.get(setting, (math.inf, "")), (state.lr, edge.target))
        return {e.target for e in self.graph.outgoing(self.graph.start)} - {n for _, n in gentlest.values()}

    def fingerprint(self) -> dict[str, Any]:
        """What the records depend on; a store made with another fingerprint is refused."""
        return {"graph": self.graph.to_dict(), "knee": self.rule.to_dict(), "beam": self.beam,
                "trainer": type(self.trainer).__name__, "config": self.config, "end": self.end,
                "objective": self.objective.to_dict(),
                "racing": self.racing.to_dict() if self.racing else None,
                **({"climb": self.climb.to_dict()} if self.climb else {})}  # absent when off: older stores resume

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> PlanResult:
        """Plan (or finish a stored plan) and return the result."""
        self.store.check_config(self.fingerprint())
        started, before = time.perf_counter(), float(self.store.get_meta("wall_seconds") or 0.0)
        executor = self.executor or InProcessExecutor()
        self._nodes: dict[str, NodeRecord] = {}
        self._runs: dict[str, EdgeRecord] = {}
        self._ready: list[tuple[tuple[float, ...], int, Edge]] = []  # (priority, slot, edge)
        self._inflight: dict[Future, tuple[Edge, int, int]] = {}
        self._stored = {r.id: r for r in self.store.edges()}  # what earlier sessions recorded
        self._epoch_gflops = self._count_gflops()
        self.progress.start(planned_runs(self.graph, self.beam))
        try:
            self._decide(self.graph.start)
            while self._ready or self._inflight:
                if self._ready:  # launch one, then record whatever has ended (in-process: it)
                    _, slot, edge = heapq.heappop(self._ready)
                    self._launch(edge, slot, executor)
                block = not self._ready
                while finished := sorted(executor.wait(self._inflight, block), key=self._order):
                    for future in finished:  # a retry may add a finished future: loop again
                        self._collect(future, executor)
                    block = False
        finally:
            self.progress.close()
            seconds = before + time.perf_counter() - started
            self.store.set_meta("wall_seconds", seconds)
            if self.executor is None:
                executor.close()
        return self._result(seconds)

    def _order(self, future: Future) -> tuple[int, int]:
        edge, slot, _ = self._inflight[future]
        return self._rank[edge], slot

    def _count_gflops(self) -> dict[str, float]:
        """Training GFLOPs of one epoch per state node ({} when the trainer counts none)."""
        if not hasattr(self.trainer, "epoch_gflops"):
            return {}
        return {name: float(self.trainer.epoch_gflops(state)) for name, state in self.graph.states.items()}

    def _push(self, edge: Edge, slot: int) -> None:
        heapq.heappush(self._ready, (self._priority(edge, slot), slot, edge))

    def _priority(self, edge: Edge, slot: int) -> tuple[float, ...]:
        """Edges train in the graph's order. Racing trains the edges into one node from the
        best source model first, so that the others race against the highest bar."""
        if self.racing is None:
            return (self._rank[edge],)
        source = self._nodes[edge.source]
        score = source.candidates[slot].score if slot < len(source.candidates) else math.nan
        return (self._node_rank[edge.target], -score if math.isfinite(score) else math.inf,
                self._rank[edge])

    def _race(self, edge: Edge, slot: int) -> Racing | None:
        """The racing rule against the bar of ``edge``'s finished competitors: the kept score
        that leaves it out of the target's models (the ``beam``-th best; ``score_at_budget``:
        the best of those whose replay is no dearer than the edge's source, as the edge can only
        end dearer)."""
        if self.racing is None:
            return None
        rivals = [self._candidate(r) for r in self._runs.values()
                  if r.target == edge.target and r.score is not None]
        if self.objective.budgeted:
            cost = self._nodes[edge.source].candidates[slot].gflops
            rivals, place = [c for c in rivals if c.gflops <= cost], 1
        else:
            place = self.beam
        scores = sorted((c.score for c in rivals), reverse=True)
        return self.racing.against(scores[place - 1] if len(scores) >= place else None)

    def _launch(self, edge: Edge, slot: int, executor: Executor, attempt: int = 1) -> None:
        """Start one run of ``edge`` from the source's ``slot``-th model, or settle it at once
        (recorded earlier, source skipped, or a choice node, which trains nothing)."""
        rid = edge_id(edge.source, edge.target, slot)
        stored = self._stored.pop(rid, None) if attempt == 1 else self.store.get_edge(rid)
        if stored is not None and (stored.status == DROPPED or self._reusable(stored)):
            return self._finish(stored, save=False)  # a dropped start stays dropped
        if stored is not None and stored.finished:  # failed, skipped, or its model is gone: anew
            stored = None
        source = self._nodes[edge.source]
        if source.skipped:
            return self._finish(EdgeRecord(edge.source, edge.target, slot, SKIPPED, seconds=0.0,
                                           error=f"source {edge.source} was skipped"))
        parent = source.candidates[slot]
        if self.graph.is_choice(edge.target):
            return self._finish(self._choice_record(edge, slot, parent))
        if stored is not None and attempt == 1:  # interrupted earlier: go on counting its attempts
            attempt = stored.attempts
        resume = stored if stored is not None and stored.snapshot is not None else None
        job = EdgeJob(rid, parent.checkpoint, self.graph.states[edge.target], self.rule,
                      scores=resume.curve if resume else [], snapshot=resume.snapshot if resume else None,
                      race=self._race(edge, slot), climb=self.climb if edge.target in self._judged else None)
        on_epoch = self._epoch_recorder(edge, slot, attempt) if executor.live else None
        self._inflight[executor.submit(self.trainer, job, on_epoch)] = (edge, slot, attempt)

    def _reusable(self, record: EdgeRecord) -> bool:
        """Whether an earlier session's finished run stands: it ended usable and the trainer
        (if it can tell, see :class:`~optplan.protocol.CheckingEdgeTrainer`) still has its
        model. A failed run is tried again; a run whose model was lost is trained again, so
        that no branch is pruned silently."""
        if record.status not in USABLE:
            return False
        intact = getattr(self.trainer, "intact", None)
        return record.checkpoint is None or intact is None or intact(record.checkpoint)

    def _epoch_recorder(self, edge: Edge, slot: int, attempt: int) -> EpochCallback:
        def record(scores: list[float], snapshot: Checkpoint | None) -> None:
            rec = EdgeRecord(edge.source, edge.target, slot, RUNNING, list(scores),
                             snapshot=snapshot, attempts=attempt)
            self.store.put_edge(rec)
            self.progress.epoch(rec.id, scores)
        return record

    def _collect(self, future: Future, executor: Executor) -> None:
        edge, slot, attempt = self._inflight.pop(future)
        rid = edge_id(edge.source, edge.target, slot)
        try:
            outcome: EdgeOutcome = future.result()
        except DiskFull:
            raise
        except Exception as err:  # the worker itself died (pool broken, Ray task lost)
            outcome = EdgeOutcome(rid, [], None, None, 0.0, error=f"{type(err).__name__}: {err}")
        if outcome.status == FAILED and attempt < ATTEMPTS:
            self.store.put_edge(EdgeRecord(edge.source, edge.target, slot, RUNNING, outcome.curve,
                                           attempts=attempt + 1, error=outcome.error))
            return self._launch(edge, slot, executor, attempt + 1)
        self._finish(EdgeRecord(edge.source, edge.target, slot, outcome.status, outcome.curve,
                                outcome.knee, outcome.checkpoint, seconds=outcome.seconds,
                                attempts=attempt, error=outcome.error, losses=outcome.losses))

    def _choice_record(self, edge: Edge, slot: int, parent: Candidate) -> EdgeRecord:
        """A move into a choice node trains nothing: it passes the source model on."""
        knee = Knee(epoch=0, score=parent.score, params=(), reached=True,
                    method=self.rule.method, stop="choice")
        return EdgeRecord(edge.source, edge.target, slot, DONE, [parent.score], knee,
                          parent.checkpoint, seconds=0.0)

    # -- decisions ---------------------------------------------------------------------------

    def _finish(self, record: EdgeRecord, save: bool = True) -> None:
        if save:
            self.store.put_edge(record)
        self._runs[record.id] = record
        self.progress.finished(record)
        target = record.target
        incoming = self.graph.incoming(target)
        if all(e.source in self._nodes for e in incoming) and all(
                rid in self._runs for rid in self._run_ids(incoming)):
            self._decide(target)

    def _run_ids(self, edges: list[Edge]) -> list[str]:
        """Ids of every run along ``edges`` (one per kept model of each source)."""
        return [edge_id(e.source, e.target, slot) for e in edges
                for slot in range(max(len(self._nodes[e.source].candidates), 1))]

    def _decide(self, name: str) -> None:
        """Keep the incoming models of ``name`` the objective wants (or skip it, saying why)."""
        if name == self.graph.start:
            record = NodeRecord(name, [Candidate(score=math.nan, checkpoint=None)])
        else:
            runs = [self._runs[rid] for rid in self._run_ids(self.graph.incoming(name))]
            usable = [self._candidate(r) for r in runs if r.score is not None]
            kept = self.objective.keep(usable, self.beam)
            if usable and not kept:
                why = (f"every incoming model exceeds plan.budget_gflops="
                       f"{self.objective.budget_gflops:g} (the cheapest costs "
                       f"{min(c.gflops for c in usable):g} GFLOPs)")
            else:
                why = "" if kept else "no usable incoming edge: " + "; ".join(
                    f"{r.id} {r.status}" + (f" ({r.error.splitlines()[0]})" if r.error else "") for r in runs)
            record = NodeRecord(name, kept, note=why)
        self._nodes[name] = record
        for slot in range(max(len(record.candidates), 1)):
            for edge in self.graph.outgoing(name):
                if slot < len(record.candidates) or record.skipped:
                    self._push(edge, slot)

    def _candidate(self, run: EdgeRecord) -> Candidate:
        parent = self._nodes[run.source].candidates[run.slot]
        return Candidate(score=run.score, checkpoint=run.checkpoint, edge=run.id,
                         parent=run.source, parent_slot=run.slot, epochs=run.knee.epoch,
                         total_epochs=parent.total_epochs + run.knee.epoch,
                         gflops=parent.gflops + run.knee.epoch * self._epoch_gflops.get(run.target, 0.0))

    # -- the result --------------------------------------------------------------------------

    def _lineage(self, node: str, slot: int) -> list[tuple[str, Candidate]]:
        """The path to ``node``'s ``slot``-th model: (node, candidate) from the start's child on."""
        steps = []
        while node != self.graph.start:
            cand = self._nodes[node].candidates[slot]
            steps.append((node, cand))
            node, slot = cand.parent, cand.parent_slot
        return steps[::-1]

    def _states(self, steps: list[tuple[str, Candidate]]) -> list[tuple[str, Candidate]]:
        return [(n, c) for n, c in steps if not self.graph.is_choice(n)]

    def _end_node(self) -> str:
        """Where the path ends: the graph's final node, or (``end='best'``) the node whose best
        model scored highest (the final node on a tie), as a schedule may gain nothing from
        its last states."""
        if self.end == "graph":
            return self.graph.final
        usable = [n for n in self.graph.order if n in self._nodes and not self._nodes[n].skipped
                  and n != self.graph.start and self._nodes[n].best is not None
                  and self._nodes[n].best.score is not None and math.isfinite(self._nodes[n].best.score)]
        if not usable:
            return self.graph.final
        top = max(self._nodes[n].best.score for n in usable)
        winners = [n for n in usable if self._nodes[n].best.score == top]
        return self.graph.final if self.graph.final in winners else winners[0]

    def _result(self, seconds: float) -> PlanResult:
        end = self._end_node()
        final = self._nodes.get(end)
        notes = [f"{n.name} skipped: {n.note}" for n in self._nodes.values() if n.skipped]
        notes += [f"{r.id} {r.status}: {r.error.splitlines()[0]}" for r in self._runs.values()
                  if r.error and r.status != SKIPPED]
        if final is None or final.skipped:
            why = (f"no path to the final node {self.graph.final!r} fits plan.budget_gflops="
                   f"{self.objective.budget_gflops:g} (training GFLOPs of its replay); raise it, or "
                   "plan with plan.objective=score" if self.objective.budgeted else
                   f"no usable path reaches the final node {self.graph.final!r}")
            raise OptplanError(why + ":\n  " + "\n  ".join(notes))
        chosen = self._lineage(end, 0)
        steps = self._states(chosen)
        path = [self.graph.states[n] for n, _ in steps]
        edges = sorted(self._runs.values(),
                       key=lambda r: (self._rank[Edge(r.source, r.target)], r.slot))
        points = self._paths(edges)
        return PlanResult(
            path=path, nodes=[n for n, _ in steps], path_epochs=[c.epochs for _, c in steps],
            path_scores=[c.score for _, c in steps],
            stages=[Stage(state=s, epochs=c.epochs) for s, (_, c) in zip(path, steps) if c.epochs > 0],
            score=final.best.score, checkpoint=final.best.checkpoint,
            search_epochs=sum(r.epochs for r in edges), search_seconds=seconds, edges=edges,
            decisions=[self._nodes[n] for n in self.graph.order if n in self._nodes],
            pareto=pareto_front(points), notes=notes, budget_epochs=self.budget_epochs,
            epoch_gflops=dict(self._epoch_gflops),
            pareto_gflops=pareto_front([p for p in points if self._completes(p.nodes[-1])],
                                       cost=attrgetter("gflops")),
            budget_gflops=self.objective.budget_gflops, graph=self.graph, chosen=[n for n, _ in chosen])

    def _paths(self, runs: list[EdgeRecord]) -> list[ParetoPoint]:
        """Every usable trained run ends a replayable path: its score, epochs and GFLOPs."""
        points = []
        for run in runs:
            if run.score is None or self.graph.is_choice(run.target):
                continue
            steps = self._states(self._lineage(run.source, run.slot))
            steps.append((run.target, self._candidate(run)))
            stages = tuple(Stage(state=self.graph.states[n], epochs=c.epochs) for n, c in steps if c.epochs > 0)
            points.append(ParetoPoint(run.score, sum(s.epochs for s in stages),
                                      tuple(n for n, _ in steps), stages, run.id, steps[-1][1].gflops))
        return points

    def _completes(self, node: str) -> bool:
        """Whether a path ending at ``node`` is one the plan may choose: any node with
        ``end='best'``, else the final node (or a state a final choice node chooses from)."""
        final = self.graph.final
        return self.end == "best" or node == final or (
            self.graph.is_choice(final) and any(e.source == node for e in self.graph.incoming(final)))
