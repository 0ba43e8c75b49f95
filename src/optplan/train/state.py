"""``optplan.train.state.State``, kept as a public path; the class lives in :mod:`optplan.state`."""

from optplan.state import State

__all__ = ["State"]
