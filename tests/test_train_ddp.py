"""Two gloo processes train the same curve as one process for the same effective batch."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from optplan.config import load_config
from optplan.train import State, train_state
from optplan.train.run import StateResult
from optplan.train.checkpoint import load_checkpoint

# All BN frozen (the stem's too: train.frozen_bn=all) and no dropout: nothing then depends on how
# the batch is split across processes (CPU processes have no SyncBatchNorm).
# A small lr keeps the float summation-order noise from growing (this tiny net at lr 0.02
# amplifies 1e-8 differences to 1e-4 within one epoch), so the weights can be compared tightly.
STATE = State(name="ddp", lr=0.001, clip_length=4, batch_size=8, accumulation=2, frozen_bn=True)


def config(root):
    over = {"data.root": root, "data.val_list": root / "trainlist01.txt", "data.crop_size": 28,
            "data.short_side": 32, "data.num_workers": 0, "train.threads": 1,
            "train.progress": False, "train.tensorboard": False, "train.frozen_bn": "all", "model.dropout": 0.0,
            "knee.patience": 10, "knee.max_epochs": 2}
    return load_config(None, [f"{k}={v}" for k, v in over.items()])


def _worker(rank: int, world: int, port: int, root, run_dir) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    import torch.distributed as dist

    try:
        train_state(None, STATE, config(root), run_dir)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_give_the_one_process_curve(tiny_dataset, tmp_path):
    one = train_state(None, STATE, config(tiny_dataset), tmp_path / "one")
    mp.spawn(_worker, args=(2, _free_port(), tiny_dataset, tmp_path / "two"), nprocs=2, join=True)
    two = StateResult.from_dict(json.loads((tmp_path / "two" / "result.json").read_text()))
    assert one.cost.epochs == two.cost.epochs == 2 and one.cost.clips == two.cost.clips == 96
    assert two.curve == pytest.approx(one.curve, abs=1e-9)
    ref, got = load_checkpoint(one.checkpoint)["model"], load_checkpoint(two.checkpoint)["model"]
    moved = [k for k, v in ref.items() if v.is_floating_point() and not torch.equal(v, got[k])]
    for key in moved:  # equal up to float summation order
        diff = (got[key] - ref[key]).abs().max().item()
        assert torch.allclose(got[key], ref[key], atol=1e-6, rtol=1e-5), (key, diff)


def test_more_processes_than_gpus_is_a_clear_error(monkeypatch):
    """NCCL needs a GPU per process; a second process on a one-GPU node is refused by name, not
    with CUDA's 'invalid device ordinal' (seen on an H100 node)."""
    from optplan.errors import OptplanError
    from optplan.train.distributed import init_distributed

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(OptplanError, match=r"only 1 GPU\(s\) are visible.*nproc_per_node=1"):
        init_distributed(use_cuda=True)
