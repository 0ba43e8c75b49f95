"""The one configuration tree: YAML files validated by pydantic, with dotted overrides.

Every key and its default live in :mod:`optplan.defaults`; this module loads YAML, applies
``key.sub=value`` overrides and turns validation failures into a
:class:`~optplan.errors.ConfigError` that names the field, the value and what is allowed. It
imports nothing of the pipeline, so every stage can import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from optplan.defaults import OptplanConfig
from optplan.errors import ConfigError

__all__ = ["OptplanConfig", "apply_overrides", "dump_config", "format_validation_error", "load_config",
           "parse_override", "read_yaml", "validate"]


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into its key path and a YAML-parsed value (``1e-3``, ``[4,8]``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not of the form key.sub=value (e.g. train.seed=3)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(tree: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each dotted key in a nested dict (creating sections as needed) and return it."""
    for text in overrides:
        path, value = parse_override(text)
        node = tree
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {part!r} is a value, not a section")
            node = child
        node[path[-1]] = value
    return tree


def format_validation_error(err: ValidationError, source: str = "config") -> str:
    """One line per problem: the dotted field, the value given, and what is allowed."""
    lines = [f"invalid {source}:"]
    for item in err.errors():
        field = ".".join(str(p) for p in item["loc"]) or "(root)"
        given = item.get("input")
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; `optplan config --defaults` lists every key)"
        shown = repr(given) if not isinstance(given, dict) else "{...}"
        lines.append(f"  {field} = {shown}: {msg}")
    return "\n".join(lines)


def validate(tree: dict[str, Any], source: str = "config") -> OptplanConfig:
    """Validate a nested dict into an :class:`OptplanConfig` or raise :class:`ConfigError`."""
    try:
        return OptplanConfig.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """The safe loader, refusing a key written twice in one mapping: PyYAML would keep the last
    silently, so a second ``train:`` section would drop the first one's settings unseen."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key.value!r} appears twice; merge the two into one", key.start_mark)
                seen.add(key.value)
        return super().construct_mapping(node, deep)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, refusing missing files, text that is not UTF-8, keys given twice
    and non-mapping documents clearly (YAML errors give the line)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {str(p)!r} is not UTF-8 text (byte {err.start} cannot be "
                          f"decoded); save it as UTF-8") from None
    try:
        tree = yaml.load(text, Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {str(p)!r} is not valid YAML: {err}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping of sections, not {type(tree).__name__}")
    return tree


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> OptplanConfig:
    """Load a YAML config (or the defaults when ``path`` is None) and apply dotted overrides."""
    tree = read_yaml(path) if path is not None else {}
    tree = apply_overrides(tree, list(overrides or []))
    return validate(tree, source=f"config {str(path)!r}" if path else "config")


def dump_config(cfg: OptplanConfig) -> str:
    """The config as YAML (paths as strings), as written into every run directory."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
