"""The page paper's generator architecture, for timing only: a U-Net on an SE-ResNeXt-50 (32x4d)
encoder, about 32 M parameters (Golyadkin & Makarov 2023 build theirs with segmentation_models_pytorch;
that package needs torchvision, which does not work with our torch build, so the same layout is
written out here). Random weights: only its speed is compared with ours (`bench --speed`).

Inputs as in the paper: the page (1), the hint map (4) and the coloring draft (3): 8 channels.
"""

from __future__ import annotations

import time

import torch
import torch.nn as nn
import torch.nn.functional as F

IN_CHANNELS = 8
PAPER_SIZE = (832, 576)  # H x W the paper's model would use for a 1414 x 2000 page


class SEModule(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class SEResNeXtBottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, groups: int = 32, base_width: int = 4):
        super().__init__()
        width = (planes * base_width // 64) * groups
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.se = SEModule(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.se(self.bn3(self.conv3(out)))
        return F.relu(out + (x if self.down is None else self.down(x)))


def _stage(cin: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    layers = [SEResNeXtBottleneck(cin, planes, stride)]
    layers += [SEResNeXtBottleneck(planes * 4, planes, 1) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class DecoderBlock(nn.Module):
    def __init__(self, cin: int, skip: int, cout: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(cin + skip, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], 1)
        return self.conv(x)


class PaperGenerator(nn.Module):
    """SE-ResNeXt-50 32x4d encoder (3, 4, 6, 3 blocks) + U-Net decoder (256, 128, 64, 32, 16)."""

    def __init__(self, in_channels: int = IN_CHANNELS):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _stage(64, 64, 3, 1)
        self.layer2 = _stage(256, 128, 4, 2)
        self.layer3 = _stage(512, 256, 6, 2)
        self.layer4 = _stage(1024, 512, 3, 2)
        self.decoder = nn.ModuleList([
            DecoderBlock(2048, 1024, 256),
            DecoderBlock(256, 512, 128),
            DecoderBlock(128, 256, 64),
            DecoderBlock(64, 64, 32),
            DecoderBlock(32, 0, 16),
        ])
        self.head = nn.Conv2d(16, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.stem(x)  # /2
        s2 = self.layer1(self.pool(s1))  # /4
        s3 = self.layer2(s2)  # /8
        s4 = self.layer3(s3)  # /16
        y = self.layer4(s4)  # /32
        for block, skip in zip(self.decoder, (s4, s3, s2, s1, None)):
            y = block(y, skip)
        return torch.sigmoid(self.head(y))


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.inference_mode()
def time_forward(device: str = "cpu", size: tuple[int, int] = PAPER_SIZE, repeats: int = 3) -> dict:
    """Median seconds of one forward of the paper's generator at `size` (H, W), random weights."""
    torch.manual_seed(0)
    model = PaperGenerator().eval().to(device)
    x = torch.rand(1, IN_CHANNELS, *size, device=device)
    model(x)  # warm-up (allocations, cuDNN autotune)
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        model(x)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"seconds": times[len(times) // 2], "size": list(size), "parameters": n_parameters(model), "device": device}
