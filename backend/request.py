"""The one request type that carries every input of a colorization, and its result."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from .options import option, problem
from .palettes import Palette

MAX_PANELS = 64  # panels of one request (a page has a dozen; each distinct colour source costs a network run)


class RequestError(ValueError):
    """A request that cannot be served as asked; the message is meant for the user."""


@dataclass(frozen=True)
class ColorizeOptions:
    """User-facing options, each declared once here with `option(default, help, range or choices)`.

    The API schema (GET /v1/options, from which the Krita docker builds its controls), the validation
    and the CLI flags of `colorize` and `batch` are all derived from these fields (backend/options.py):
    adding an option is one field here. Options are checked when made and cannot change afterwards."""

    reference_mode: str = option(
        "histogram",
        """How references guide colour: 'histogram' matches their colour proportions,
        'palette' only restricts which colours are used (Comicolorization).""",
        choices=("histogram", "palette"),
    )
    palette_strength: float = option(
        1.0,
        """0..1: how far each region no hint reached moves to the nearest colour of your palette: the hint
        colours and the main colours of the references (hue and saturation only; the shading stays).
        0 = the network's own colours there.""",
        min=0.0,
        max=1.0,
    )
    working_size: int = option(
        768,
        "Long side in pixels at which the network runs; the result is restored to full size guided by the ink.",
        min=64,
        max=4096,
    )
    keep_white: bool = option(
        True,
        """Keep paper white where no hint asks otherwise: speech balloons and caption boxes (found by their
        lettering), clean paper connected to the page border (margins, gutters), and near-white colour.""",
    )
    flat_regions: float = option(
        0.6,
        "0..1: how much each line-enclosed region is flattened to one colour (1 = flat cel colour, 0 = network shading).",
        min=0.0,
        max=1.0,
    )
    variants: int = option(
        1,
        """How many colourings to make (1..8): the first is the colour layer, the others are alternatives to pick
        from. Each follows its own draft sampled from the drafting model (the page's coloring latent space), so
        they differ where the page leaves colour open and agree where hints or a painted draft pin it.""",
        min=1,
        max=8,
    )
    seed: int = option(
        0,
        "Seed of the variants (0..999999): variant i follows draft seed + i - 1, so the same seed gives the same variants.",
        min=0,
        max=999999,
    )
    draft_strength: float = option(
        0.6,
        """0..1: with a draft or variants, how far each line-enclosed region no hint reached takes the draft's colour
        there (hue and saturation of the draft's mean in the region; the shading stays the network's). 0 = the
        network's own reading of the draft only.""",
        min=0.0,
        max=1.0,
    )
    reference_draft: bool = option(
        True,
        """With variants and references: the references' overall colouring (their latent palette, inverted by the
        drafting model) also steers every variant's draft, not only the global colour feature.""",
    )
    dominant_scale: float = option(
        1.0,
        """0..1: Comicolorization's histogram adjustment: the most used colour of the references (often their
        background) counts this much, so it does not flood the page; 1 = as the references have it.""",
        min=0.0,
        max=1.0,
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            why = problem(f, getattr(self, f.name))
            if why is not None:
                raise RequestError(why)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "ColorizeOptions":
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(map(str, set(data) - known))
        if unknown:
            raise RequestError(f"unknown option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)


def check_weights(weights: list[float] | tuple[float, ...] | None, n: int, where: str) -> None:
    if weights is None:
        return
    if len(weights) != n:
        raise RequestError(f"{where}: {len(weights)} reference weight(s) for {n} reference(s); give one per reference")
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not np.isfinite(w) or w <= 0:
            raise RequestError(f"{where}: reference weights must be positive numbers, not {w!r}")


def _check_references(references: list[np.ndarray] | tuple[np.ndarray, ...], where: str) -> None:
    for i, ref in enumerate(references):
        if ref.ndim != 3 or ref.shape[2] != 3 or ref.size == 0:
            raise RequestError(f"{where}reference {i + 1} must be a non-empty RGB image")


def check_draft(draft: np.ndarray, shape: tuple[int, int]) -> None:
    """Raise RequestError unless the draft is a uint8 RGBA image of the ink's size (h, w)."""
    if not isinstance(draft, np.ndarray) or draft.ndim != 3 or draft.shape[2] != 4 or draft.dtype != np.uint8:
        raise RequestError("the draft must be an 8-bit RGBA image (alpha > 0 = painted draft colour)")
    if draft.shape[:2] != tuple(shape):
        raise RequestError(
            f"the draft is {draft.shape[1]}x{draft.shape[0]} but the ink is {shape[1]}x{shape[0]}; they must be the same size"
        )


@dataclass(frozen=True, eq=False)
class ColourSources:
    """Where one colour feature comes from: reference images (uint8 RGB, any size) with their
    weights (None = all 1; Comicolorization's weighted histogram blending), and saved palettes
    (`palettes.Palette`, each with its own weight). Empty: the model chooses the colours."""

    references: tuple[np.ndarray, ...] = ()
    weights: tuple[float, ...] | None = None
    palettes: tuple[Palette, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "references", tuple(self.references))
        object.__setattr__(self, "palettes", tuple(self.palettes))
        if self.weights is not None:
            object.__setattr__(self, "weights", tuple(self.weights))

    @property
    def empty(self) -> bool:
        return not self.references and not self.palettes

    def validate(self, where: str = "") -> None:
        _check_references(self.references, where)
        check_weights(self.weights, len(self.references), where.rstrip(": ") or "references")
        if not all(isinstance(p, Palette) for p in self.palettes):
            raise RequestError(f"{where}palettes must be palettes.Palette")


@dataclass(eq=False)
class PanelInput:
    """One panel of the page: its polygon in page pixels ((x, y) corners, at least 3) and its own
    colour sources; None = the page's. Its colour feature acts inside the polygon only."""

    polygon: list[tuple[int, int]]
    colours: ColourSources | None = None


def check_panels(panels: list[PanelInput], shape: tuple[int, int]) -> None:
    """Raise RequestError unless every panel's polygon is at least 3 finite points on the page
    (h, w) enclosing some area, and there are at most MAX_PANELS (cheap: the API checks this
    before it decodes any image)."""
    h, w = shape
    if len(panels) > MAX_PANELS:
        raise RequestError(f"{len(panels)} panels: at most {MAX_PANELS}")
    for i, panel in enumerate(panels):
        where = f"panel {i + 1}: "
        if not isinstance(panel, PanelInput):
            raise RequestError(f"{where}must be a PanelInput")
        if len(panel.polygon) < 3:
            raise RequestError(f"{where}a polygon needs at least 3 points, got {len(panel.polygon)}")
        try:
            pts = np.asarray(panel.polygon, np.float64)
        except (TypeError, ValueError):
            raise RequestError(f"{where}each point must be [x, y] numbers") from None
        if pts.ndim != 2 or pts.shape[1] != 2 or not np.isfinite(pts).all():
            raise RequestError(f"{where}each point must be [x, y] numbers")
        if (pts[:, 0] < 0).any() or (pts[:, 0] > w).any() or (pts[:, 1] < 0).any() or (pts[:, 1] > h).any():
            raise RequestError(f"{where}a point lies outside the {w}x{h} page")
        x, y = pts[:, 0], pts[:, 1]
        if abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))) / 2 < 1.0:
            raise RequestError(f"{where}the polygon has no area")


