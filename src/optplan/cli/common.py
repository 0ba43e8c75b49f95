"""Argument helpers shared by the subcommands (config file plus dotted overrides)."""

from __future__ import annotations

import argparse

from optplan.config import OptplanConfig, load_config


def add_config_arguments(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """``CONFIG`` (YAML, optional unless ``required``) and trailing ``key.sub=value`` overrides."""
    parser.add_argument("config", nargs=None if required else "?", metavar="CONFIG",
                        help="YAML config file" + ("" if required else " (default: built-in defaults)"))
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="overrides with dotted keys, e.g. train.seed=3 plan.clip_lengths=[4,8]")


def config_and_overrides(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """CONFIG and the overrides from the command line; a CONFIG that looks like an override is one."""
    path, overrides = args.config, list(args.overrides)
    if path is not None and "=" in path and not path.endswith((".yaml", ".yml")):
        path, overrides = None, [path, *overrides]
    return path, overrides


def config_from_args(args: argparse.Namespace) -> OptplanConfig:
    """Load the config named on the command line (see :func:`config_and_overrides`)."""
    return load_config(*config_and_overrides(args))
