"""Per-epoch logs of a run: one JSON line per epoch for programs, the same record as a text line
for people (``tail -f``), and its numbers as TensorBoard scalars."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from optplan.records_io import to_jsonable

LOG_NAME = "log.jsonl"
TEXT_LOG_NAME = "log.txt"


class RunLogger:
    """Appends records to ``run_dir/log.jsonl`` and ``run_dir/log.txt`` (one timestamped
    ``key=value`` line each) and writes their numbers to TensorBoard.

    TensorBoard is optional: without the package (or with ``tensorboard=False``) only the JSONL
    file is written. ``enabled=False`` (ranks other than 0 of a distributed run) writes nothing.
    Re-opening a run directory appends, so a resumed run keeps one log.
    """

    def __init__(self, run_dir: str | Path, *, tensorboard: bool = True, enabled: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self._writer = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard not installed: the JSONL log is enough
                SummaryWriter = None
            if SummaryWriter is not None:
                self._writer = SummaryWriter(log_dir=str(self.run_dir / "tb"))

    @property
    def path(self) -> Path:
        return self.run_dir / LOG_NAME

    def log(self, record: dict[str, Any], *, step: int | None = None, prefix: str = "") -> None:
        """Append one record (named ``prefix`` in the text log); its numeric fields go to
        TensorBoard under their own names at ``step``. The names are the same in every run
        directory (a plan's edges, a replay), each directory's ``tb/`` being one TensorBoard run,
        so ``tensorboard --logdir RUN`` overlays every edge's ``score`` and ``loss``."""
        if not self.enabled:
            return
        line = json.dumps(to_jsonable(record))  # NaN (a diverged epoch) as null: every line stays JSON
        with self.path.open("a") as f:
            f.write(line + "\n")
        with (self.run_dir / TEXT_LOG_NAME).open("a") as f:
            f.write(text_line(record, prefix) + "\n")
        if self._writer is not None and step is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._writer.add_scalar(key, value, step)
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def text_line(record: dict[str, Any], prefix: str = "") -> str:
    """``2026-01-31 12:00:00 c16: epoch=3 loss=0.5321 ...``: local time, the run's name
    (``prefix``), the record's keys in order, floats to 4 significant digits."""
    def shown(value: Any) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    name = prefix.rstrip("/")
    fields = " ".join(f"{k}={shown(v)}" for k, v in record.items())
    return f"{time.strftime('%Y-%m-%d %H:%M:%S')} {name + ': ' if name else ''}{fields}"


def read_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """All records of ``run_dir/log.jsonl`` (an interrupted last line is skipped)."""
    path = Path(run_dir) / LOG_NAME
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
