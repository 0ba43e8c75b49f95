"""The optimiser of a state: fresh SGD at the state's constant learning rate."""

from __future__ import annotations

import torch
from torch import nn

from optplan.train.config import TrainConfig
from optplan.state import State

# State.extra keys that override the train section for one state (the "extra optimiser fields").
OPTIMIZER_EXTRAS = ("momentum", "nesterov", "weight_decay")


def make_optimizer(model: nn.Module, state: State, train: TrainConfig) -> torch.optim.SGD:
    """SGD with momentum/Nesterov/weight decay from ``train`` (or ``state.extra``) at ``state.lr``.

    A new optimiser per state is the paper's rule: momentum buffers never carry across a
    transition. Nesterov needs momentum > 0, so it is dropped when momentum is 0.
    """
    opts = {k: state.extra.get(k, getattr(train, k)) for k in OPTIMIZER_EXTRAS}
    momentum = float(opts["momentum"])
    return torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad],
        lr=state.lr,
        momentum=momentum,
        nesterov=bool(opts["nesterov"]) and momentum > 0,
        weight_decay=float(opts["weight_decay"]),
    )


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate (used by the hand-tuned baseline schedules)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
