"""What the docker does with results already received: Restore one from the history, pick one of the last
run's variants as the result layer, keep a variant as the Draft layer (issue 13).

Each is a short run of the model (ui_model.ColorizeModel: its run number, status line and worker): the pixels
are prepared in the worker thread, the document is changed on the GUI thread, and one undoable change is made:
picking a variant replaces the MangaColor layer exactly as a new result does (result_layer.apply_result); the
user's layers are untouched. Keep as draft writes the Draft layer (draft_layer.py), which is the colorist's.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from .draft_layer import write_draft
from .layers import document_is_open
from .result_layer import Prepared, apply_result, prepare_result
from .result_reader import Variant, prepare_entry


def restore(model: Any, entry_id: int) -> None:
    """Put a result from the history back as the MangaColor layer of its document."""
    from . import ui_model as m

    if model.busy:
        return
    entry = model.history.get(entry_id)
    run = model._begin()
    if entry is None:
        model._fail("That result is no longer in the history.")
        return
    if not document_is_open(model.app, entry.document):
        model._fail(f"The document '{entry.doc_name}' of result #{entry.id} is no longer open.")
        return
    target = entry.target()
    model._set(m.APPLYING, f"Restoring result #{entry.id}...", -1)

    def applied_ok(prepared: Prepared) -> None:
        applied = apply_result(model.app, target, prepared)
        model.last_result = applied
        model.notes = list(applied.notes)
        model._end(True, m.DONE, applied.describe(target, f"Restored result #{entry.id}.", time.monotonic() - model._started_at))

    model._in_worker(run, lambda: prepare_entry(target, entry), applied_ok, "decode")


def _variant(model: Any, number: int) -> Optional[Variant]:
    return next((v for v in model.variants if v.number == number), None)


def _start(model: Any, number: int, doing: str) -> tuple:
    """Begin a run on variant `number`: (run, variant, target), or (None, None, None) after saying why not."""
    from . import ui_model as m

    if model.busy:
        return None, None, None
    variant, target = _variant(model, number), model.variants_target
    run = model._begin()
    if variant is None or target is None:
        model._fail(f"Variant {number} is no longer kept: the variants of a run last until the next Colorize.")
        return None, None, None
    if not document_is_open(model.app, target.document):
        model._fail("The document of these variants is no longer open.")
        return None, None, None
    model._set(m.APPLYING, f"{doing} variant {number}...", -1)
    return run, variant, target


def pick_variant(model: Any, number: int) -> None:
    """Variant `number` of the last run becomes the MangaColor layer (replacing the one there: undoable)."""
    from . import ui_model as m

    run, variant, target = _start(model, number, "Putting in")
    if variant is None:
        return

    def applied_ok(prepared: Prepared) -> None:
        applied = apply_result(model.app, target, prepared)
        model.last_result = applied
        model.chosen_variant = number
        model.notes = list(applied.notes)
        tail = f"Variant {number} of {len(model.variants)}."
        model._end(True, m.DONE, applied.describe(target, tail, time.monotonic() - model._started_at))

    region = target.region
    model._in_worker(run, lambda: prepare_result(target, variant.bgra(), region.width, region.height), applied_ok, "decode")


def keep_as_draft(model: Any, number: int) -> None:
    """Variant `number` becomes the Draft layer: steer it with a few strokes and press Colorize again."""
    from . import ui_model as m

    run, variant, target = _start(model, number, "Keeping as draft")
    if variant is None:
        return

    def written(prepared: Prepared) -> None:
        message = write_draft(model.app, target, prepared)
        model.roles_changed.emit()
        model._end(True, m.DONE, f"Variant {number} {message}")

    region = target.region
    model._in_worker(run, lambda: prepare_result(target, variant.bgra(), region.width, region.height), written, "decode")
