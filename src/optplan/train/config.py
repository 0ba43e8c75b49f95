"""The ``train`` and ``knee`` sections: the optimiser, the loop, and the stopping rule."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrainConfig(BaseModel):
    """Optimiser and loop settings shared by every state (the state sets lr, clip and batch)."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, description="Seed for model init, sampling and augmentation.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="'auto': cuda when available.")
    amp: Literal["off", "bf16", "fp16"] = Field("off", description="Mixed precision on GPU.")
    channels_last: bool = Field(True, description="channels_last_3d memory format on GPU.")
    threads: int | None = Field(
        None, ge=1, description="torch intra-op threads (None: the cores idle when training starts, "
                                "so a shared machine is not oversubscribed; the thread count can change "
                                "the last bits of CPU results, so set it for bit-exact replays).")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum.")
    nesterov: bool = Field(True, description="Nesterov momentum.")
    weight_decay: float = Field(1e-4, ge=0.0, description="L2 weight decay.")
    grad_clip: float | None = Field(40.0, gt=0.0, description="Gradient-norm clip (None: off).")
    eval_batch_size: int = Field(16, ge=1, description="Clips per validation/test step (per process).")
    tensorboard: bool = Field(True, description="Write TensorBoard scalars next to the JSONL log.")
    progress: bool = Field(True, description="Progress bars on the terminal.")


class KneeConfig(BaseModel):
    """When a state has given what it can (see ``optplan.knee``)."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["paper", "stable", "kneedle", "gain"] = Field(
        "paper", description="Stopping rule: paper, stable, kneedle or gain (see optplan.knee).")
    metric: Literal["auto", "top1", "top135", "loss"] = Field(
        "auto", description="What validation curves measure: 'top135' (the paper's mean of top-1/3/5), "
                            "'top1', 'loss' (as exp(-cross-entropy), rising in 0..1), or 'auto' "
                            "(top1 under 50 classes, where top-1/3/5 saturates; top135 otherwise).")
    patience: int = Field(10, ge=1, description="T: epochs past the knee before stopping.")
    max_epochs: int | None = Field(None, ge=1, description="Hard cap of epochs per state (None: paper rule).")
    refits: int | None = Field(
        None, ge=2, description="'stable' rule: refits whose knee must agree (None: 40% of patience, >= 2).")
    min_gain: float = Field(
        0.01, ge=0.0, description="'gain' rule: stop once the fit promises less than this over the next T epochs.")
