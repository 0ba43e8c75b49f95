"""One epoch of training and one pass of validation: the inner loops, nothing else.

Clips are ``(N, C, T, H, W)`` float tensors, labels ``(N,)`` int64. Neither loop synchronises
with the device per step: losses and hit counts accumulate in device tensors and are read once
at the end (the progress bar reads the running loss every ``PROGRESS_EVERY`` steps only).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from dataclasses import dataclass
from typing import Iterable

import torch
from torch import nn

from optplan.models import classification_loss

PROGRESS_EVERY = 10  # steps between progress-bar refreshes (each one is a host sync)
TOPK = (1, 3, 5)


@dataclass(frozen=True)
class Precision:
    """Where and how tensors are computed: device, autocast dtype (None: fp32), memory format."""

    device: torch.device
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def to_device(self, clips: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        non_blocking = self.device.type == "cuda"
        clips = clips.to(self.device, non_blocking=non_blocking)
        if self.channels_last:
            clips = clips.contiguous(memory_format=torch.channels_last_3d)
        return clips, labels.to(self.device, non_blocking=non_blocking)


@dataclass(frozen=True)
class EpochStats:
    """What one training epoch cost and how it went. ``loss`` is the mean per-step loss."""

    loss: float
    clips: int
    steps: int
    seconds: float

    @property
    def clips_per_s(self) -> float:
        return self.clips / self.seconds if self.seconds > 0 else 0.0


KNEE_METRICS = ("top1", "top135", "loss")
"""What a validation curve measures (``knee.metric``): ``top1``; ``top135``, the paper's mean of
top-1/3/5 (saturates near 1 on a few dozen classes, where a 0.47 and a 0.89 top-1 model scored
0.835 and 0.96); ``loss``, reported as ``exp(-mean cross-entropy)`` (the geometric mean of the
true class's probability) so that, like the others, it lies in 0..1 and rises as the model
improves, which the knee's rising-curve fit needs."""

AUTO_TOP1_BELOW = 50
"""``knee.metric=auto`` means top1 for fewer classes than this, top135 otherwise: with few
classes top-3 and top-5 are near 1 for any model, so top135 hides the top-1 gap (issue 10)."""


def resolve_metric(metric: str, num_classes: int) -> str:
    """The metric ``knee.metric`` names on a dataset of ``num_classes`` classes (``auto``
    resolved by :data:`AUTO_TOP1_BELOW`; any other value as given)."""
    if metric != "auto":
        return metric
    return "top1" if num_classes < AUTO_TOP1_BELOW else "top135"


def chance_score(metric: str, num_classes: int) -> float | None:
    """What ``metric`` scores for a model that guesses uniformly among ``num_classes``: top-1
    1/K, top135 the mean of top-1/3/5 at chance; None for ``loss``, whose chance level is not
    a score on the same scale (``knee.chance_guard`` is then inactive)."""
    if metric == "top1":
        return 1.0 / num_classes
    if metric == "top135":
        return sum(min(1.0, k / num_classes) for k in (1, 3, 5)) / 3
    return None


@dataclass(frozen=True)
class Scores:
    """Validation accuracies in 0..1, the mean cross-entropy, and ``score``: the ``metric``
    (one of :data:`KNEE_METRICS`) that validation curves and knees use."""

    top1: float
    top3: float
    top5: float
    clips: int
    loss: float = math.nan
    metric: str = "top135"
    clip_length: int = 0  # frames of the clips scored (what the pass cost)

    @property
    def score(self) -> float:
        if self.metric == "top1":
            return self.top1
        if self.metric == "loss":
            return math.exp(-self.loss) if math.isfinite(self.loss) else math.nan
        return (self.top1 + self.top3 + self.top5) / 3

    def to_dict(self) -> dict[str, float]:
        return {"score": self.score, "top1": self.top1, "top3": self.top3, "top5": self.top5,
                "val_loss": self.loss}

    @classmethod
    def diverged(cls) -> "Scores":
        nan = math.nan
        return cls(nan, nan, nan, 0)


def train_epoch(model: nn.Module, batches: Iterable, optimizer: torch.optim.Optimizer, *,
                precision: Precision, accumulation: int = 1, grad_clip: float | None = None,
                head_weight: float = 1.0, scaler: torch.amp.GradScaler | None = None,
                drop_partial: bool = False, progress=None, max_batches: int | None = None) -> EpochStats:
    """Train over ``batches`` once (or over their first ``max_batches``), stepping the
    optimiser every ``accumulation`` batches.

    Each batch's loss is divided by ``accumulation`` so an update averages over the effective
    batch. A last group of fewer batches steps too, unless ``drop_partial``: then its gradients
    are discarded, as the reference does (its forward passes still count in ``clips`` and still
    move BatchNorm statistics). ``progress`` is an optional tqdm bar to advance.
    """
    model.train()
    optimizer.zero_grad(set_to_none=True)
    loss_sum = torch.zeros((), device=precision.device)
    clips = steps = 0
    start = time.perf_counter()
    for step, (x, y) in enumerate(itertools.islice(batches, max_batches), start=1):
        x, y = precision.to_device(x, y)
        with precision.autocast():
            loss = classification_loss(model(x), y, head_weight)
        scaled = loss / accumulation
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
        loss_sum += loss.detach().float()
        clips += len(y)
        steps = step
        if step % accumulation == 0:
            _update(model, optimizer, grad_clip, scaler)
        if progress is not None:
            progress.update(len(y))
            if step % PROGRESS_EVERY == 0:
                progress.set_postfix(loss=f"{loss_sum.item() / step:.3f}",
                                     clips_s=f"{clips / (time.perf_counter() - start):.1f}")
    if steps % accumulation and not drop_partial:
        _update(model, optimizer, grad_clip, scaler)
    optimizer.zero_grad(set_to_none=True)  # a dropped group's gradients must not reach the next epoch
    if precision.device.type == "cuda":
        torch.cuda.synchronize(precision.device)
    seconds = time.perf_counter() - start
    return EpochStats(loss=loss_sum.item() / max(steps, 1), clips=clips, steps=steps, seconds=seconds)


def _update(model: nn.Module, optimizer: torch.optim.Optimizer, grad_clip: float | None,
            scaler: torch.amp.GradScaler | None) -> None:
    if scaler is not None:
        scaler.unscale_(optimizer)
    if grad_clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def topk_hits(logits: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = TOPK) -> torch.Tensor:
    """Per k, how many rows have their label among the k highest logits (k capped at the class
    count, so top-5 of a 3-class problem is 1.0). Returns an int64 tensor of ``len(ks)``."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices  # (N, kmax)
    hit = top == labels[:, None]
    return torch.stack([hit[:, : min(k, kmax)].any(dim=1).sum() for k in ks])


@torch.no_grad()
def validate(model: nn.Module, batches: Iterable, *, precision: Precision, reduce=None,
             metric: str = "top135") -> Scores:
    """Top-1/3/5 accuracy of ``model`` over ``batches`` of one view per video.

    ``reduce`` (e.g. an all-reduce across processes) sums the hit and clip counters in place,
    so each process may score a shard of the list. Non-finite logits mean a diverged model:
    the result is :meth:`Scores.diverged`.
    """
    model.eval()
    counts = torch.zeros(len(TOPK) + 3, dtype=torch.float64, device=precision.device)
    for x, y in batches:
        x, y = precision.to_device(x, y)
        with precision.autocast():
            logits = model(x).float()
        counts[: len(TOPK)] += topk_hits(logits, y)
        counts[-3] += nn.functional.cross_entropy(logits, y, reduction="sum")
        counts[-2] += len(y)
        counts[-1] += (~torch.isfinite(logits)).any(dim=1).sum()
    if reduce is not None:
        reduce(counts)
    hits, total, bad = counts[: len(TOPK)].tolist(), counts[-2].item(), counts[-1].item()
    if bad > 0:
        return Scores.diverged()
    if total == 0:
        raise ValueError("validation saw no clips; is the validation list empty?")
    return Scores(*(h / total for h in hits), clips=int(total), loss=counts[-3].item() / total, metric=metric)
