"""Issues 13 and 15, plugin side: the frames transport (and the JSON fallback), click->layer timings, variants
(thumbnails, pick one, keep one as the Draft layer) against the fake backend speaking the wave-2 contract."""

import zlib

import pytest

from conftest import wait_until
from fake_backend import FILL
from fake_frames import VARIANT_OPTIONS
from helpers import RED, fill, make_page, names, snapshot
from test_model import backend, make_model, run  # noqa: F401  (the fixture)
from krita_mangacolor import frames, timing, wire
from krita_mangacolor.frames import Frame
from krita_mangacolor.request import ColorizeRequest

FILL_BGRA = bytes([FILL[2], FILL[1], FILL[0], 255])


def jobs_posted(backend):
    return [b for meth, path, b in backend.requests if meth == "POST" and path == "/v1/jobs"]


def pixel(layer, x, y):
    return bytes(layer.pixelData(x, y, 1, 1))


def layer_named(doc, name):
    return next(n for n in doc.rootNode().childNodes() if n.name() == name)


def test_alpha_box_and_full_pixels():
    w, h = 9, 6
    img = bytearray(w * h * 4)
    for x, y in ((2, 1), (6, 4), (3, 2)):
        img[(y * w + x) * 4 + 3] = 200
    box = frames.alpha_box(bytes(img), w, h)
    assert box == (2, 1, 5, 4)
    f = Frame("hints", "bgra8", w, h, frames.crop(bytes(img), w, 4, box), box)
    assert frames.full_pixels(f) == bytes(img)
    assert frames.alpha_box(bytes(w * h * 4), w, h) is None
    g = Frame("ink", "gray8", 4, 3, b"\x00\x01", (1, 1, 2, 1))
    assert frames.full_pixels(g) == b"\xff" * 5 + b"\x00\x01" + b"\xff" * 5


def test_frames_body_is_what_the_server_reads():
    """The plugin's frames body goes through the backend's own parser (backend/transport.py) to the same request."""
    pytest.importorskip("fastapi")
    from backend import server

    ink = Frame("ink", "gray8", 4, 3, bytes(range(12)))
    hints = Frame("hints", "bgra8", 4, 3, bytes([1, 2, 3, 255]), (2, 1, 1, 1))
    ref = Frame("reference", "bgra8", 2, 2, bytes([9, 9, 9, 255]) * 4)
    draft = Frame("draft", "bgra8", 4, 3, bytes([5, 6, 7, 255]), (0, 0, 1, 1))
    takes_draft = "draft" in server.ColorizeBody.model_fields  # the draft input lands with the drafting model
    req = ColorizeRequest(ink, hints, [ref], draft=draft if takes_draft else None, options={"a": 1})
    body = wire.encode_body(req, speaks_frames=True)
    assert body.content_type == wire.FRAMES and body.transport == "frames"
    parsed = server.frames_body(body.data)
    assert parsed.ink.size == (4, 3) and parsed.hints.rgba()[1, 2].tolist() == [3, 2, 1, 255]
    assert len(parsed.references) == 1 and parsed.options == {"a": 1}
    if takes_draft:
        assert parsed.draft.rgba()[0, 0].tolist() == [7, 6, 5, 255]
    # on localhost the blobs travel raw (packing costs more than moving them), elsewhere zlib
    local = wire.encode_body(req, speaks_frames=True, url="http://127.0.0.1:8765")
    assert all(f.packed == b"" for f in frames.decode(local.data)[1])
    assert all(f.packed for f in frames.decode(body.data)[1])
    assert server.frames_body(local.data).hints.rgba()[1, 2].tolist() == [3, 2, 1, 255]
    assert wire.is_loopback("http://localhost:1") and wire.is_loopback("http://[::1]:8765") and not wire.is_loopback("http://10.0.0.2:8765")
    req.draft = draft
    # the same request for a backend without frames: JSON with PNGs
    plain = wire.encode_body(req, speaks_frames=False)
    assert plain.content_type == wire.JSON and b'"ink":"iVBOR' in plain.data


