"""What the plugin's Krita actions (and the docker's tool buttons) do; shared by extension.py and docker.py."""

from __future__ import annotations

import sys
import traceback
from typing import Any, Callable, Optional

from . import tools, ui_model
from .errors import UserError


def _app():
    from krita import Krita

    return Krita.instance()


def _krita_module():
    import krita

    return krita


def colorize() -> None:
    ui_model.instance(_app()).colorize()


def colorize_all() -> None:
    ui_model.instance(_app()).colorize_all()


def _tool(doing: str, fn: Callable[[Any, Any, str], Any], notes: Optional[list] = None) -> None:
    """Run a hint tool (tools.py) on the active document and show its outcome in the docker's status line."""
    app = _app()
    mdl = ui_model.instance(app)
    if mdl.busy:
        return
    try:
        result = fn(app, _krita_module(), mdl.connection.reload_settings().hint_layer)
    except UserError as exc:
        mdl.report(False, str(exc))
        return
    except Exception as exc:  # pragma: no cover - shown, never raised into Krita
        traceback.print_exc(file=sys.stderr)
        mdl.report(False, f"Unexpected error while {doing}: {exc.__class__.__name__}: {exc}")
        return
    mdl.report(True, result.message, notes)
    mdl.roles_changed.emit()


def new_hint_layer() -> None:
    _tool("creating the hint layer", tools.new_hint_layer, ["paint 1-3 px dots of the colours you want; anything not transparent is a hint"])


def export_colorize_mask() -> None:
    _tool("exporting to a colorize mask", tools.export_to_colorize_mask)
