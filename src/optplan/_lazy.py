"""Lazy package exports (PEP 562), shared by the pipeline packages.

``optplan --help`` and a light import such as ``optplan.train.State`` must not pay for torch,
PyAV or scipy: so a package's ``__init__`` names its exports and their submodules, and each name
is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, list[str]]) -> tuple[
        list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for ``package``; ``exports`` maps a submodule name to
    the names it provides."""
    module_of = {name: module for module, names in exports.items() for name in names}
    names = sorted(module_of)
    namespace = importlib.import_module(package).__dict__

    def getattr_(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value  # later look-ups skip this hook
        return value

    def dir_() -> list[str]:
        return sorted(set(names) | {k for k in namespace if not k.startswith("_")})

    return names, getattr_, dir_
