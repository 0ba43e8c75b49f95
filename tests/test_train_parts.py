"""Trainer parts that need no video: checkpoints, optimiser, metrics, schedules, logs."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from torch import nn

from optplan.config import load_config
from optplan.errors import ConfigError, OptplanError
from optplan.train.checkpoint import (load_checkpoint, make_checkpoint, rng_state, save_checkpoint,
                                      set_rng_state, unwrap)
from optplan.train.config import TrainConfig
from optplan.train.distributed import DistInfo, ShardedBatchSampler
from optplan.train.engine import AUTO_TOP1_BELOW, Scores, resolve_metric, topk_hits
from optplan.train.logging import RunLogger, read_log
from optplan.train.optim import make_optimizer
from optplan.train.schedule import load_schedule
from optplan.train.state import State

STATE = State(name="s", lr=0.1, clip_length=4)


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    model = nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    ckpt = make_checkpoint(model, optimizer=opt, state=STATE.to_dict(), epoch=3,
                           config={"a": 1}, meta={"scores": [0.0, 0.5]})
    path = save_checkpoint(tmp_path / "sub" / "c.pt", ckpt)
    back = load_checkpoint(path)
    assert back["epoch"] == 3 and back["state"]["name"] == "s" and back["meta"]["scores"] == [0.0, 0.5]
    assert torch.equal(back["model"]["weight"], model.weight)
    assert back["optimizer"]["state"][0]["momentum_buffer"].shape == (2, 3)
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temp file left


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_checkpoint(path, make_checkpoint(nn.Linear(2, 2), epoch=1))
    before = path.read_bytes()

    def dies_half_way(obj, f):
        f.write(b"partial bytes")
        raise KeyboardInterrupt  # a kill while writing

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, make_checkpoint(nn.Linear(2, 2), epoch=2))
    assert path.read_bytes() == before and load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


class Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_load_refuses_code_and_damage(tmp_path):
    torch.save({"model": {}, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(OptplanError, match="cannot be read"):
        load_checkpoint(tmp_path / "evil.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "evil.pt").read_bytes()[:20])
    with pytest.raises(OptplanError, match="damaged"):
        load_checkpoint(tmp_path / "cut.pt")
    with pytest.raises(OptplanError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")


def test_rng_state_restores_the_stream():
    torch.manual_seed(5)
    saved = rng_state()
    a = torch.rand(3)
    set_rng_state(saved)
    assert torch.equal(torch.rand(3), a)


def test_unwrap_strips_wrappers():
    inner = nn.Linear(2, 2)
    outer = nn.Module()
    outer.module = inner
    assert unwrap(outer) is inner and unwrap(inner) is inner


def test_fresh_sgd_from_state_and_extras():
    model = nn.Linear(2, 2)
    model.bias.requires_grad_(False)
    opt = make_optimizer(model, STATE, TrainConfig())
    group = opt.param_groups[0]
    assert group["lr"] == 0.1 and group["momentum"] == 0.9 and group["nesterov"]
    assert group["weight_decay"] == 1e-4 and len(group["params"]) == 1
    extra = State(name="e", lr=0.2, clip_length=4, extra={"momentum": 0.0, "weight_decay": 0.0})
    group = make_optimizer(model, extra, TrainConfig()).param_groups[0]
    assert group["momentum"] == 0.0 and not group["nesterov"] and group["weight_decay"] == 0.0


def test_topk_hits_caps_k_at_the_class_count():
    logits = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [1.0, 3.0, 2.0]])
    labels = torch.tensor([0, 0, 2])
    assert topk_hits(logits, labels).tolist() == [1, 3, 3]
    s = Scores(0.5, 0.75, 1.0, clips=4)
    assert s.score == pytest.approx(0.75) and math.isnan(Scores.diverged().score)


def test_auto_knee_metric_is_top1_under_50_classes_and_explicit_values_stay():
    assert AUTO_TOP1_BELOW == 50
    assert resolve_metric("auto", 20) == resolve_metric("auto", 49) == "top1"
    assert resolve_metric("auto", 50) == resolve_metric("auto", 400) == "top135"
    for explicit in ("top1", "top135", "loss"):
        assert resolve_metric(explicit, 20) == resolve_metric(explicit, 400) == explicit
    assert load_config(None).knee.metric == "auto"


def test_schedule_lr_rules_match_torch():
    sched = load_schedule({"stages": [
        {"state": STATE.to_dict(), "epochs": 4, "lr_schedule": {"kind": "cosine"}},
        {"state": STATE.to_dict(), "epochs": 6, "lr_schedule": {"kind": "step", "milestones": [2, 4], "gamma": 0.5}},
        {"state": STATE.to_dict(), "epochs": 6, "lr_schedule": {"kind": "plateau", "factor": 0.5, "patience": 1}},
    ]})
    cos, step, plateau = sched.stages
    opt = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)
    torch_cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    for e in range(4):
        assert cos.lr(e) == pytest.approx(opt.param_groups[0]["lr"])
        opt.step()
        torch_cos.step()
    assert [step.lr(e) for e in range(6)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    curve = [0.0, 0.5, 0.6, 0.6, 0.6, 0.6, 0.7]
    opt = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)
    torch_plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "max", factor=0.5, patience=1)
    for e in range(6):
        assert plateau.lr(e, curve) == pytest.approx(opt.param_groups[0]["lr"]), e
        torch_plateau.step(curve[e + 1])
    assert sched.epochs == 16


def test_linear_decay_and_warmup():
    """Linear decay to zero (budget-aware) and the per-epoch linear warm-up of any rule."""
    sched = load_schedule({"stages": [
        {"state": STATE.to_dict(), "epochs": 4, "lr_schedule": {"kind": "linear"}},
        {"state": STATE.to_dict(), "epochs": 4, "lr_schedule": {"kind": "cosine", "warmup": 1}},
        {"state": STATE.to_dict(), "epochs": 3, "lr_schedule": {"kind": "constant", "warmup": 2}},
    ]})
    linear, cosine, constant = sched.stages
    assert [linear.lr(e) for e in range(4)] == pytest.approx([0.1, 0.075, 0.05, 0.025])
    assert cosine.lr(0) == pytest.approx(0.05) and cosine.lr(1) == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert [constant.lr(e) for e in range(3)] == pytest.approx([0.1 / 3, 0.2 / 3, 0.1])
    with pytest.raises(ConfigError, match="warmup"):
        load_schedule({"stages": [{"state": STATE.to_dict(), "epochs": 2,
                                   "lr_schedule": {"kind": "linear", "warmup": -1}}]})


def test_anneal_turns_a_planned_path_into_linear_decays():
    """'linear': each trained stage decays from its lr towards the next trained stage's (held
    where the next is higher), the last towards zero; 'budget': one decay over the whole path.
    0-epoch stages and stages with their own rule stay."""
    from optplan.state import State
    from optplan.train.schedule import Constant, Cosine, Stage, anneal

    def stage(name, lr, epochs, **rule):
        return Stage(state=State(name=name, lr=lr, clip_length=8), epochs=epochs, **rule)

    path = [stage("c4_x0.3", 0.03, 2), stage("c8_x1", 0.1, 4), stage("c8_x0.3", 0.03, 0),
            stage("c16_x0.3", 0.03, 2), stage("c16_x0.1", 0.01, 4)]
    smooth = anneal(path)
    assert [s.epochs for s in smooth] == [s.epochs for s in path] and smooth[2] == path[2]
    assert [smooth[0].lr(e) for e in range(2)] == pytest.approx([0.03, 0.03])  # the next (0.1) is higher: held
    assert [smooth[1].lr(e) for e in range(4)] == pytest.approx([0.1, 0.0825, 0.065, 0.0475])  # -> 0.03
    assert [smooth[3].lr(e) for e in range(2)] == pytest.approx([0.03, 0.02])  # -> 0.01
    assert [smooth[4].lr(e) for e in range(4)] == pytest.approx([0.01, 0.0075, 0.005, 0.0025])  # -> 0
    assert path[0].lr_schedule == Constant()  # the input is left as it was
    own = [stage("a", 0.1, 3, lr_schedule=Cosine(kind="cosine")), stage("b", 0.01, 2)]
    assert anneal(own)[0] == own[0] and anneal(own)[1].lr(1) == pytest.approx(0.005)
    # 'budget': one decay from the first stage's lr to zero over all 12 epochs, across the stages
    whole = anneal(path, "budget")
    lrs = [s.lr(e) for s in whole for e in range(s.epochs)]
    assert lrs == pytest.approx([0.03 * (1 - g / 12) for g in range(12)]) and whole[2] == path[2]
    with pytest.raises(ValueError, match="shape"):
        anneal(path, "cosine")
    with pytest.raises(ConfigError, match="final"):
        load_schedule({"stages": [{"state": STATE.to_dict(), "epochs": 2,
                                   "lr_schedule": {"kind": "linear", "final": -0.5}}]})


def test_schedule_mistakes_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="stages.0.epochs"):
        load_schedule({"stages": [{"state": STATE.to_dict(), "epochs": -1}]})
    with pytest.raises(ConfigError, match="at least one epoch"):
        load_schedule({"stages": [{"state": STATE.to_dict(), "epochs": 0}]})
    with pytest.raises(ConfigError, match="does not exist"):
        load_schedule(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages:\n  - {state: {name: a, lr: 0.1, clip_length: 4}, epochs: 2, lr_schedule: {kind: warp}}\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_schedule(bad)


def test_run_logger_writes_jsonl_and_tensorboard(tmp_path):
    logger = RunLogger(tmp_path, tensorboard=True)
    logger.log({"epoch": 1, "loss": 2.5, "score": math.nan, "state": "s"}, step=1)
    logger.log({"epoch": 2, "loss": 2.0, "score": 0.4, "state": "s"}, step=2)
    logger.close()
    records = read_log(tmp_path)
    assert [r["epoch"] for r in records] == [1, 2] and records[0]["score"] is None
    assert any((tmp_path / "tb").iterdir())
    RunLogger(tmp_path / "off", enabled=False).log({"epoch": 1})
    assert not (tmp_path / "off").exists()



def test_tensorboard_tags_are_shared_so_edges_overlay(tmp_path):
    """Two edges' run directories write the same tags (``score``, ``loss``): TensorBoard shows
    each directory as a run and overlays their curves; the text log still names the edge."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for edge, score in (("start->c4", 0.3), ("c4->c8", 0.5)):
        logger = RunLogger(tmp_path / edge, tensorboard=True)
        logger.log({"epoch": 1, "loss": 1.0, "score": score}, step=1, prefix=f"{edge}/")
        logger.close()
        assert f"{edge}: epoch=1" in (tmp_path / edge / "log.txt").read_text()
    tags = []
    for edge in ("start->c4", "c4->c8"):
        events = EventAccumulator(str(tmp_path / edge / "tb"))
        events.Reload()
        tags.append(set(events.Tags()["scalars"]))
    assert tags[0] == tags[1] == {"epoch", "loss", "score"}


