"""The package's import arrows follow the pipeline and form no circle.

Every module under ``src/optplan`` is parsed (not imported), and every ``optplan.*`` import is
collected, including imports inside functions and ``TYPE_CHECKING`` blocks and the names a
package's ``__init__`` exports lazily through :func:`optplan._lazy.lazy_exports`: an import
deferred into a function is still an arrow.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# The pipeline, upstream first. A module may import its own layer and any layer before it.
PIPELINE = ["data", "models", "knee", "train", "plan", "report", "bench", "demo", "cli"]
ALIASES = {"__main__": "cli"}  # ``python -m optplan`` is the command line

# Top-level modules any layer may import. Each may import only other helpers, so no arrow
# reaches a later layer through one of them.
HELPERS = {
    "optplan": "the package root: version and the two exception types",
    "optplan.errors": "the exception types every layer raises",
    "optplan._lazy": "the PEP 562 lazy-export helper of the package __init__ files",
    "optplan.defaults": "every config section with its defaults, pure pydantic",
    "optplan.config": "loads YAML and overrides into the sections of optplan.defaults",
    "optplan.configs": "the YAML files shipped in the package",
    "optplan.state": "State: the trainer's input and the planner's node",
    "optplan.protocol": "Checkpoint and the trainer protocol the planner calls (STYLE's exception)",
    "optplan.records_io": "the one JSON form of records (NaN as null), pure standard library",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((SRC / "optplan").rglob("*.py"))}


def _target(name: str, modules: dict[str, Path]) -> str:
    """The module an imported dotted name lives in (a name inside a module maps to the module)."""
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _lazy_targets(call: ast.Call, package: str) -> list[str]:
    """Submodules named in ``lazy_exports(__name__, {"sub": [...], ...})``."""
    if len(call.args) < 2 or not isinstance(call.args[1], ast.Dict):
        return []
    return [f"{package}.{k.value}" for k in call.args[1].keys if isinstance(k, ast.Constant)]


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "optplan")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "optplan":
            # ``from optplan.pkg import sub`` imports the submodule when there is one.
            found.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                         else node.module for a in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "lazy_exports":
            found.update(_lazy_targets(node, name))
    assert not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(ast.parse(path.read_text()))), \
        f"{name}: relative imports are not walked; use absolute ones"
    return {_target(t, modules) for t in found} - {name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer(module: str) -> int | None:
    """Position in PIPELINE, or None for a helper."""
    if module in HELPERS:
        return None
    top = module.split(".")[1]
    top = ALIASES.get(top, top)
    assert top in PIPELINE, f"{module} is in no layer: add it to PIPELINE or HELPERS"
    return PIPELINE.index(top)


def test_no_import_runs_backwards() -> None:
    backwards = []
    for module, targets in _graph().items():
        here = _layer(module)
        for target in sorted(targets):
            there = _layer(target)
            if here is None and there is not None:
                backwards.append(f"{module} (helper) -> {target}")
            elif here is not None and there is not None and there > here:
                backwards.append(f"{module} -> {target}")
    assert not backwards, "imports against the pipeline " + " -> ".join(PIPELINE) + ":\n" + "\n".join(backwards)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_walker_sees_deferred_and_lazy_imports() -> None:
    graph = _graph()
    assert "optplan.errors" in graph["optplan.data.annotations"]
    assert "optplan.data.synth" in graph["optplan.data"]  # a lazy export is an arrow too
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
