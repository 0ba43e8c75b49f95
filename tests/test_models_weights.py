"""Weights from other frameworks' checkpoints: containers, key prefixes, a new class count."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from optplan.cli import main
from optplan.config import load_config
from optplan.errors import OptplanError
from optplan.models import create_model
from optplan.models.weights import load_weights
from optplan.train.checkpoint import load_checkpoint, make_checkpoint
from optplan.train.session import TrainSession

CLASSIFIER = ("heads.0.fc", "heads.1.fc")


def _is_head(key: str) -> bool:
    return key.startswith(CLASSIFIER)


def as_shipped(state: dict, container: str) -> dict:
    """``state`` as each framework writes its checkpoints (prefixes, head names, wrappers)."""
    if container == "plain":
        return state
    if container == "mmaction2":  # recogniser: backbone.* + cls_head.*, meta beside
        body = {("cls_head.fc_cls." + k.rsplit(".", 1)[1] if _is_head(k) else "backbone." + k): v
                for k, v in state.items() if not k.startswith("heads.1.")}
        return {"meta": {"dataset_meta": {"classes": ["a", "b", "c", "d", "e"]}}, "state_dict": body}
    if container == "pyslowfast":  # saved from DDP: module.*, the config as YAML text
        return {"epoch": 3, "model_state": {"module." + k: v for k, v in state.items()},
                "optimizer_state": {}, "cfg": "SOLVER:\n  BASE_LR: 0.1\n"}
    return {**make_checkpoint(torch.nn.Module(), config={}, classes=list("abcde")), "model": state}


@pytest.fixture(scope="module")
def kinetics_like():
    """A 5-class tiny model standing in for a Kinetics checkpoint."""
    torch.manual_seed(1)
    return create_model("dg_p3d_tiny", num_classes=5).state_dict()


@pytest.mark.parametrize("container", ["plain", "mmaction2", "pyslowfast", "optplan"])
def test_fine_tuning_to_a_new_class_count_from_each_format(container, kinetics_like, tmp_path):
    path = tmp_path / f"{container}.pth"
    torch.save(as_shipped(kinetics_like, container), path)
    torch.manual_seed(2)
    fresh = create_model("dg_p3d_tiny", num_classes=3).state_dict()
    torch.manual_seed(2)
    model = create_model("dg_p3d_tiny", num_classes=3, pretrained=path)
    got = model.state_dict()
    for key, value in got.items():
        if _is_head(key):  # re-created for 3 classes: the fresh initialisation of this seed
            assert value.shape[0] == 3 and torch.equal(value, fresh[key]), key
        else:
            assert torch.equal(value, kinetics_like[key]), key


def test_same_class_count_loads_the_classifier_too(kinetics_like, tmp_path):
    path = tmp_path / "plain.pth"
    torch.save(as_shipped(kinetics_like, "pyslowfast"), path)
    model = create_model("dg_p3d_tiny", num_classes=5)
    report = load_weights(model, path, fine_tune=True)
    assert (report.container, report.reset_classifier) == ("PySlowFast", False)
    assert report.loaded == len(kinetics_like)
    assert all(torch.equal(v, kinetics_like[k]) for k, v in model.state_dict().items())


def test_mismatches_name_the_first_key(kinetics_like, tmp_path):
    def refused(state: dict, match: str, **kwargs) -> None:
        path = tmp_path / "w.pth"
        torch.save(state, path)
        with pytest.raises(OptplanError, match=match):
            load_weights(create_model("dg_p3d_tiny", num_classes=3), path, "model.pretrained", **kwargs)

    first = next(iter(kinetics_like))
    wrong = dict(kinetics_like, **{first: torch.zeros(1)})
    refused(wrong, rf"first mismatched key '{first}' has shape \(1,\)", fine_tune=True)
    refused({**kinetics_like, "layer9.weight": torch.zeros(1)}, "first mismatched key 'layer9.weight' has no counterpart",
            fine_tune=True)
    refused({k: v for k, v in kinetics_like.items() if k != first}, f"first mismatched key '{first}' is missing",
            fine_tune=True)
    # without fine-tuning (evaluating a model), another class count is a mismatch like any other
    refused(kinetics_like, r"first mismatched key 'heads.0.fc.weight' has shape \(5, ")
    refused({"model": argparse.Namespace(x=1)}, "not a loadable state dict")  # no pickled objects
    refused({"epoch": 3, "cfg": "x"}, r"holds a dict with keys \['cfg', 'epoch'\], not a state dict")


def test_every_model_a_session_makes_starts_from_model_pretrained(tiny_dataset, kinetics_like, tmp_path):
    """What a plan's start edges and a schedule replay begin from."""
    path = tmp_path / "k.pyth"
    torch.save(as_shipped(kinetics_like, "pyslowfast"), path)
    cfg = load_config(None, [f"data.root={tiny_dataset}", f"data.cache_dir={tmp_path / 'cache'}",
                             f"model.pretrained={path}", "train.threads=1"])
    session = TrainSession(cfg)
    model = session.new_model().state_dict()
    assert torch.equal(model["conv1.weight"], kinetics_like["conv1.weight"])
    assert model["heads.0.fc.weight"].shape[0] == 12
    assert not torch.equal(session.new_model(pretrained=False).state_dict()["conv1.weight"], kinetics_like["conv1.weight"])


@pytest.mark.slow
def test_train_fine_tunes_from_an_mmaction2_checkpoint(tiny_dataset, kinetics_like, tmp_path, capsys):
    """``--source`` with another framework's 5-class checkpoint on the 12-class built-in set;
    the kept checkpoint carries the class names and the resolved config."""
    source = tmp_path / "mmaction2.pth"
    torch.save(as_shipped(kinetics_like, "mmaction2"), source)
    state = tmp_path / "state.yaml"
    state.write_text("name: ft\nlr: 0.01\nclip_length: 4\nbatch_size: 8\n")
    over = [f"data.root={tiny_dataset}", f"data.cache_dir={tmp_path / 'cache'}", "data.crop_size=28",
            "data.short_side=32", "data.num_workers=0", "train.threads=1", "train.progress=false",
            "knee.patience=1", "knee.max_epochs=1"]
    assert main(["train", *over, "--state", str(state), "--source", str(source), "--out", str(tmp_path / "run")]) == 0
    assert json.loads((tmp_path / "run" / "result.json").read_text())["cost"]["epochs"] == 1
    kept = load_checkpoint(tmp_path / "run" / "kept.pt")
    assert kept["classes"] == [line.split()[1] for line in (tiny_dataset / "classInd.txt").read_text().splitlines()]
    assert kept["config"]["data"]["root"] == str(tiny_dataset) and kept["model"]["heads.0.fc.weight"].shape[0] == 12
    wrong = {**kept, "classes": list(reversed(kept["classes"]))}
    torch.save(wrong, tmp_path / "wrong.pt")
    assert main(["eval", *over, "--checkpoint", str(tmp_path / "wrong.pt")]) == 2
    assert "was trained on the classes" in capsys.readouterr().err