def test_sharded_batches_partition_each_global_batch():
    items = list(range(10))
    shards = [list(ShardedBatchSampler(items, 4, DistInfo(rank=r, world_size=2), training=True))
              for r in range(2)]
    assert shards[0] == [[0, 1], [4, 5], [8]] and shards[1] == [[2, 3], [6, 7], [9]]
    lonely = [list(ShardedBatchSampler(list(range(5)), 4, DistInfo(rank=r, world_size=2), training=t))
              for r in range(2) for t in (True, False)]
    assert lonely[0] == [[0, 1]] and lonely[1] == [[0, 1], [4]] and lonely[3] == [[2, 3]]
    with pytest.raises(ValueError, match="multiple"):
        ShardedBatchSampler(items, 3, DistInfo(rank=0, world_size=2), training=True)


def test_sharded_sampler_drops_a_short_last_training_batch_with_drop_last():
    items = list(range(10))
    for training, expected in ((True, [[0, 1], [4, 5]]), (False, [[0, 1], [4, 5], [8]])):
        sampler = ShardedBatchSampler(items, 4, DistInfo(rank=0, world_size=2), training=training, drop_last=True)
        assert list(sampler) == expected and len(sampler) == len(expected)


def test_state_pickles_for_process_pools():
    assert pickle.loads(pickle.dumps(STATE)) == STATE


