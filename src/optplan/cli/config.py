"""``optplan config``: show the resolved configuration or every key with its default."""

from __future__ import annotations

import argparse

from optplan.cli.common import add_config_arguments, config_from_args


def _describe(model_cls, prefix: str = "") -> list[str]:
    from pydantic import BaseModel

    lines = []
    for name, field in model_cls.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            lines.append(f"{prefix}{name}:  # {field.description or ''}")
            lines += _describe(ann, prefix + "  ")
        else:
            default = field.get_default(call_default_factory=True)
            lines.append(f"{prefix}{name}: {default!r}  # {field.description or ''}")
    return lines


def run(args: argparse.Namespace) -> int:
    from optplan.config import OptplanConfig, dump_config

    if args.defaults:
        print("\n".join(_describe(OptplanConfig)))
    else:
        print(dump_config(config_from_args(args)), end="")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="print the resolved config (or --defaults: every key)",
                       description="Validate a config with its overrides and print it as YAML.")
    add_config_arguments(p)
    p.add_argument("--defaults", action="store_true", help="list every key, its default and meaning")
    p.set_defaults(func=run)