@dataclass
class ColorizeRequest:
    """Every input of one colorization, already decoded.

    ink: float32 HxW in [0, 1], 1 = paper. hints: uint8 HxWx4 RGBA of the same size (alpha > 0 = hint)
    or None. references: uint8 RGB images of any size, blended by `reference_weights` (None = equal)
    with the histograms of `palettes`. draft: uint8 HxWx4 RGBA coloring draft of the same size (alpha > 0
    = painted; the colorist's Draft layer or a saved variant, `variants.py`). panels: None (the page as one) or the page's panels, each with its own
    colour sources or the page's (`colour_features.py` colours each inside its polygon).
    """

    ink: np.ndarray
    hints: np.ndarray | None = None
    references: list[np.ndarray] = field(default_factory=list)
    draft: np.ndarray | None = None
    panels: list[PanelInput] | None = None
    options: ColorizeOptions = field(default_factory=ColorizeOptions)
    reference_weights: list[float] | None = None
    palettes: list[Palette] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.validate()  # a request is checked once, where it is made: the boundary (API, CLI, batch)

    def validate(self) -> None:
        """Raise RequestError unless the inputs fit together (cheap: shapes only; the options checked
        themselves when they were made)."""
        if not isinstance(self.options, ColorizeOptions):
            raise RequestError("options must be ColorizeOptions")
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
        self.colours.validate()
        if self.draft is not None:
            check_draft(self.draft, self.ink.shape)
        if self.panels is not None:
            self._validate_panels()

    @property
    def colours(self) -> ColourSources:
        """The page's colour sources: its references, their weights and its palettes."""
        return ColourSources(tuple(self.references), self.reference_weights, tuple(self.palettes))

    def _validate_panels(self) -> None:
        check_panels(self.panels or [], self.ink.shape)
        for i, panel in enumerate(self.panels or []):
            if panel.colours is not None:
                panel.colours.validate(f"panel {i + 1}: ")


def multiply(color_layer: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """The composite (uint8 HxWx3): the colour layer's RGB multiplied by the ink (float32 HxW, 1 =
    paper), so black ink stays exactly black. Band by band: no float copy of a whole page."""
    h, w = ink.shape
    out = np.empty((h, w, 3), np.uint8)
    step = max(1, (1 << 22) // max(w, 1))
    for y in range(0, h, step):
        mixed = color_layer[y : y + step, :, :3].astype(np.float32)
        mixed *= ink[y : y + step, :, None]
        mixed += 0.5
        np.clip(mixed, 0, 255, out=mixed)
        out[y : y + step] = mixed  # float -> uint8 truncates, as astype
    return out


class ColorizeResult:
    """color_layer: uint8 HxWx4, the colour alone, to sit beneath the ink set to Multiply (variant 1);
    variants: the colour layers of variants 2..N (empty for one colouring).
    composite: uint8 HxWx3, the colour multiplied by the ink; computed from `ink` when first asked for
    (most callers, the Krita plugin's among them, never need it) unless it was given."""

    def __init__(
        self,
        color_layer: np.ndarray,
        model_version: str,
        seconds: dict[str, float],
        composite: np.ndarray | None = None,
        ink: np.ndarray | None = None,
        variants: list[np.ndarray] | None = None,
    ):
        if composite is None and ink is None:
            raise ValueError("a ColorizeResult needs its composite or the ink to compute it from")
        self.color_layer, self.model_version, self.seconds = color_layer, model_version, seconds
        self._composite, self._ink = composite, ink
        self.variants: list[np.ndarray] = list(variants or [])  # colour layers of variants 2..N

    def variant_composites(self) -> list[np.ndarray]:
        """The composites of variants 2..N (computed from the ink)."""
        if self._ink is None:
            raise ValueError("variant composites need the ink")
        return [multiply(layer, self._ink) for layer in self.variants]

    @property
    def composite(self) -> np.ndarray:
        if self._composite is None:
            self._composite = multiply(self.color_layer, self._ink)  # type: ignore[arg-type]
        return self._composite
