"""The body of POST /v1/jobs as a type: the plugin's side of backend/request.py's ColorizeRequest.

The backend's request holds decoded arrays; this one holds what travels: images as base64 PNG. draft,
reference_weights, palettes and panels (docs: /work/notes/wave2_contract.md, issue 12) are sent only when set,
so a page without them sends the same body as before they existed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class ColorizeRequest:
    ink: str  # base64 PNG, grayscale, 1 = paper
    hints: Optional[str] = None  # base64 PNG, RGBA of the ink's size (alpha > 0 = hint)
    references: list[str] = field(default_factory=list)  # base64 PNG colour pictures of any size
    draft: Optional[str] = None  # reserved: base64 PNG RGBA colouring draft
    # "auto" or [{"polygon": [[x, y], ...], "references"?: [...], "reference_weights"?: [...], "palettes"?: [...]}]
    panels: Optional[Any] = None
    options: dict[str, Any] = field(default_factory=dict)  # name -> value, as GET /v1/options lists them
    reference_weights: list[float] = field(default_factory=list)  # parallel to references; empty = all 1
    palettes: list[dict] = field(default_factory=list)  # page-level palettes (mangacolor-palette JSON)

    def __post_init__(self) -> None:
        if not self.ink:
            raise ValueError("the ink image is required")

    def to_json(self) -> dict:
        body: dict[str, Any] = {
            "ink": self.ink,
            "hints": self.hints or None,
            "references": list(self.references),
            "options": dict(self.options),
        }
        if self.draft:
            body["draft"] = self.draft
        if self.reference_weights and any(float(w) != 1.0 for w in self.reference_weights):
            body["reference_weights"] = [float(w) for w in self.reference_weights]
        if self.palettes:
            body["palettes"] = [dict(p) for p in self.palettes]
        if self.panels is not None:
            body["panels"] = self.panels if isinstance(self.panels, str) else [dict(p) for p in self.panels]
        return body

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode("utf-8")