def _tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 5))


def test_gradient_accumulation_equals_one_big_batch():
    from optplan.train.engine import Precision, train_epoch

    x, y = torch.randn(8, 3, 2, 6, 6), torch.randint(0, 5, (8,))
    cpu = Precision(torch.device("cpu"))
    big, small = _tiny_net(), _tiny_net()
    opt_big = torch.optim.SGD(big.parameters(), lr=0.5)
    opt_small = torch.optim.SGD(small.parameters(), lr=0.5)
    stats = train_epoch(big, [(x, y)], opt_big, precision=cpu)
    train_epoch(small, [(x[:4], y[:4]), (x[4:], y[4:])], opt_small, precision=cpu, accumulation=2)
    assert stats.clips == 8 and stats.steps == 1 and math.isfinite(stats.loss)
    for a, b in zip(big.parameters(), small.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_a_last_partial_accumulation_group_steps_or_is_dropped():
    from optplan.train.engine import Precision, train_epoch

    cpu = Precision(torch.device("cpu"))
    batches = [(torch.randn(4, 3, 2, 6, 6), torch.randint(0, 5, (4,))) for _ in range(3)]
    first_group = _tiny_net()
    train_epoch(first_group, batches[:2], torch.optim.SGD(first_group.parameters(), lr=0.5),
                precision=cpu, accumulation=2)
    kept, dropped = _tiny_net(), _tiny_net()
    train_epoch(kept, batches, torch.optim.SGD(kept.parameters(), lr=0.5), precision=cpu, accumulation=2)
    opt = torch.optim.SGD(dropped.parameters(), lr=0.5)
    stats = train_epoch(dropped, batches, opt, precision=cpu, accumulation=2, drop_partial=True)
    assert stats.clips == 12 and stats.steps == 3  # the dropped group was computed all the same
    for a, b, c in zip(dropped.parameters(), first_group.parameters(), kept.parameters()):
        assert torch.equal(a, b) and not torch.equal(a, c) and a.grad is None


def test_train_config_frozen_bn_mode_and_drop_options():
    cfg = TrainConfig()
    assert (cfg.frozen_bn, cfg.drop_last, cfg.drop_last_accumulation) == ("stats", True, True)  # the reference
    assert TrainConfig(frozen_bn="all").frozen_bn == "all"
    with pytest.raises(ValueError, match="frozen_bn"):
        TrainConfig(frozen_bn="affine")


def test_bf16_autocast_path_trains():
    from optplan.train.engine import Precision, train_epoch, validate

    bf16 = Precision(torch.device("cpu"), amp_dtype=torch.bfloat16)
    net = _tiny_net()
    batches = [(torch.randn(4, 3, 2, 6, 6), torch.randint(0, 5, (4,)))] * 3
    stats = train_epoch(net, batches, torch.optim.SGD(net.parameters(), lr=0.1), precision=bf16, grad_clip=1.0)
    assert stats.steps == 3 and math.isfinite(stats.loss)
    assert validate(net, batches, precision=bf16).clips == 12


@pytest.mark.parametrize("idle_share, expected", [(1.0, 2), (0.6, 1), (0.5, 1), (0.0, 1)])
def test_auto_threads_use_the_idle_cores(monkeypatch, idle_share, expected):
    """On 2 cores: both idle -> 2 threads; one core busy (or more) -> 1 thread, never 0."""
    from optplan.train import threads

    samples = iter([(0.0, 0.0), (100.0 * idle_share, 100.0)])
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(samples))
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads.time, "sleep", lambda s: None)
    assert threads.auto_threads() == expected


def test_threads_fall_back_without_proc_stat(monkeypatch):

    from optplan.train import threads

    monkeypatch.setattr(threads, "_cpu_times", lambda: None)
    assert threads.auto_threads() == threads.usable_cores() >= 1
