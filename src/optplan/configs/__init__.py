"""Configs shipped with optplan (``optplan demo`` uses them; copy one to start your own)."""

from pathlib import Path

CONFIG_DIR = Path(__file__).parent


def config_path(name: str) -> Path:
    """Path of a shipped config by name (``"demo"`` -> ``.../configs/demo.yaml``)."""
    return CONFIG_DIR / f"{name}.yaml"
