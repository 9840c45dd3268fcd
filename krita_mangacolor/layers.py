"""Krita nodes seen by MangaColor: the `Layer` wrapper, the kinds of nodes, and searches of a document's tree.

Nodes and documents are duck-typed (the real krita module or the tests' mock); nothing here writes to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional

from . import roles
from .errors import UserError
from .settings import RESULT_LAYER_NAME

MASK_TYPES = ("transparencymask", "filtermask", "transformmask", "selectionmask", "colorizemask")
NO_PIXEL_TYPES = ("filterlayer",)  # holds no pixels of its own: its projection is the filtered stack
TYPE_NAMES = {
    "paintlayer": "a paint layer",
    "grouplayer": "a group layer",
    "vectorlayer": "a vector layer",
    "filelayer": "a file layer",
    "filllayer": "a fill layer",
    "clonelayer": "a clone layer",
    "filterlayer": "a filter layer",
    "transparencymask": "a transparency mask",
    "filtermask": "a filter mask",
    "transformmask": "a transform mask",
    "selectionmask": "a selection mask",
    "colorizemask": "a colorize mask",
}
MULTIPLY = "multiply"


def type_name(node_type: str) -> str:
    return TYPE_NAMES.get(node_type, f"a node of type '{node_type or 'unknown'}'")


def is_own_layer(name: str, node_type: str) -> bool:
    """MangaColor's result layer: a paint layer named "MangaColor" (the only kind of layer it ever writes)."""
    return name == RESULT_LAYER_NAME and node_type == "paintlayer"


def can_be_ink(node: Any) -> bool:
    t = node.type()
    return t not in MASK_TYPES and t not in NO_PIXEL_TYPES and t != "grouplayer" and not is_own_layer(node.name(), t)


@dataclass(frozen=True, eq=False)
class Layer:
    """A node playing a role (ink, hints, reference). `node` is the Krita node, for Krita's own calls."""

    node: Any

    @property
    def name(self) -> str:
        return self.node.name()

    @property
    def kind(self) -> str:
        return self.node.type()

    @property
    def uid(self) -> str:
        return roles.node_uid(self.node)



def wrap(node: Any) -> Optional[Layer]:
    return Layer(node) if node is not None else None


def iter_nodes(root: Any) -> Iterator[Any]:
    """Every node below root, top-most first (the order of the Layers docker)."""
    for child in reversed(list(root.childNodes())):
        yield child
        yield from iter_nodes(child)


def iter_layers(root: Any, depth: int = 0) -> Iterator[tuple[int, Any]]:
    """(depth, node) of every layer (masks left out), top-most first: what the role pickers list."""
    for child in reversed(list(root.childNodes())):
        if child.type() in MASK_TYPES:
            continue
        yield depth, child
        yield from iter_layers(child, depth + 1)


def same_node(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    try:
        return a.uniqueId() == b.uniqueId()
    except Exception:  # pragma: no cover - defensive
        return a == b


def find_by_id(doc: Any, uid: Any) -> Optional[Any]:
    for node in iter_nodes(doc.rootNode()):
        if node.uniqueId() == uid:
            return node
    return None


def find_by_uid_text(doc: Any, uid: str) -> Optional[Any]:
    if not uid:
        return None
    for node in iter_nodes(doc.rootNode()):
        if roles.node_uid(node) == uid:
            return node
    return None


def find_layer(doc: Any, name: str, exclude: tuple = ()) -> Optional[Any]:
    """The top-most node with exactly this name (case-sensitive), skipping `exclude` nodes."""
    if not name:
        return None
    for node in iter_nodes(doc.rootNode()):
        if node.name() == name and not any(same_node(node, e) for e in exclude):
            return node
    return None


def find_named(doc: Any, name: str, exclude: tuple = ()) -> Optional[Any]:
    """find_layer, then the same name ignoring case and spaces ('hints', 'HINTS ')."""
    node = find_layer(doc, name, exclude)
    if node is not None or not name:
        return node
    wanted = roles.normalize_name(name)
    for node in iter_nodes(doc.rootNode()):
        if roles.normalize_name(node.name()) == wanted and not any(same_node(node, e) for e in exclude):
            return node
    return None


def index_in_parent(node: Any) -> tuple[Any, list[Any], int]:
    parent = node.parentNode()
    if parent is None:
        raise UserError(f"The layer '{node.name()}' has no parent (is it still in the document?).")
    siblings = list(parent.childNodes())
    for i, sib in enumerate(siblings):
        if same_node(sib, node):
            return parent, siblings, i
    raise UserError(f"The layer '{node.name()}' is no longer in the document.")


def same_document(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    try:
        if a == b:
            return True
    except Exception:  # pragma: no cover - defensive
        pass
    return a is b


def document_is_open(app: Any, doc: Any) -> bool:
    return any(same_document(d, doc) for d in app.documents())


def document_title(doc: Any) -> str:
    try:
        path = str(doc.fileName() or "")
    except Exception:  # pragma: no cover - defensive
        path = ""
    if path:
        return path.replace("\\", "/").rsplit("/", 1)[-1]
    return str(doc.name() or "untitled")
