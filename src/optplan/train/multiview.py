"""The multi-view test of a checkpoint: N clips x 3 crops per video, view scores averaged.

A dual-head model already averages its two heads' logits in eval mode; the views of one video
are then averaged (``data.test_average``) as class probabilities (the default, as PySlowFast's
test does) or as raw logits (the reference's ``merge_score``: one confident view then weighs
more), and the video counts as right when its label is the top class. The test crop has its
own size (``data.test_crop_size``: the reference trains at 224 and tests at 256). Results:
top-1, top-5 and the confusion matrix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from optplan.config import OptplanConfig
from optplan.data.sampling import ClipSpec
from optplan.errors import OptplanError
from optplan.train.checkpoint import load_checkpoint
from optplan.train.distributed import all_reduce_sum
from optplan.train.engine import topk_hits
from optplan.train.session import TrainSession
from optplan.state import State


def video_scores(logits: torch.Tensor, average: str) -> torch.Tensor:
    """Class scores (N, K) of N videos from the logits (N, V, K) of their V views: the mean of
    the views' softmax (``average='softmax'``) or of their logits (``'logits'``)."""
    if average == "softmax":
        return logits.softmax(dim=-1).mean(dim=1)
    if average == "logits":
        return logits.mean(dim=1)
    raise ValueError(f"average must be 'softmax' or 'logits', got {average!r}")


@torch.no_grad()
def test_views(model: torch.nn.Module, batches, session: TrainSession,
               average: str = "softmax", progress=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Confusion matrix (K, K) (rows: true class, columns: predicted) and top-(1, 3, 5) hits
    over batches of ``(N, V, C, T, H, W)`` views averaged as ``average`` says (see
    :func:`video_scores`), summed over processes. ``progress``: a tqdm bar advanced by videos."""
    torch.set_num_threads(session.threads)
    model.eval()
    k = len(session.classes)
    precision = session.precision
    confusion = torch.zeros(k, k, dtype=torch.float64, device=precision.device)
    hits = torch.zeros(3, dtype=torch.float64, device=precision.device)
    for views, labels in batches:
        n, v = views.shape[:2]
        x, y = precision.to_device(views.flatten(0, 1), labels)
        with precision.autocast():
            logits = model(x).float()
        scores = video_scores(logits.view(n, v, k), average)
        confusion.index_put_((y, scores.argmax(dim=1)), torch.ones(n, dtype=torch.float64,
                                                                    device=precision.device), accumulate=True)
        hits += topk_hits(scores, y)
        if progress is not None:
            progress.update(n)
    all_reduce_sum(confusion)
    all_reduce_sum(hits)
    return confusion, hits


def default_out(checkpoint: str | Path, split: str) -> Path:
    """Where ``optplan eval`` writes the test of ``checkpoint`` unless told: beside it, as
    ``<name>.<split>.json`` (the report of a plan looks there for its final model's test)."""
    path = Path(checkpoint)
    return path.with_name(f"{path.stem}.{split}.json")


def evaluate(cfg: OptplanConfig, checkpoint: str | Path, *, split: str = "test",
             out: str | Path | None = None, session: TrainSession | None = None) -> dict[str, Any]:
    """Test ``checkpoint`` on the ``split`` list ('test' or 'val') with
    ``cfg.data.test_clips`` x ``cfg.data.test_crops`` views per video of ``cfg.data.test_crop``
    pixels, averaged as ``cfg.data.test_average`` says.

    The model architecture and the clip setting come from the checkpoint (its config's model
    section and its state); data settings come from ``cfg``. Writes the result as JSON to
    ``out`` when given and returns it: ``top1``, ``top5`` (0..1), ``confusion`` (K x K counts,
    rows = true class), ``classes``, ``videos``, ``views``, ``crop_size``, ``average``.
    """
    if split not in ("test", "val"):
        raise OptplanError(f"split must be 'test' or 'val', got {split!r}")
    ckpt = load_checkpoint(checkpoint)
    if ckpt.get("state") is None:
        raise OptplanError(f"checkpoint {str(checkpoint)!r} records no training state, so its clip "
                           f"setting is unknown; evaluate a checkpoint written by optplan train")
    state = State.from_dict(ckpt["state"])
    if ckpt.get("config"):
        cfg = cfg.model_copy(update={"model": type(cfg.model).model_validate(ckpt["config"]["model"])})
    session = session.serves(cfg) if session is not None else TrainSession(cfg)
    trained = ckpt.get("classes")
    if trained and trained != session.classes:  # same count, other names: a mislabelled test
        raise OptplanError(f"checkpoint {str(checkpoint)!r} was trained on the classes {trained[:3]}... "
                           f"({len(trained)}), the lists of {str(cfg.data.root)!r} name {session.classes[:3]}... "
                           f"({len(session.classes)}); test it on the dataset it was trained on")
    model = session.load_model(checkpoint)
    clip = ClipSpec.from_state(state)
    views = cfg.data.test_clips * cfg.data.test_crops
    per_step = max(1, cfg.train.eval_batch_size // views) * session.dist.world_size
    batches = session.loader(split, clip, per_step, mode="test")
    world = session.dist.world_size
    progress = session.progress_bar(-(-len(batches.dataset) // world), f"eval {split}", "video")
    try:
        confusion, hits = test_views(model, batches, session, cfg.data.test_average, progress)
    finally:
        if progress is not None:
            progress.close()
    videos = int(confusion.sum().item())
    result = {
        "checkpoint": str(checkpoint),
        "split": split,
        "model": cfg.model.name,
        "clip": {"clip_length": clip.clip_length, "sampling": clip.sampling, "frame_step": clip.frame_step},
        "views": views,
        "crop_size": cfg.data.test_crop,
        "average": cfg.data.test_average,
        "videos": videos,
        "top1": hits[0].item() / videos,
        "top5": hits[2].item() / videos,
        "gflops": session.flops(clip.clip_length, cfg.data.test_crop) * videos * views,  # forward only
        "classes": list(session.classes),
        "confusion": confusion.to(torch.int64).tolist(),
    }
    if out is not None and session.dist.is_main:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2))
    return result
