"""The one request type that carries every input of a colorization, and its result."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np


class RequestError(ValueError):
    """A request that cannot be served as asked; the message is meant for the user."""


@dataclass
class ColorizeOptions:
    """User-facing options. Every field is documented here and exposed by the API schema,
    so clients (the Krita docker) can build their controls from it."""

    reference_mode: Literal["histogram", "palette"] = "histogram"
    """How references guide colour: 'histogram' matches their colour proportions,
    'palette' only restricts which colours are used (Comicolorization)."""
    palette_strength: float = 1.0
    """0..1: how far each region no hint reached moves to the nearest colour of your palette: the hint
    colours and the main colours of the references (hue and saturation only; the shading stays).
    0 = the network's own colours there."""
    working_size: int = 768
    """Long side in pixels at which the network runs; the result is restored to full size guided by the ink."""
    keep_white: bool = True
    """Keep paper white where no hint asks otherwise: speech balloons and caption boxes (found by their
    lettering), clean paper connected to the page border (margins, gutters), and near-white colour."""
    flat_regions: float = 0.6
    """0..1: how much each line-enclosed region is flattened to one colour (1 = flat cel colour, 0 = network shading)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "ColorizeOptions":
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RequestError(f"unknown option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        opts = cls(**data)
        opts.validate()
        return opts

    def validate(self) -> None:
        if self.reference_mode not in ("histogram", "palette"):
            raise RequestError("reference_mode must be 'histogram' or 'palette'")
        if not isinstance(self.working_size, int) or isinstance(self.working_size, bool) or not 64 <= self.working_size <= 4096:
            raise RequestError("working_size must be an integer between 64 and 4096")
        if not isinstance(self.keep_white, bool):
            raise RequestError("keep_white must be true or false")
        for name in ("flat_regions", "palette_strength"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise RequestError(f"{name} must be a number between 0 and 1")


@dataclass
class ColorizeRequest:
    """Every input of one colorization, already decoded.

    ink: float32 HxW in [0, 1], 1 = paper. hints: uint8 HxWx4 RGBA of the same size (alpha > 0 = hint)
    or None. references: uint8 RGB images of any size. draft: uint8 HxWx4 RGBA coloring draft
    (reserved: refused until the drafting model lands). panels: reserved likewise.
    """

    ink: np.ndarray
    hints: np.ndarray | None = None
    references: list[np.ndarray] = field(default_factory=list)
    draft: np.ndarray | None = None
    panels: list[tuple[int, int, int, int]] | None = None
    options: ColorizeOptions = field(default_factory=ColorizeOptions)

    def validate(self) -> None:
        if self.ink.ndim != 2 or self.ink.size == 0:
            raise RequestError("ink must be a non-empty single-channel page")
        if self.hints is not None:
            if self.hints.ndim != 3 or self.hints.shape[2] != 4:
                raise RequestError("hints must be an RGBA image")
            if self.hints.shape[:2] != self.ink.shape:
                raise RequestError(
                    f"hints are {self.hints.shape[1]}x{self.hints.shape[0]} but the ink is "
                    f"{self.ink.shape[1]}x{self.ink.shape[0]}; they must be the same size"
                )
        for i, ref in enumerate(self.references):
            if ref.ndim != 3 or ref.shape[2] != 3 or ref.size == 0:
                raise RequestError(f"reference {i + 1} must be a non-empty RGB image")
        if self.draft is not None:
            raise RequestError("draft input is not available yet (coloring-draft model not shipped)")
        if self.panels is not None:
            raise RequestError("per-panel references are not available yet")
        self.options.validate()


@dataclass
class ColorizeResult:
    color_layer: np.ndarray  # uint8 HxWx4: the colour alone, to sit beneath the ink set to Multiply
    composite: np.ndarray  # uint8 HxWx3: colour multiplied by the ink (ink stays pixel-exact)
    model_version: str
    seconds: dict[str, float]
