"""What the plugin's Krita actions (and the docker's tool buttons) do; shared by extension.py and docker.py."""

from __future__ import annotations

import sys
import traceback

from . import model, tools
from .errors import UserError


def _app():
    from krita import Krita

    return Krita.instance()


def _krita_module():
    import krita

    return krita


def colorize() -> None:
    model.instance(_app()).colorize()


def colorize_all() -> None:
    model.instance(_app()).colorize_all()


def new_hint_layer() -> None:
    app = _app()
    mdl = model.instance(app)
    if mdl.busy:
        return
    try:
        result = tools.new_hint_layer(app, _krita_module(), mdl.reload_settings().hint_layer)
    except UserError as exc:
        mdl.report(False, str(exc))
        return
    except Exception as exc:  # pragma: no cover - shown, never raised into Krita
        traceback.print_exc(file=sys.stderr)
        mdl.report(False, f"Unexpected error while creating the hint layer: {exc.__class__.__name__}: {exc}")
        return
    mdl.report(True, result.message, ["paint 1-3 px dots of the colours you want; anything not transparent is a hint"])
    mdl.roles_changed.emit()


def export_colorize_mask() -> None:
    app = _app()
    mdl = model.instance(app)
    if mdl.busy:
        return
    try:
        result = tools.export_to_colorize_mask(app, _krita_module(), mdl.reload_settings().hint_layer)
    except UserError as exc:
        mdl.report(False, str(exc))
        return
    except Exception as exc:  # pragma: no cover
        traceback.print_exc(file=sys.stderr)
        mdl.report(False, f"Unexpected error while exporting to a colorize mask: {exc.__class__.__name__}: {exc}")
        return
    mdl.report(True, result.message)
    mdl.roles_changed.emit()
