"""Argument helpers shared by the subcommands (config file plus dotted overrides)."""

from __future__ import annotations

import argparse

from optplan.config import OptplanConfig, load_config


def is_override(arg: str) -> bool:
    """Whether a command-line word is a ``key.sub=value`` override (not an option)."""
    return "=" in arg and not arg.startswith("-")


def add_config_arguments(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """``CONFIG`` (YAML, optional unless ``required``) and ``key.sub=value`` overrides (before or
    after the options: :func:`optplan.cli.main` adds those after to ``overrides``)."""
    parser.add_argument("config", nargs=None if required else "?", metavar="CONFIG",
                        help="YAML config file" + ("" if required else " (default: built-in defaults)"))
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="overrides with dotted keys, e.g. train.seed=3 plan.clip_lengths=[4,8]")


def config_and_overrides(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """CONFIG and the overrides from the command line; a CONFIG that looks like an override is one.
    ``--quiet`` also silences the epoch bars (``train.progress=false``), not only the command's own."""
    path, overrides = args.config, list(args.overrides)
    if path is not None and "=" in path and not path.endswith((".yaml", ".yml")):
        path, overrides = None, [path, *overrides]
    if getattr(args, "quiet", False):
        overrides.append("train.progress=false")
    return path, overrides


def config_from_args(args: argparse.Namespace) -> OptplanConfig:
    """Load the config named on the command line (see :func:`config_and_overrides`)."""
    return load_config(*config_and_overrides(args))
