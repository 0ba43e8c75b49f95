"""optplan.models: output contract, P3D initialisation, global context, frozen BN, registry, CLI."""

from __future__ import annotations

import argparse
import copy
import json

import pytest
import torch
import torch.nn.functional as F

from optplan.errors import OptplanError
from optplan.models import (classification_loss, create_model, create_model_from_config, list_models,
                            model_info, set_frozen_bn)
from optplan.models.flops import model_cost
from optplan.models.p3d import P3DBottleneck

TINY = ["dg_p3d_tiny", "dg_p3d_tiny_single", "p3d_tiny", "r3d_tiny", "r2plus1d_tiny"]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def clips(n: int = 2, t: int = 8, size: int = 56) -> torch.Tensor:
    return torch.randn(n, 3, t, size, size)


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("t,size", [(2, 32), (4, 56), (16, 64)])
def test_output_contract_for_several_clip_sizes(name: str, t: int, size: int) -> None:
    model = create_model(name, num_classes=5)
    x = clips(2, t, size)
    out = model.train()(x)
    if model.dual_head:
        assert isinstance(out, tuple) and [o.shape for o in out] == [(2, 5), (2, 5)]
    else:
        assert isinstance(out, torch.Tensor) and out.shape == (2, 5)
    assert model.eval()(x).shape == (2, 5)


def test_eval_output_is_mean_of_the_two_heads() -> None:
    model = create_model("dg_p3d_tiny", num_classes=4).eval()
    x = clips()
    temporal, spatial = (h(f) for h, f in zip(model.heads, model.forward_features(x)))
    assert not torch.allclose(temporal, spatial)
    torch.testing.assert_close(model(x), (temporal + spatial) / 2)


