"""One JSON form for optplan's records: :func:`to_jsonable` and :func:`from_jsonable`.

Runs, plans and stores write their records (a knee, a cost, an edge run, a plan's result) as
JSON, which has no NaN: a NaN or infinite float is written as ``null`` and read back as NaN
where the field is a float (as None where the field may be None; a diverged epoch's score is
NaN, an unscored one None). Tuples are written as lists and read back as tuples, paths as
strings, nested records in their own form; on reading, keys a record does not know are ignored
and a missing one takes the field's default, so a file written before a field was added (or
after one was dropped) still loads.

A record is a dataclass that mixes in :class:`JsonRecord` for ``to_dict`` / ``from_dict``. It
writes its fields in order, or its ``json_keys`` when those differ (a computed property written
for readers, a field left out): the files keep the key order they always had. This module
imports nothing of the pipeline, so every layer can use it.

:func:`write_atomic` writes a record file that other processes read while it is written (a
benchmark's rows, read by the process that tabulates them): a reader sees the old file or the
new one, never a partial one.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import tempfile
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar, Union

R = TypeVar("R")


def to_jsonable(value: Any) -> Any:
    """``value`` as JSON values: a record as the dict of its ``json_keys`` (default: its fields,
    in order); an object with ``to_dict`` (a pydantic :class:`~optplan.state.State` or
    ``Stage``) as that; a non-finite float as None; a tuple as a list; a ``Path`` as its string;
    lists and dicts item by item."""
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int)):  # (bool is an int)
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, JsonRecord) or (dataclasses.is_dataclass(value) and not hasattr(value, "to_dict")):
        keys = getattr(value, "json_keys", None) or [f.name for f in dataclasses.fields(value)]
        return {k: to_jsonable(getattr(value, k)) for k in keys}
    if callable(getattr(value, "to_dict", None)):
        return value.to_dict()
    raise TypeError(f"{type(value).__name__} has no JSON form (not a record, no to_dict)")


def from_jsonable(cls: type[R], data: Mapping[str, Any]) -> R:
    """The record ``cls`` (a dataclass) from its JSON dict, each field read by its type hint
    (see the module docstring). A field without a default that ``data`` lacks is an error,
    unless it may be None."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a {cls.__name__} record must be a JSON object, got {type(data).__name__}")
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.name in data:
            kwargs[f.name] = _read(hints[f.name], data[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            if not _optional(hints[f.name]):
                raise ValueError(f"a {cls.__name__} record needs {f.name!r}; the file is damaged or not "
                                 f"optplan's")
            kwargs[f.name] = None
    return cls(**kwargs)


class JsonRecord:
    """Mixin of a record dataclass: ``to_dict`` / ``from_dict`` in the one JSON form.

    ``json_keys``: what ``to_dict`` writes, in order, fields or properties (None: the fields)."""

    json_keys: typing.ClassVar[tuple[str, ...] | None] = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (NaN as None; see :func:`to_jsonable`)."""
        return to_jsonable(self)

    @classmethod
    def from_dict(cls: type[R], data: Mapping[str, Any]) -> R:
        """Inverse of :meth:`to_dict` (see :func:`from_jsonable`)."""
        return from_jsonable(cls, data)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType) and type(None) in typing.get_args(tp)


def _read(tp: Any, value: Any) -> Any:
    """``value`` read from JSON as type ``tp``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if value is None and len(options) < len(args):
            return None
        return _read(options[0], value) if len(options) == 1 else value
    if value is None:  # null where no None belongs: NaN for a float, empty for a container
        if tp is float:
            return math.nan
        container = origin or tp
        return container() if container in (list, tuple, dict) else None
    if origin is list:
        return [_read(args[0] if args else Any, v) for v in value]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_read(args[0], v) for v in value)
        return tuple(_read(a, v) for a, v in zip(args, value)) if args else tuple(value)
    if origin is dict:
        of = args[1] if len(args) == 2 else Any
        return {k: _read(of, v) for k, v in value.items()}
    if tp is Path:
        return Path(value)
    if isinstance(tp, type):
        if callable(getattr(tp, "from_dict", None)):  # a record, or State
            return tp.from_dict(value)
        if callable(getattr(tp, "model_validate", None)):  # a pydantic model (Stage)
            return tp.model_validate(value)
        if dataclasses.is_dataclass(tp):
            return from_jsonable(tp, value)
    return value


def write_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``:
    a process reading ``path`` meanwhile sees the old content or the new, never a truncated
    file, and an error mid-write leaves the old file as it was (the temporary one removed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
