"""``optplan`` command line: a thin shell over the library.

Each subcommand lives in its own module of this package exposing ``register(subparsers)``;
the handler it sets as ``func`` receives the parsed namespace and returns an exit status.
User mistakes (:class:`~optplan.errors.OptplanError`) print one message and exit 2, without a
traceback; Ctrl-C exits 130 after the handler has saved what it can. Dotted overrides
(``key.sub=value``) may follow options, as PySlowFast takes them at the end.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from optplan import __version__
from optplan.cli.common import is_override
from optplan.errors import OptplanError

# Order is the order shown in ``optplan --help``: the pipeline, then the tools.
SUBCOMMAND_MODULES = ["demo", "data", "models", "train", "eval", "knee", "plan", "report", "export", "bench", "config"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optplan",
        description="Plan how a 3D ConvNet is trained: knee-terminated training states and "
                    "dynamic programming over their order (Qiu et al., ICML 2021).",
        epilog="Run 'optplan COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"optplan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"optplan.cli.{name}")
        except ModuleNotFoundError as err:  # a command still being built is simply not listed
            if err.name == f"optplan.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def _take_trailing_overrides(parser: argparse.ArgumentParser, args: argparse.Namespace,
                             extra: list[str]) -> None:
    """Add the overrides argparse left over (those after an option) to the command's own.

    argparse fills the ``KEY=VALUE`` positional from one run of positionals only, so in
    ``optplan plan c.yaml --out R knee.patience=3`` the last one is left over. Anything else
    left over, or an override to a command that takes none, is refused as argparse would.
    """
    if not extra:
        return
    if not hasattr(args, "overrides") or not all(map(is_override, extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = [*args.overrides, *extra]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    _take_trailing_overrides(parser, args, extra)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except OptplanError as err:
        print(f"optplan {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"optplan {args.command}: interrupted; finished work is saved, run again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