@pytest.mark.parametrize("frames,positions", [(16, 1), (32, 2), (64, 4)])
def test_dual_head_feature_shapes_follow_the_reference(frames: int, positions: int) -> None:
    # stem /4 in time, /4 in space -> res4 at (T/4)x14x14; temporal res5 halves H, W; the spatial
    # head max-pools time in windows of 4 (the reference: T/16 positions) and keeps 14x14.
    with torch.device("meta"):
        model = create_model("dg_p3d_r50").eval()
        every = create_model("dg_p3d_r50", spatial_time_pool="all").eval()
        x = torch.zeros(1, 3, frames, 224, 224)
        temporal, spatial = model.forward_features(x)
        _, pooled_whole = every.forward_features(x)
    assert temporal.shape == (1, 2048, frames // 4, 7, 7)
    assert spatial.shape == (1, 2048, positions, 14, 14)
    assert pooled_whole.shape == (1, 2048, 1, 14, 14)


@pytest.mark.parametrize("frames,positions", [(4, 1), (6, 1), (8, 1), (12, 1), (16, 2)])
def test_spatial_head_of_a_short_res4(frames: int, positions: int) -> None:
    # The tiny stem halves time: res4 has frames / 2 positions. Below 4 they are pooled whole;
    # past the last whole window of 4 they are left out (as the reference's max-pool does).
    model = create_model("dg_p3d_tiny", num_classes=3).eval()
    x = clips(1, frames, 32)
    with torch.no_grad():
        res4 = model.layer3(model.layer2(model.layer1(model.maxpool(F.relu(model.bn1(model.conv1(x)))))))
        _, spatial = model.forward_features(x)
        expected = res4[:, :, : 4 * positions] if res4.shape[2] >= 4 else res4
        expected = expected.unflatten(2, (positions, -1)).amax(dim=3)
        torch.testing.assert_close(spatial, model.layer4_spatial(expected))
    assert spatial.shape[2] == positions


def test_spatial_time_pool_is_checked() -> None:
    with pytest.raises(ValueError, match="spatial_time_pool must be 'reference' or 'all'"):
        create_model("dg_p3d_tiny", spatial_time_pool="mean")


def test_block_types_cycle_a_b_c_by_global_index() -> None:
    with torch.device("meta"):
        model = create_model("dg_p3d_r50")
    stages = (model.layer1, model.layer2, model.layer3, model.layer4)
    kinds = "".join(b.kind for layer in stages for b in layer)
    assert kinds == "ABCABCABCABCABCA"
    assert "".join(b.kind for b in model.layer4_spatial) == "BCA"


def test_both_heads_get_gradients() -> None:
    model = create_model("dg_p3d_tiny", num_classes=3, dropout=0.0).train()
    target = torch.tensor([0, 2])
    temporal, spatial = model(clips())
    loss = classification_loss((temporal, spatial), target, head_weight=0.5)
    expected = 0.5 * (F.cross_entropy(temporal, target) + F.cross_entropy(spatial, target))
    torch.testing.assert_close(loss, expected)
    loss.backward()
    for part in (model.layer4, model.layer4_spatial, model.heads[0], model.heads[1], model.layer1):
        assert sum(p.grad.abs().sum() for p in part.parameters() if p.grad is not None) > 0


def test_single_head_loss_is_plain_cross_entropy() -> None:
    logits, target = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    torch.testing.assert_close(classification_loss(logits, target, head_weight=3.0),
                               F.cross_entropy(logits, target))


@pytest.mark.parametrize("kind", ["A", "B", "C"])
def test_fresh_p3d_block_treats_frames_independently(kind: str) -> None:
    block = P3DBottleneck(32, 8, kind, stride=2).eval()
    with torch.no_grad():
        for m in block.modules():  # non-trivial BN statistics, so the check is not vacuous
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 32, 5, 12, 12)
    out = block(x)
    per_frame = torch.cat([block(x[:, :, t:t + 1]) for t in range(5)], dim=2)
    torch.testing.assert_close(out, per_frame, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        block.conv2_t.weight.add_(0.1)  # a trained temporal conv mixes frames
    assert not torch.allclose(block(x), per_frame, atol=1e-3)


def test_global_context_starts_as_its_random_bias_and_learns_from_the_clip() -> None:
    # As the reference: only the last FC's weight is zeroed; its bias keeps the random init.
    gc = P3DBottleneck(64, 16, "B", global_context=True).eval().gc
    assert gc.fc2.weight.abs().sum() == 0 and gc.fc2.bias.abs().min() > 0
    x, other = torch.randn(2, 64, 4, 8, 8), 3 * torch.randn(2, 64, 4, 8, 8)
    torch.testing.assert_close(gc(x), gc.fc2.bias.expand(2, -1)[:, :, None, None, None])
    torch.testing.assert_close(gc(other), gc(x))  # the same constant for every clip
    with torch.no_grad():
        gc.fc2.weight.fill_(0.1)  # a trained FC adds what the clip's context says
    assert not torch.allclose(gc(other), gc(x))


def _bn_keys(state: dict) -> list[str]:
    return [k for k in state if ".bn" in f".{k}" or "downsample.1" in k]


def test_frozen_bn_stats_mode_trains_affine_and_the_stem() -> None:
    # The reference: running statistics fixed, affine weights trained, the stem's BN not frozen.
    model = create_model("dg_p3d_tiny", num_classes=3, dropout=0.0)
    assert set_frozen_bn(model, True, "stats") == 20  # 5 blocks x 3 + 5 projections, not the stem
    model.train()
    x = clips()
    before = copy.deepcopy(model.state_dict())
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    classification_loss(model(x), torch.tensor([0, 1])).backward()
    opt.step()
    after = model.state_dict()
    frozen = [k for k in _bn_keys(before) if not k.startswith("bn1.")]
    stats = [k for k in frozen if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    affine = [k for k in frozen if k.endswith(("weight", "bias"))]
    assert len(stats) == 20 * 3 and all(torch.equal(before[k], after[k]) for k in stats)
    assert len(affine) == 20 * 2 and not any(torch.equal(before[k], after[k]) for k in affine)
    for key in ("bn1.running_mean", "bn1.running_var", "bn1.weight"):  # the stem trains
        assert not torch.equal(before[key], after[key]), key
    model.eval()
    torch.testing.assert_close(model(x), copy.deepcopy(model).eval()(x))


def test_frozen_bn_modes_are_checked() -> None:
    with pytest.raises(ValueError, match="one of stats, all"):
        set_frozen_bn(create_model("p3d_tiny"), True, "affine")


def test_frozen_bn_all_mode_keeps_statistics_and_affine_through_a_training_step() -> None:
    model = create_model("dg_p3d_tiny", num_classes=3, dropout=0.0)
    assert set_frozen_bn(model, True, "all") == 21  # stem + 5 blocks x 3 + 5 projections
    model.train()  # the trainer's per-epoch call must not unfreeze
    x = clips()
    temporal, spatial = model(x)  # frozen BN in train mode computes what eval mode does
    torch.testing.assert_close((temporal + spatial) / 2, copy.deepcopy(model).eval()(x))
    before = copy.deepcopy(model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=1e-2)  # frozen: no grad, skipped
    classification_loss(model(x), torch.tensor([0, 1])).backward()
    opt.step()
    after = model.state_dict()
    bn_keys = _bn_keys(before)
    assert len(bn_keys) == 21 * 5 and all(torch.equal(before[k], after[k]) for k in bn_keys)
    assert not torch.equal(before["layer1.0.conv1.weight"], after["layer1.0.conv1.weight"])
    set_frozen_bn(model, False)
    model.train()(x)
    assert not torch.equal(before["bn1.running_mean"], model.state_dict()["bn1.running_mean"])


def test_frozen_bn_applies_to_sync_batchnorm() -> None:
    # Distributed GPU training converts BN to SyncBatchNorm after the model is built.
    model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(create_model("p3d_tiny"))
    assert set_frozen_bn(model, True, "all") == 17
    before = model.bn1.running_var.clone()
    model.train()(clips())
    assert isinstance(model.bn1, torch.nn.SyncBatchNorm) and torch.equal(model.bn1.running_var, before)


def test_too_short_clip_names_model_t_and_minimum() -> None:
    model = create_model("dg_p3d_tiny")
    assert model.min_clip_length == 2
    with pytest.raises(OptplanError, match=r"dg_p3d_tiny.*T=1.*T >= 2"):
        model(clips(1, 1, 32))
    with torch.device("meta"):
        r50 = create_model("dg_p3d_r50")
    assert r50.min_clip_length == 4
    with pytest.raises(OptplanError, match=r"dg_p3d_r50.*T=3.*T >= 4"):
        r50(torch.zeros(1, 3, 3, 64, 64, device="meta"))


def test_paper_and_baseline_parameter_counts() -> None:
    # DG-P3D-ResNet-50 (K=400): 50,382,288 (docstring of dg_p3d_r50). R3D-18 and R(2+1)D-18
    # match torchvision's r3d_18 / r2plus1d_18 exactly.
    expected = {"dg_p3d_r50": 50_382_288, "r3d_18": 33_371_472, "r2plus1d_18": 31_505_325}
    for name, params in expected.items():
        assert model_cost(name, input_size=(1, 8, 8)).params == params
    assert "50,382,288" in model_info("dg_p3d_r50").description


def test_flops_match_the_known_r3d18_cost() -> None:
    # torchvision lists r3d_18 at 40.70 GMACs for 16x112x112; FlopCounterMode counts 2 per MAC.
    assert model_cost("r3d_18").gflops == pytest.approx(81.39, abs=0.01)


def test_dg_p3d_r50_flops_are_the_references_at_16_32_64_frames() -> None:
    gflops = [model_cost("dg_p3d_r50", input_size=(t, 224, 224)).gflops for t in (16, 32, 64)]
    assert gflops == pytest.approx([47.26, 94.50, 188.99], abs=0.01)  # 189.0 to four figures
    pooled_whole = [model_cost("dg_p3d_r50", input_size=(t, 224, 224), spatial_time_pool="all").gflops
                    for t in (32, 64)]
    assert pooled_whole == pytest.approx([87.72, 168.64], abs=0.01)
    assert model_cost("dg_p3d_tiny", input_size=(1, 56, 56)).flops is None  # below min T


def test_registry_lists_names_and_refuses_typos() -> None:
    names = list_models()
    assert {"dg_p3d_r50", "dg_p3d_r50_single", "p3d_r50", "r3d_18", "r2plus1d_18", *TINY} <= set(names)
    with pytest.raises(OptplanError, match="did you mean dg_p3d_tiny"):
        create_model("dg_p3d_tiy")
    with pytest.raises(OptplanError, match="'widht' is not an option of P3DResNet"):
        create_model("dg_p3d_tiny", widht=8)
    assert create_model("dg_p3d_tiny", width=8).layer1[0].conv1.out_channels == 8


def test_create_model_from_config_section() -> None:
    from optplan.models.config import ModelConfig

    model = create_model_from_config(ModelConfig(dropout=0.1, kwargs={"depths": [1, 1, 2, 1]}), num_classes=7)
    got = (model.name, model.num_classes, model.heads[1].drop.p, len(model.layer3))
    assert got == ("dg_p3d_tiny", 7, 0.1, 2)


def test_reset_classifier() -> None:
    model = create_model("dg_p3d_tiny", num_classes=10)
    model.reset_classifier(4)
    assert [h.fc.out_features for h in model.heads] == [4, 4]


def test_channels_last_3d_and_autocast() -> None:
    model = create_model("dg_p3d_tiny").eval()
    x = clips()
    ref = model(x)
    model_cl = model.to(memory_format=torch.channels_last_3d)
    out_cl = model_cl(x.to(memory_format=torch.channels_last_3d))
    torch.testing.assert_close(out_cl, ref, atol=1e-4, rtol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=0.1, rtol=0.1)


def run_models_cli(argv: list[str]) -> int:
    """``optplan models ARGV`` through the subcommand's own parser (independent of the others)."""
    from optplan.cli import models as models_cli

    parser = argparse.ArgumentParser(prog="optplan")
    models_cli.register(parser.add_subparsers())
    args = parser.parse_args(["models", *argv])
    return args.func(args)


def test_cli_lists_models_with_params_and_gflops(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_models_cli(["r3d_18", "dg_p3d_tiny", "--input", "16x112x112", "--num-classes", "400"]) == 0
    out = capsys.readouterr().out
    r3d = next(line for line in out.splitlines() if line.startswith("r3d_18"))
    assert "33.37M" in r3d and "81.39" in r3d and "16x112x112" in r3d
    assert run_models_cli(["dg_p3d_tiny", "--clip", "1", "--size", "32"]) == 0
    assert "T<2" in capsys.readouterr().out
    assert run_models_cli(["dg_p3d_r50", "--clip", "16", "32", "64", "--size", "224"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("dg_p3d_r50")]
    assert [r.split()[4:6] for r in rows] == [["16x224x224", "47.26"], ["32x224x224", "94.50"],
                                              ["64x224x224", "188.99"]]  # the reference's 189.0
    assert run_models_cli(["p3d_tiny", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["params"], row["input"], row["min_t"]) == (579_146, "8x56x56", 2)
    with pytest.raises(OptplanError, match="unknown model 'no_such_model'"):
        run_models_cli(["no_such_model"])
    with pytest.raises(OptplanError, match="expected TxHxW"):
        run_models_cli(["--input", "16by112"])
