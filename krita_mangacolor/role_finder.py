"""Which layers play which role in a document: the ink, the hints, the reference, the draft (typed `Roles` of `Layer`s).

The user's choices (roles.py, stored in the document) come first; "auto" finds the roles by name, then the
active layer. The same rules serve Colorize, the docker's pickers (preview_roles) and the hint tools.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional

from . import roles
from .errors import UserError
from .layers import (
    MASK_TYPES,
    MULTIPLY,
    NO_PIXEL_TYPES,
    Layer,
    can_be_ink,
    wrap,
    find_by_uid_text,
    find_layer,
    find_named,
    index_in_parent,
    is_own_layer,
    iter_layers,
    iter_nodes,
    same_node,
    type_name,
)
from .settings import DEFAULT_DRAFT_LAYER, DEFAULT_HINT_LAYER, DEFAULT_REFERENCE_LAYER


class Preview(NamedTuple):
    """What a role picker shows for Auto: the layer Auto finds (None: none) and its text."""

    layer: Optional[Layer]
    text: str


class UsedLayers(NamedTuple):
    """The names of the layers a run used (hints/reference None when none was used)."""

    ink: str
    hints: Optional[str]
    reference: Optional[str]


def ink_of_own_layer(own: Any, other: tuple = ()) -> Optional[Any]:
    """The ink a result layer belongs to: the layer directly above it (result beneath the ink), or directly
    below it when the result itself multiplies (result above a lowest ink). None if that cannot be an ink."""
    try:
        _, siblings, i = index_in_parent(own)
    except UserError:
        return None
    j = i - 1 if own.blendingMode() == MULTIPLY and i > 0 else i + 1
    if not 0 <= j < len(siblings):
        return None
    cand = siblings[j]
    t = cand.type()
    if t in MASK_TYPES or t in NO_PIXEL_TYPES or is_own_layer(cand.name(), t) or any(same_node(cand, o) for o in other):
        return None
    return cand


def ink_by_name(doc: Any, exclude: tuple = ()) -> Optional[Any]:
    """The top-most layer named like a line-art layer ('Ink', 'Lineart', 'line art 2'...)."""
    for node in iter_nodes(doc.rootNode()):
        if roles.looks_like_ink(node.name()) and can_be_ink(node) and not any(same_node(node, e) for e in exclude):
            return node
    return None


@dataclass
class Roles:
    ink: Layer
    hints: Optional[Layer]
    reference: Optional[Layer]
    ink_how: str  # "chosen", "by name", "active layer", "only layer"
    notes: list[str] = field(default_factory=list)
    hint_missing_name: str = ""  # for the note when no hint layer is found
    draft: Optional[Layer] = None  # rough colour washes sent as the colouring draft (issue 13)


def _chosen_node(doc: Any, choice: roles.Choice) -> Optional[Any]:
    return find_by_uid_text(doc, choice.uid) or (find_layer(doc, choice.name) if choice.name else None)


def resolve_roles(
    doc: Any,
    choices: Optional[dict] = None,
    hint_name: str = DEFAULT_HINT_LAYER,
    reference_name: str = DEFAULT_REFERENCE_LAYER,
    use_active: bool = True,
) -> Roles:
    """Which layers play which role. Raises UserError when there is no usable ink layer.

    Ink: the layer chosen in the docker; else (auto) the top-most layer named like ink/lineart; else the
    active layer (interactive) or the document's only layer (use_active=False, e.g. for all open documents).
    Hints / reference: the chosen layer, none, or (auto) the layer named hint_name / reference_name."""
    choices = choices or roles.default_choices()
    notes: list[str] = []
    ink = None
    how = ""
    c_ink, c_hints, c_ref = choices.get("ink", roles.Choice()), choices.get("hints", roles.Choice()), choices.get("reference", roles.Choice())

    if c_ink.kind == roles.LAYER:
        ink = _chosen_node(doc, c_ink)
        if ink is None:
            raise UserError(
                f"The ink layer '{c_ink.name}' chosen in the MangaColor docker is no longer in this document: "
                "choose the ink layer again in the docker (or 'Auto')."
            )
        how = "chosen"

    def pick(choice: roles.Choice, default_name: str, what: str, exclude: tuple) -> tuple[Optional[Any], str]:
        if choice.kind == roles.NONE:
            return None, ""
        if choice.kind == roles.LAYER:
            node = _chosen_node(doc, choice)
            if node is None:
                notes.append(f"the {what} '{choice.name}' chosen in the docker is no longer in the document: not used")
            return node, ""
        return find_named(doc, default_name, exclude=exclude), default_name

    hints, hint_default = pick(c_hints, hint_name, "hint layer", (ink,) if ink is not None else ())
    reference, _ = pick(c_ref, reference_name, "reference layer", tuple(n for n in (ink, hints) if n is not None))
    if reference is not None and same_node(reference, hints):
        reference = None
    draft, _ = pick(choices.get("draft", roles.Choice()), DEFAULT_DRAFT_LAYER, "draft layer",
                    tuple(n for n in (ink, hints, reference) if n is not None))
    if draft is not None and (same_node(draft, hints) or same_node(draft, reference)):
        draft = None

    if ink is None:
        ink = ink_by_name(doc, exclude=tuple(n for n in (hints, reference, draft) if n is not None))
        how = "by name" if ink is not None else ""
    if ink is None and use_active:
        ink, active_notes = _active_ink(doc, hints, reference, draft)
        notes += active_notes
        how = "active layer"
    if ink is None:
        candidates = [
            n for _, n in iter_layers(doc.rootNode())
            if can_be_ink(n) and not any(same_node(n, o) for o in (hints, reference, draft))
        ]
        if len(candidates) == 1:
            ink, how = candidates[0], "only layer"
        else:
            raise UserError(
                "No ink layer: name the line-art layer 'Ink' (or 'Lineart'), or choose it in the MangaColor docker."
            )

    ink_name = ink.name()
    if ink.type() in MASK_TYPES:
        raise UserError(f"The ink '{ink_name}' is {type_name(ink.type())}: choose the ink (line art) layer itself.")
    if is_own_layer(ink_name, ink.type()):
        raise UserError(f"The ink layer '{ink_name}' is MangaColor's own result layer: choose the ink (line art) layer.")
    if same_node(ink, hints):
        raise UserError(f"'{ink_name}' is chosen both as the ink and as the hint layer: choose another ink or hint layer.")
    if same_node(ink, reference):
        raise UserError(f"'{ink_name}' is chosen both as the ink and as the reference layer: choose another layer.")
    if ink.parentNode() is None:
        raise UserError("The ink is the document's root: choose the ink (line art) layer.")
    if same_node(ink, draft):
        draft = None
    return Roles(Layer(ink), wrap(hints), wrap(reference), how, notes, hint_missing_name=hint_default, draft=wrap(draft))


def _active_ink(doc: Any, hints: Optional[Any], reference: Optional[Any], draft: Optional[Any] = None) -> tuple[Any, list[str]]:
    ink = doc.activeNode()
    if ink is None:
        raise UserError("No active layer: select the ink (line art) layer in the Layers docker, or choose it in the MangaColor docker.")
    name = ink.name()
    notes: list[str] = []
    if ink.type() in MASK_TYPES:
        raise UserError(f"The active node '{name}' is {type_name(ink.type())}: select the ink (line art) layer itself.")
    if is_own_layer(name, ink.type()):
        other = ink_of_own_layer(ink, tuple(n for n in (hints, reference, draft) if n is not None))
        if other is None:
            raise UserError(f"The active layer is MangaColor's own result layer '{name}': select the ink (line art) layer.")
        where = "below" if ink.blendingMode() == MULTIPLY else "above"
        notes.append(f"the active layer is MangaColor's result layer: colorizing the ink layer '{other.name()}' {where} it")
        return other, notes
    if same_node(ink, hints):
        raise UserError(f"The active layer is the hint layer '{name}': select the ink (line art) layer, or choose it in the MangaColor docker.")
    if same_node(ink, reference):
        raise UserError(f"The active layer is the reference layer '{name}': select the ink (line art) layer, or choose it in the MangaColor docker.")
    if same_node(ink, draft):
        raise UserError(f"The active layer is the draft layer '{name}': select the ink (line art) layer, or choose it in the MangaColor docker.")
    return ink, notes


def preview_roles(doc: Any, choices: Optional[dict], hint_name: str, reference_name: str) -> dict[str, Preview]:
    """For the docker's pickers: role -> Preview, never raising."""
    try:
        r = resolve_roles(doc, choices, hint_name, reference_name)
    except Exception as exc:  # the docker must not break; a UserError says why in its first words
        text = str(exc).split(":")[0] if isinstance(exc, UserError) else exc.__class__.__name__
        return {"ink": Preview(None, text), "hints": Preview(None, ""), "reference": Preview(None, ""), "draft": Preview(None, "")}

    def seen(layer: Optional[Layer]) -> Preview:
        return Preview(layer, layer.name if layer is not None else "none")

    return {"ink": seen(r.ink), "hints": seen(r.hints), "reference": seen(r.reference), "draft": seen(r.draft)}


def check_readable_layer(node: Any, role: str, name: str) -> list[str]:
    """Refuse masks and pixel-less layers as ink/hints/reference; note other non-paint layers."""
    t = node.type()
    if t in MASK_TYPES:
        raise UserError(
            f"The {role} '{name}' is {type_name(t)}, not a layer. "
            f"Use a paint layer{' named ' + repr(name) if role != 'ink layer' else ''}."
        )
    if t in NO_PIXEL_TYPES:
        raise UserError(f"The {role} '{name}' is {type_name(t)}, which holds no pixels of its own. Use a paint layer.")
    if t != "paintlayer":
        return [f"the {role} '{name}' is {type_name(t)}: using its rendered pixels"]
    return []
