"""``optplan config``: show the resolved configuration or every key with its default."""

from __future__ import annotations

import argparse
from typing import Any

import yaml
from pydantic import BaseModel

from optplan.cli.common import add_config_arguments, config_from_args


def _inline(value: Any) -> str:
    """A JSON-ready value as one line of YAML flow style (``[4, 8]``, ``null``, ``runs/default``)."""
    return yaml.safe_dump([value], default_flow_style=True, width=float("inf")).strip()[1:-1]


def describe(model: BaseModel, prefix: str = "") -> list[str]:
    """Every key of ``model`` with its value and meaning, as YAML lines that load back (values
    dumped in pydantic's JSON mode: paths as strings, tuples as lists, None as null)."""
    values = model.model_dump(mode="json")
    lines = []
    for name, field in type(model).model_fields.items():
        comment = f"  # {' '.join(field.description.split())}" if field.description else ""
        child = getattr(model, name)
        if isinstance(child, BaseModel):
            lines.append(f"{prefix}{name}:{comment}")
            lines += describe(child, prefix + "  ")
        else:
            lines.append(f"{prefix}{name}: {_inline(values[name])}{comment}")
    return lines


def run(args: argparse.Namespace) -> int:
    from optplan.config import OptplanConfig, dump_config

    if args.defaults:
        print("\n".join(describe(OptplanConfig())))
    else:
        print(dump_config(config_from_args(args)), end="")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="print the resolved config (or --defaults: every key)",
                       description="Validate a config with its overrides and print it as YAML.")
    add_config_arguments(p)
    p.add_argument("--defaults", action="store_true", help="list every key, its default and meaning")
    p.set_defaults(func=run)
