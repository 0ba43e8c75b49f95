"""Where a plan's records live. Crash safety is a property of the store, not of the planner.

:class:`InMemoryStore` keeps records in dicts (tests, "what if" runs); :class:`SQLiteStore`
writes every change at once to one SQLite file in WAL mode, so a killed plan loses at most the
epoch in progress. Only the driver process writes; workers return their results to it.
"""

from __future__ import annotations

import json
import sqlite3
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from optplan.errors import DiskFull, OptplanError
from optplan.plan.records import EdgeRecord

STORE_FILE = "plan.sqlite"


def _normalise(value: Any) -> Any:
    """JSON round trip, so tuples and lists (and 1 and 1.0 kept apart) compare as stored."""
    return json.loads(json.dumps(value, default=str))


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict) and tree:
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix or "(root)": tree}


def differing_keys(stored: Any, given: Any, defaults: Any = None) -> list[str]:
    """Dotted keys whose values differ, sorted. A key ``stored`` lacks does not differ when its
    value in ``given`` is its value in ``defaults`` (what a run meant before the key existed)."""
    old, new, base = _flatten(stored), _flatten(given), _flatten(defaults or {})
    return [key for key in sorted(old.keys() | new.keys())
            if old.get(key, "(absent)") != new.get(key, "(absent)")
            and not (key not in old and key in base and new.get(key) == base[key])]


def config_diff(stored: Any, given: Any, limit: int = 12, defaults: Any = None) -> list[str]:
    """Dotted keys whose values differ, as ``key: run has X, now Y`` lines."""
    old, new = _flatten(stored), _flatten(given)
    lines = [f"{key}: run has {json.dumps(old.get(key, '(absent)'))[:80]}, "
             f"now {json.dumps(new.get(key, '(absent)'))[:80]}" for key in differing_keys(stored, given, defaults)]
    return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])


class PlanStore(ABC):
    """The one interface the planner writes through (edges and run metadata).

    Node decisions are not stored: they follow from the edges, and the planner recomputes them
    on resume (:class:`~optplan.plan.result.PlanResult` carries them)."""

    def check_config(self, config: dict[str, Any], defaults: dict[str, Any] | None = None) -> None:
        """Record the config of a new run, or refuse one that differs from the stored one.

        ``defaults`` (shaped like ``config``) says what a key meant before it existed: a key the
        stored config lacks matches when its value here is that default, so a run directory made
        before a new option was added resumes (new options default to the old behaviour), and its
        record then takes the new keys."""
        config = _normalise(config)
        stored = self.get_meta("config")
        if stored == config:
            return
        if stored is not None:
            defaults = _normalise(defaults or {})
            if differing_keys(stored, config, defaults):
                raise OptplanError(f"{self.where} holds a plan made with a different config:\n  "
                                   + "\n  ".join(config_diff(stored, config, defaults=defaults))
                                   + "\nuse a new run directory, or the config the run was made with")
        self.set_meta("config", config)

    @property
    def where(self) -> str:
        """Where the records are, for messages."""
        return "the store"

    @abstractmethod
    def get_meta(self, key: str) -> Any: ...

    @abstractmethod
    def set_meta(self, key: str, value: Any) -> None: ...

    @abstractmethod
    def get_edge(self, id: str) -> EdgeRecord | None: ...

    @abstractmethod
    def put_edge(self, record: EdgeRecord) -> None: ...

    @abstractmethod
    def edges(self) -> list[EdgeRecord]: ...

    def close(self) -> None:
        """Release the store (a no-op unless it holds a connection)."""


class InMemoryStore(PlanStore):
    """Records in dicts, gone with the process. Records are copied in and out (via dicts), so
    callers cannot change stored values by mutating what they passed or got back."""

    def __init__(self) -> None:
        self._meta: dict[str, str] = {}
        self._edges: dict[str, dict[str, Any]] = {}

    def get_meta(self, key: str) -> Any:
        return json.loads(self._meta[key]) if key in self._meta else None

    def set_meta(self, key: str, value: Any) -> None:
        self._meta[key] = json.dumps(value)

    def get_edge(self, id: str) -> EdgeRecord | None:
        return EdgeRecord.from_dict(self._edges[id]) if id in self._edges else None

    def put_edge(self, record: EdgeRecord) -> None:
        self._edges[record.id] = record.to_dict()

    def edges(self) -> list[EdgeRecord]:
        return [EdgeRecord.from_dict(d) for d in self._edges.values()]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS edges (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, target TEXT NOT NULL, slot INTEGER NOT NULL,
    status TEXT NOT NULL, epochs INTEGER NOT NULL, score REAL, seconds REAL NOT NULL,
    record TEXT NOT NULL);
"""


class SQLiteStore(PlanStore):
    """One SQLite file (WAL, autocommit): each write is durable before the planner goes on.

    Tables ``edges`` (id, source, target, slot, status, epochs, score, seconds, record JSON)
    and ``meta`` (key, JSON value: config, wall time), so a run can be inspected with the
    ``sqlite3`` shell. (Stores of earlier versions also hold a ``nodes`` table; nothing reads it.)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            raise OptplanError(f"{self.path} is not a plan store ({err}); use another run directory") from None

    @classmethod
    def in_run_dir(cls, run_dir: str | Path) -> "SQLiteStore":
        """The store of a run directory: ``RUN/plan.sqlite``."""
        return cls(Path(run_dir) / STORE_FILE)

    @property
    def where(self) -> str:
        return str(self.path)

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        try:
            self._db.execute(sql, args)
        except sqlite3.OperationalError as err:
            if getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                raise DiskFull(self.path) from None
            raise

    def _one(self, sql: str, *args: Any) -> Any:
        row = self._db.execute(sql, args).fetchone()
        return None if row is None else json.loads(row[0])

    def get_meta(self, key: str) -> Any:
        return self._one("SELECT value FROM meta WHERE key = ?", key)

    def set_meta(self, key: str, value: Any) -> None:
        self._write("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_edge(self, id: str) -> EdgeRecord | None:
        d = self._one("SELECT record FROM edges WHERE id = ?", id)
        return None if d is None else EdgeRecord.from_dict(d)

    def put_edge(self, record: EdgeRecord) -> None:
        self._write("INSERT OR REPLACE INTO edges VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (record.id, record.source, record.target, record.slot, record.status,
                     record.epochs, record.score, record.seconds, json.dumps(record.to_dict())))

    def edges(self) -> list[EdgeRecord]:
        rows = self._db.execute("SELECT record FROM edges ORDER BY rowid").fetchall()
        return [EdgeRecord.from_dict(json.loads(r[0])) for r in rows]

    def close(self) -> None:
        self._db.close()
