"""2D -> 3D inflation: a generated 2D ResNet-50 state dict (torchvision key names, no torchvision)
loaded into DG-P3D-ResNet-50 reproduces the 2D network on a clip of identical frames."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from optplan.errors import OptplanError
from optplan.models import create_model


class Bottleneck2d(nn.Module):
    """torchvision's ResNet-50 bottleneck (stride on the 3x3), same attribute names."""

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = None
        if stride != 1 or cin != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes * 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + identity)


class ResNet50_2d(nn.Module):
    """Reference 2D ResNet-50 whose state dict has torchvision's keys; ``forward`` returns the
    pooled res5 features (N, 2048)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, depth in enumerate((3, 4, 6, 3)):
            planes = 64 * 2 ** i
            blocks = [Bottleneck2d(cin if j == 0 else planes * 4, planes, 2 if i and j == 0 else 1)
                      for j in range(depth)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            cin = planes * 4
        self.fc = nn.Linear(2048, 1000)

    def res4(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        return self.layer3(self.layer2(self.layer1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.res4(x)).mean(dim=(2, 3))


@pytest.fixture(scope="module")
def resnet50_2d(tmp_path_factory: pytest.TempPathFactory) -> tuple[ResNet50_2d, Path]:
    """A randomly initialised 2D ResNet-50 with non-trivial BN statistics, saved to a file."""
    torch.manual_seed(0)
    net = ResNet50_2d().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.0)
                m.bias.uniform_(-0.1, 0.1)
    path = tmp_path_factory.mktemp("weights") / "resnet50_2d.pth"
    torch.save(net.state_dict(), path)
    return net, path


@pytest.mark.slow
def test_inflated_dg_p3d_reproduces_2d_resnet_on_identical_frames(resnet50_2d) -> None:
    net2d, path = resnet50_2d
    model = create_model("dg_p3d_r50", num_classes=5, pretrained_2d=path).eval()
    with torch.no_grad():  # the global context's random last bias is the one term 2D lacks
        for name, p in model.named_parameters():
            if name.endswith("gc.fc2.bias"):
                p.zero_()
    stem = model.conv1.weight
    torch.testing.assert_close(stem[:, :, 2], net2d.conv1.weight)
    assert stem[:, :, [0, 1, 3]].abs().sum() == 0
    image = torch.randn(1, 3, 64, 64)
    clip = image[:, :, None].expand(1, 3, 8, 64, 64).contiguous()
    with torch.no_grad():
        temporal, spatial = model.forward_head(model.forward_features(clip), pre_logits=True)
        torch.testing.assert_close(temporal, net2d(image), atol=1e-4, rtol=1e-4)
        # The spatial head's res5 is the 2D res5 run at stride 1 on the (max-pooled) frames.
        res4 = net2d.res4(image)
        for conv in (net2d.layer4[0].conv2, net2d.layer4[0].downsample[0]):
            conv.stride = (1, 1)
        try:
            torch.testing.assert_close(spatial, net2d.layer4(res4).mean(dim=(2, 3)), atol=1e-4, rtol=1e-4)
        finally:
            for conv in (net2d.layer4[0].conv2, net2d.layer4[0].downsample[0]):
                conv.stride = (2, 2)


@pytest.mark.slow
def test_mismatched_2d_files_are_refused_by_first_key(resnet50_2d, tmp_path: Path) -> None:
    _, path = resnet50_2d
    with pytest.raises(OptplanError, match=r"first mismatched key 'conv1.weight' has shape \(64, 3, 7, 7\)"):
        create_model("dg_p3d_tiny", pretrained_2d=path)
    state = torch.load(path, weights_only=True)
    state["layer3.6.conv1.weight"] = torch.zeros(256, 1024, 1, 1)  # a deeper ResNet's block
    deeper = tmp_path / "deeper.pth"
    torch.save({"state_dict": state}, deeper)
    with pytest.raises(OptplanError, match="first mismatched key 'layer3.6.conv1.weight'"):
        create_model("dg_p3d_r50", pretrained_2d=deeper)
    del state["layer3.6.conv1.weight"], state["layer2.1.bn2.running_var"]
    torch.save(state, deeper)
    with pytest.raises(OptplanError, match="first mismatched key 'layer2.1.bn2.running_var' is missing"):
        create_model("dg_p3d_r50", pretrained_2d=deeper)


def test_inflation_refuses_non_p3d_models_and_bad_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_text("not a checkpoint")
    with pytest.raises(OptplanError, match="not a loadable state dict"):
        create_model("dg_p3d_tiny", pretrained_2d=junk)
    with pytest.raises(OptplanError, match="no file"):
        create_model("dg_p3d_tiny", pretrained_2d=tmp_path / "missing.pth")
    torch.save({"conv1.weight": torch.zeros(1)}, junk)
    with pytest.raises(OptplanError, match="r3d_tiny cannot be initialised from a 2D ResNet"):
        create_model("r3d_tiny", pretrained_2d=junk)