def test_frames_round_trip_and_timings(krita, backend):
    backend.frames = True
    doc, ink, hint = make_page(krita)
    before = snapshot(doc)
    mdl, results = make_model(krita, backend.url)
    mdl.connection.check()  # the docker's first look: the backend speaks frames
    wait_until(lambda: mdl.connection.info, 10, "the health answer")
    ok, message = run(mdl, results)
    assert ok, message
    body = jobs_posted(backend)[-1]
    assert body["_transport"] == "frames"
    blobs = {name: (kind, box) for name, kind, box in body["_blobs"]}
    assert blobs["ink"] == ("gray8", [0, 0, 40, 30])
    assert blobs["hints"] == ("bgra8", [5, 5, 17, 12])  # only the painted box of the two dots travels
    layer = layer_named(doc, "MangaColor")
    assert pixel(layer, 10, 10) == FILL_BGRA and pixel(layer, 5, 5) == bytes(RED)
    assert snapshot(doc)[ink.uniqueId()]["pixels"] == before[ink.uniqueId()]["pixels"]
    t = mdl.timings
    assert t["transport"] == "frames" and t["total"] > 0 and 0 <= t["client_share"] < 1
    assert set(t) >= {"export", "encode", "connect", "upload_server", "download", "decode", "import", "server", "bytes_up", "bytes_down"}
    assert t["server"] == {"total": 0.01} and "click->layer" in timing.describe(t)
    entry = mdl.history.entries()[0]
    assert entry.bgra_z is not None and zlib.decompress(entry.bgra_z)[:4] == FILL_BGRA
    # Restore puts the frames result back from the history
    layer.remove()
    results.clear()
    mdl.restore(entry.id)
    wait_until(lambda: results, 10, "the restore")
    assert results[-1][0], results[-1][1]
    assert pixel(layer_named(doc, "MangaColor"), 5, 5) == bytes(RED)


def test_json_when_the_backend_has_no_frames(krita, backend):
    doc, ink, hint = make_page(krita)
    backend.frames = True
    mdl, results = make_model(krita, backend.url)
    assert run(mdl, results)[0]
    # the backend was replaced by one without frames: the inputs were made as frames, they go up as PNG
    mdl.connection.check()
    wait_until(lambda: mdl.connection.info and mdl.connection.info.get("frames"), 10, "the health answer")
    backend.frames = False
    results.clear()
    ok, message = run(mdl, results)
    assert ok, message
    body = jobs_posted(backend)[-1]
    assert "_transport" not in body and body["ink"].startswith("iVBOR") and body["hints"].startswith("iVBOR")
    assert mdl.timings["transport"] == "json"
    assert pixel(layer_named(doc, "MangaColor"), 5, 5) == bytes(RED)


def variant_model(krita, backend, n=3):
    backend.options = backend.options + [dict(o) for o in VARIANT_OPTIONS]
    mdl, results = make_model(krita, backend.url)
    mdl.connection.check()
    wait_until(lambda: any(s.name == "variants" for s in mdl.options.specs), 10, "the options")
    mdl.options.set("variants", n)
    mdl.options.set("seed", 5)
    return mdl, results


@pytest.mark.parametrize("speaks_frames", [True, False])
def test_variants_pick_and_keep_as_draft(krita, backend, speaks_frames):
    backend.frames = speaks_frames
    doc, ink, hint = make_page(krita)
    mdl, results = variant_model(krita, backend)
    ok, message = run(mdl, results)
    assert ok, message
    assert [v.number for v in mdl.variants] == [1, 2, 3] and mdl.chosen_variant == 1
    assert all(v.thumb.width() <= 96 and not v.thumb.isNull() for v in mdl.variants)
    first = layer_named(doc, "MangaColor")
    assert pixel(first, 10, 10) == FILL_BGRA
    v2 = mdl.variants[1].bgra()[(10 * 40 + 10) * 4 : (10 * 40 + 11) * 4]
    assert v2 != FILL_BGRA
    # pick variant 2: the MangaColor layer is replaced (one undoable change), the user's layers untouched
    before = snapshot(doc)
    results.clear()
    mdl.pick_variant(2)
    wait_until(lambda: results, 10, "the pick")
    assert results[-1][0] and "Variant 2 of 3" in results[-1][1]
    assert names(doc.rootNode()) == ["Background", "Hints", "MangaColor", "Ink"]
    assert pixel(layer_named(doc, "MangaColor"), 10, 10) == v2 and mdl.chosen_variant == 2
    after = snapshot(doc)
    for node in (ink, hint):
        assert after[node.uniqueId()] == before[node.uniqueId()]
    doc.undo()
    assert names(doc.rootNode()) == ["Background", "Hints", "Ink"]
    doc.undo()
    assert pixel(layer_named(doc, "MangaColor"), 10, 10) == FILL_BGRA  # the first variant is back
    # keep variant 2 as draft: a Draft layer above the result, below the ink
    results.clear()
    mdl.keep_as_draft(2)
    wait_until(lambda: results, 10, "keep as draft")
    assert results[-1][0], results[-1][1]
    assert names(doc.rootNode()) == ["Background", "Hints", "MangaColor", "Draft", "Ink"]
    draft = layer_named(doc, "Draft")
    assert pixel(draft, 10, 10) == v2
    # the colourist steers it with a stroke; the next run sends the draft, and its result goes under the Draft
    fill(draft, 30, 20, 3, 3, (0, 255, 0, 255))
    results.clear()
    ok, message = run(mdl, results)
    assert ok, message
    body = jobs_posted(backend)[-1]
    assert body.get("draft")
    assert names(doc.rootNode()) == ["Background", "Hints", "MangaColor", "Draft", "Ink"]
    new = layer_named(doc, "MangaColor")
    assert pixel(new, 31, 21) == bytes([0, 255, 0, 255]) and pixel(new, 10, 10) == v2  # the fake paints the draft
    assert len(mdl.variants) == 3 and mdl.chosen_variant == 1
    # keep as draft again: the Draft is replaced in place (same name, same place), undoable
    draft_id = draft.uniqueId()
    results.clear()
    mdl.keep_as_draft(3)
    wait_until(lambda: results, 10, "keep as draft again")
    assert results[-1][0] and "replaced the old one" in results[-1][1]
    assert names(doc.rootNode()) == ["Background", "Hints", "MangaColor", "Draft", "Ink"]
    assert layer_named(doc, "Draft").uniqueId() != draft_id
    doc.undo()
    doc.undo()
    assert layer_named(doc, "Draft").uniqueId() == draft_id


