"""The colorizer network: a small fully convolutional U-Net.

Inputs are the per-pixel planes of `inputs.build_inputs` (ink, line/tone structure, hints,
propagated hints, coloring draft) and the global colour vector of `inputs.global_vector` (a
reference's 216-bin histogram or binary palette plus two flags), fused at the bottleneck as
Comicolorization fuses its histogram: projected, broadcast over the bottleneck and concatenated. Output is sRGB in [0, 1].

Inside a region that holds a hint, the answer is usually the hint's colour, shaded. Rather than
make a small network learn to copy it, the output is a learned per-pixel blend of the propagated
hint colour (corrected by a learned shading factor) and the network's own colour, with the blend
biased toward the hint where one was propagated. The network can still overrule it (leaky lines).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .color import HIST_SIZE
from .inputs import GLOBAL_SIZE, N_INPUT_CHANNELS, PROPAGATED_MASK, PROPAGATED_RGB

GATE_BIAS = 3.0  # initial trust in a propagated hint: sigmoid(3) = 0.95
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "mangacolor.safetensors"


@dataclass
class ModelConfig:
    in_channels: int = N_INPUT_CHANNELS
    global_size: int = GLOBAL_SIZE
    widths: tuple[int, ...] = (16, 32, 64, 96, 128)
    hint_gate: bool = True  # blend toward propagated hints (see module docstring)
    film: bool = True  # the global colour vector also scales and shifts every decoder level
    sqrt_histogram: bool = True  # the network sees sqrt(histogram): see `ColorUNet.global_features`

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        d = json.loads(text)
        d["widths"] = tuple(d["widths"])
        d.setdefault("hint_gate", False)  # weights saved before the gate existed
        d.setdefault("film", False)  # ... or before FiLM
        d.setdefault("sqrt_histogram", False)
        return cls(**d)


class ConvBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1),
            nn.GroupNorm(min(8, cout // 4), cout),
            nn.SiLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1),
            nn.GroupNorm(min(8, cout // 4), cout),
            nn.SiLU(inplace=True),
        )


class ColorUNet(nn.Module):
    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        self.config = config or ModelConfig()
        w = self.config.widths
        self.stem = ConvBlock(self.config.in_channels, w[0])
        self.down = nn.ModuleList(ConvBlock(w[i], w[i + 1]) for i in range(len(w) - 1))
        self.global_proj = nn.Sequential(nn.Linear(self.config.global_size, w[-1]), nn.SiLU(), nn.Linear(w[-1], w[-1]))
        self.fuse = nn.Conv2d(2 * w[-1], w[-1], 1)
        self.up = nn.ModuleList(ConvBlock(w[i + 1] + w[i], w[i]) for i in reversed(range(len(w) - 1)))
        self.head = nn.Conv2d(w[0], 5 if self.config.hint_gate else 3, 1)
        if self.config.film:
            # FiLM (Perez et al. 2018): a per-channel scale and shift of each up-block's output from the
            # reference. Fused only at the bottleneck, the reference's effect faded by the last decoder
            # level and the trained model ignored it. Zero-initialised: a model starts as it was.
            self.film_layers = nn.ModuleList(nn.Linear(w[-1], 2 * w[i]) for i in reversed(range(len(w) - 1)))
            for layer in self.film_layers:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    @property
    def stride(self) -> int:
        return 2 ** (len(self.config.widths) - 1)

    def global_features(self, global_vec: torch.Tensor) -> torch.Tensor:
        """A histogram is mostly paper: its colour bins hold a few hundredths each, too faint a signal
        for a linear layer to learn from in a short run. Their square root (the Hellinger map)
        lifts 0.01 to 0.1 and keeps the order; the two flags pass unchanged."""
        if not self.config.sqrt_histogram:
            return global_vec
        hist, flags = global_vec[:, :HIST_SIZE], global_vec[:, HIST_SIZE:]
        return torch.cat([hist.clamp_min(0.0).sqrt(), flags], 1)

    def forward(self, x: torch.Tensor, global_vec: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        s = self.stride
        pad_h, pad_w = (-h) % s, (-w) % s
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(F.avg_pool2d(skips[-1], 2)))
        bottom = skips.pop()
        g_feat = self.global_proj(self.global_features(global_vec))
        g = g_feat[:, :, None, None].expand(-1, -1, *bottom.shape[-2:])
        y = self.fuse(torch.cat([bottom, g], 1))
        for i, block in enumerate(self.up):
            skip = skips.pop()
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], 1))
            if self.config.film:
                scale, shift = self.film_layers[i](g_feat)[:, :, None, None].chunk(2, dim=1)
                y = y * (1.0 + scale) + shift
        out = self.head(y)[..., :h, :w]
        color = torch.sigmoid(out[:, :3])
        if not self.config.hint_gate:
            return color
        prop_rgb, prop_mask = x[:, PROPAGATED_RGB, :h, :w], x[:, PROPAGATED_MASK : PROPAGATED_MASK + 1, :h, :w]
        shade = 2.0 * torch.sigmoid(out[:, 3:4])  # 1 at init: the hint colour as painted
        gate = torch.sigmoid(out[:, 4:5] + GATE_BIAS * (2.0 * prop_mask - 1.0)) * prop_mask
        return (gate * (prop_rgb * shade).clamp(0.0, 1.0) + (1.0 - gate) * color).clamp(0.0, 1.0)


def save_weights(model: ColorUNet, path: Path, extra: dict[str, str] | None = None) -> None:
    from safetensors.torch import save_file

    meta = {"config": model.config.to_json(), **(extra or {})}
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=meta)


def load_weights(path: Path = DEFAULT_WEIGHTS, device: str | torch.device = "cpu") -> tuple[ColorUNet, dict[str, str]]:
    """Load a model from safetensors (never pickle); returns the model and the file's metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
    model = ColorUNet(ModelConfig.from_json(meta["config"]))
    model.load_state_dict(load_file(str(path), device="cpu"))
    return model.to(device).eval(), meta


def init_from(model: ColorUNet, path: Path) -> list[str]:
    """Start `model` from trained weights of a model that may lack some of its newer parts (FiLM);
    those keep their neutral initialisation. Returns the names of the parameters not loaded."""
    old, _ = load_weights(path)
    if old.config.widths != model.config.widths or old.config.in_channels != model.config.in_channels:
        raise ValueError(f"{path}: widths/inputs {old.config.widths}/{old.config.in_channels} do not match the model's")
    missing, unexpected = model.load_state_dict(old.state_dict(), strict=False)
    if unexpected:
        raise ValueError(f"{path}: parameters this model does not have: {unexpected[:5]}")
    return list(missing)
