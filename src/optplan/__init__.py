"""optplan: plan how a 3D ConvNet is trained (ICML 2021 "Optimization Planning for 3D ConvNets").

The package mirrors the pipeline: ``data`` -> ``models`` -> ``train`` -> ``plan`` -> ``report``,
with ``knee`` (the stopping rule) shared by ``train`` and ``plan`` and ``cli`` a thin shell.
"""

from optplan.errors import ConfigError, OptplanError

__version__ = "0.1.0"
__all__ = ["ConfigError", "OptplanError", "__version__"]