def test_variant_strip_in_the_docker(krita, backend, qapp):
    from krita_mangacolor.widgets import MangaColorWidget

    doc, ink, hint = make_page(krita)
    mdl, results = variant_model(krita, backend, n=2)
    widget = MangaColorWidget(mdl)
    strip = widget.variants
    assert not strip.isVisibleTo(widget) and not strip.buttons
    assert run(mdl, results)[0]
    assert [b.objectName() for b in strip.buttons] == ["mangacolor_variant_1", "mangacolor_variant_2"]
    assert strip.isVisibleTo(widget) and strip.buttons[0].isChecked() and strip.keep_button.isEnabled()
    results.clear()
    strip.buttons[1].click()
    wait_until(lambda: results, 10, "the pick")
    assert mdl.chosen_variant == 2 and strip.buttons[1].isChecked() and not strip.buttons[0].isChecked()
    results.clear()
    strip.keep_button.click()
    wait_until(lambda: results, 10, "keep as draft")
    assert "Draft" in names(doc.rootNode())
    # a new run clears the old thumbnails (variants=1 now: none come back)
    mdl.options.set("variants", 1)
    results.clear()
    mdl.colorize()
    assert not strip.buttons and not strip.isVisibleTo(widget)
    wait_until(lambda: results, 10, "the run")
    assert not mdl.variants and not strip.buttons
    widget.deleteLater()


def test_polls_start_fast(krita, backend):
    """A job is polled within ~10 % of its wait: the first polls come after 40 ms, not the poll interval."""
    from krita_mangacolor import backend_jobs, ui_model as m

    make_page(krita)
    backend.job_seconds = 0.3
    mdl = m.ColorizeModel(krita, settings_loader=make_model(krita, backend.url)[0].connection._load_settings, poll_ms=500)
    results = []
    mdl.finished.connect(lambda ok, msg: results.append((ok, msg)))
    mdl.colorize()
    wait_until(lambda: results, 10, "the job")
    assert results[-1][0], results[-1][1]
    assert mdl.stats["server_wait"] < 0.3 + 0.3, mdl.stats  # with 500 ms polls it would be >= 0.5
    assert backend_jobs.FAST_POLL_MS < 100


def test_upload_is_not_paced_by_a_busy_gui_loop(krita, backend):
    """Qt 5 feeds a POST body to its HTTP thread 16 KB per trip through the requesting thread's event loop: the
    upload runs in a thread of its own (upload.py), so an 8 MB page leaves at once even when the GUI loop turns
    only every 20 ms (as Krita's does while it repaints a big canvas)."""
    import os
    import time

    from krita_mangacolor.client import Client

    if os.environ.get("MANGACOLOR_NO_THREADS") == "1":
        pytest.skip("MANGACOLOR_NO_THREADS=1 uploads from the GUI thread (debugging)")
    from krita_mangacolor.qt import QApplication, QEventLoop

    client = Client(lambda: backend.url, lambda: backend.token)
    got, t0 = [], time.monotonic()
    body = b'{"options": {"no_such_option": 1}, "pad": "' + b"x" * 8_000_000 + b'"}'
    client.submit(body, lambda r: got.append((time.monotonic() - t0, r)))
    while not got and time.monotonic() - t0 < 30:
        QApplication.processEvents(QEventLoop.AllEvents, 5)
        time.sleep(0.02)
    assert got and got[0][1].status == 400 and "no_such_option" in got[0][1].error  # the answer came back
    assert got[0][0] < 2.0, got[0][0]  # through the GUI thread's loop, 16 KB a turn: ~10 s
