"""optplan: plan how a 3D ConvNet is trained (ICML 2021 "Optimization Planning for 3D ConvNets").

The package mirrors the pipeline: ``data`` -> ``models`` -> ``train`` -> ``plan`` -> ``report``,
with ``knee`` (the stopping rule) shared by ``train`` and ``plan`` and ``cli`` a thin shell.
"""

import os

from optplan.errors import ConfigError, OptplanError

# OpenMP threads wait passively unless the user chose otherwise: on a shared machine a spinning
# thread that waits for a busy core slows every step (see optplan.train.threads). This must be
# set before torch starts its thread pool, hence here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
__all__ = ["ConfigError", "OptplanError", "__version__"]
