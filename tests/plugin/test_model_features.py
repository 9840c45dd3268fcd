"""Options from the backend, the result history, a backend dying mid-job, and all open documents."""

import os
import signal
import sys
import time

from conftest import pump, wait_until
from helpers import BLUE, fill, make_page, names, snapshot
from krita_mangacolor import ui_model as m
from test_model import HERE, backend, free_port, make_model, run, write_token  # noqa: F401  (fixture)


def test_options_follow_the_backend_and_are_sent(krita, backend):
    make_page(krita)
    mdl, results = make_model(krita, backend.url)
    changed = []
    mdl.options_changed.connect(lambda: changed.append(1))
    mdl.connection.check()
    wait_until(lambda: mdl.options.specs, 10, "the options")
    assert [s.name for s in mdl.options.specs] == ["reference_mode", "working_size", "keep_white", "flat_regions"]
    assert changed
    mdl.options.set("working_size", 512)
    mdl.options.set("keep_white", False)
    mdl.options.values["removed_in_this_backend"] = 3  # saved by an older backend: never sent
    ok, message = run(mdl, results)
    assert ok, message
    sent = [b for meth, path, b in backend.requests if path == "/v1/jobs"][-1]["options"]
    assert sent == {"reference_mode": "histogram", "working_size": 512, "keep_white": False, "flat_regions": 0.6}
    assert krita.readSetting("mangacolor", "options", "")  # remembered
    assert mdl.history.entries()[0].options == {"working_size": 512, "keep_white": False}
    # a new option appears in the backend: the model picks it up at the next run and sends its default
    backend.options.append({"name": "seed", "type": "int", "min": 0, "max": 99, "default": 7, "help": "Random seed."})
    results.clear()
    ok, message = run(mdl, results)
    assert ok, message
    assert [s.name for s in mdl.options.specs][-1] == "seed"
    assert [b for meth, path, b in backend.requests if path == "/v1/jobs"][-1]["options"]["seed"] == 7


def test_backend_without_options_endpoint_gets_no_options(krita, backend):
    make_page(krita)
    backend.options = None
    mdl, results = make_model(krita, backend.url)
    ok, message = run(mdl, results)
    assert ok, message
    assert [b for meth, path, b in backend.requests if path == "/v1/jobs"][-1]["options"] == {}


def test_history_keeps_results_and_restores_one(krita, backend):
    doc, ink, hint = make_page(krita)
    mdl, results = make_model(krita, backend.url)
    ok, _ = run(mdl, results)
    assert ok
    layer = lambda: [n for n in doc.rootNode().childNodes() if n.name() == "MangaColor"][0]  # noqa: E731
    first = bytes(layer().pixelData(0, 0, 40, 30))
    fill(hint, 10, 10, 6, 6, BLUE)  # repaint the hints: the second result differs
    results.clear()
    ok, _ = run(mdl, results)
    assert ok
    second = bytes(layer().pixelData(0, 0, 40, 30))
    assert second != first
    entries = mdl.history.entries()
    assert [e.id for e in entries] == [2, 1] and entries[0].doc_name == "page" and entries[0].where.ink_name == "Ink"
    results.clear()
    mdl.restore(1)
    wait_until(lambda: results, 10, "the restore")
    ok, message = results[-1]
    assert ok and "Restored result #1" in message and "replaced" in message
    assert bytes(layer().pixelData(0, 0, 40, 30)) == first
    assert names(doc.rootNode()) == ["Background", "Hints", "MangaColor", "Ink"]
    assert len(mdl.history) == 2  # restoring adds nothing


def test_history_is_bounded(krita):
    from krita_mangacolor import history
    from krita_mangacolor.geometry import Rect, Target

    where = Target(None, 1, "Ink", Rect(0, 0, 4, 4), (4, 4), ("RGBA", "U8"))
    h = history.History(max_entries=5, max_bytes=100)
    for i in range(7):
        h.add(where, "d", b"x" * 10)
    assert [e.id for e in h.entries()] == [7, 6, 5, 4, 3]
    h.add(where, "d", b"x" * 95)
    assert len(h) == 1  # over the byte budget: the big newest one stays alone


def test_restore_of_a_closed_document(krita, backend):
    doc, ink, hint = make_page(krita)
    mdl, results = make_model(krita, backend.url)
    assert run(mdl, results)[0]
    krita.closeDocument(doc)
    results.clear()
    mdl.restore(1)
    wait_until(lambda: results, 5, "the answer")
    assert results[-1] == (False, "The document 'page' of result #1 is no longer open.")


def test_selection_result_restored_with_its_mask(krita, backend):
    import mock_krita

    doc, ink, hint = make_page(krita)
    sel = mock_krita.Selection(doc)
    sel.select(2, 2, 10, 10, 255)
    sel.select(2, 2, 3, 3, 0)
    doc.setSelection(sel)
    mdl, results = make_model(krita, backend.url)
    assert run(mdl, results)[0]
    doc.setSelection(None)
    results.clear()
    assert run(mdl, results)[0]  # the whole page
    results.clear()
    mdl.restore(1)
    wait_until(lambda: results, 10, "the restore")
    layer = [n for n in doc.rootNode().childNodes() if n.name() == "MangaColor"][0]
    assert bytes(layer.pixelData(8, 8, 1, 1))[3] == 255 and bytes(layer.pixelData(3, 3, 1, 1))[3] == 0
    assert bytes(layer.pixelData(20, 20, 1, 1))[3] == 0


def test_backend_killed_mid_job_then_the_next_colorize_starts_a_new_one(krita, tmp_path):
    """Issue 5's fault: kill -9 of the backend MangaColor started, while a job runs."""
    write_token(tmp_path)
    doc, ink, hint = make_page(krita)
    before = snapshot(doc)
    port = free_port()
    cmd = [sys.executable, str(HERE / "fake_backend.py"), "--port", str(port), "--job-seconds", "30"]
    mdl, results = make_model(krita, f"http://127.0.0.1:{port}", command=cmd)
    try:
        mdl.colorize()
        wait_until(lambda: mdl.state == m.RUNNING, 30, "the job to run")
        first_pid = mdl.connection.server.pid
        os.kill(first_pid, signal.SIGKILL)
        wait_until(lambda: results, 10, "the failure")
        ok, message = results[-1]
        assert not ok
        assert "stopped while colorizing" in message and "Nothing was changed" in message and "Press Colorize" in message
        assert snapshot(doc) == before
        assert not mdl.busy
        # the next Colorize notices the dead server and starts a new one (a quick job this time)
        cmd[-1] = "0"
        results.clear()
        ok, message = run(mdl, results, timeout=30)
        assert ok, message
        assert mdl.connection.server.running and mdl.connection.server.pid != first_pid
        assert names(doc.rootNode()) == ["Background", "Hints", "MangaColor", "Ink"]
    finally:
        mdl.shutdown()


def test_external_backend_gone_mid_job(krita, backend):
    doc, ink, hint = make_page(krita)
    before = snapshot(doc)
    backend.polls_until_done = 10_000
    mdl, results = make_model(krita, backend.url)
    mdl.colorize()
    wait_until(lambda: mdl.state == m.RUNNING, 10, "running")
    backend.stop()
    wait_until(lambda: results, 15, "the failure")
    ok, message = results[-1]
    assert not ok and "stopped while colorizing" in message and "Nothing was changed" in message
    assert snapshot(doc) == before


def test_colorize_all_open_documents(krita, backend):
    d1, _, _ = make_page(krita)
    d2 = krita.createDocument(40, 30, "no ink here", "RGBA", "U8")
    d2.add_layer("Sketch")
    d2.add_layer("Flats")
    d3, _, _ = make_page(krita)
    d3._name = "page 3"
    from krita_mangacolor import roles

    lines = d3.add_layer("Pencils")
    fill(lines, 1, 1, 30, 2)
    roles.set_choice(d3, "ink", roles.Choice.layer(lines))  # d3 remembers its own ink choice
    mdl, results = make_model(krita, backend.url)
    seen = []
    mdl.changed.connect(lambda: seen.append(mdl.status))
    mdl.colorize_all()
    assert mdl.busy
    wait_until(lambda: results, 30, "the batch")
    ok, message = results[-1]
    assert len(results) == 1  # one answer for the whole batch
    assert ok, message
    assert message.startswith("Colorized 2 of 3 open documents")
    assert "Skipped: 'no ink here' (no ink layer)" in message
    assert names(d1.rootNode()) == ["Background", "Hints", "MangaColor", "Ink"]
    assert "MangaColor" not in names(d2.rootNode())
    assert names(d3.rootNode()) == ["Background", "Hints", "Ink", "MangaColor", "Pencils"]
    assert any(s.startswith("[3/3] page 3:") for s in seen)
    assert not mdl.busy and len(mdl.history) == 2


def test_cancel_stops_the_whole_batch(krita, backend):
    d1, _, _ = make_page(krita)
    d2, _, _ = make_page(krita)
    before = snapshot(d2)
    backend.polls_until_done = 10_000
    mdl, results = make_model(krita, backend.url)
    mdl.colorize_all()
    wait_until(lambda: mdl.state == m.RUNNING, 10, "running")
    mdl.cancel()
    assert results[-1][0] is False and "0 of 2" in results[-1][1] and not mdl.busy
    pump(0.2)
    assert snapshot(d2) == before and "MangaColor" not in names(d1.rootNode())


def test_gui_thread_is_free_while_the_worker_encodes(krita, backend):
    """The PNG work runs in a thread: the event loop keeps turning while a bigger page is prepared."""
    from krita_mangacolor.qt import QTimer

    doc = krita.createDocument(1200, 900, "big", "RGBA", "U8")
    ink = doc.add_layer("Ink")
    fill(ink, 0, 0, 1200, 3)
    fill(ink, 0, 0, 3, 900)
    doc.setActiveNode(ink)
    krita.setActiveDocument(doc)
    mdl, results = make_model(krita, backend.url)
    ticks = []
    t = QTimer()
    t.timeout.connect(lambda: ticks.append(time.monotonic()))
    t.start(5)
    mdl.colorize()
    wait_until(lambda: results, 60, "the job")
    t.stop()
    assert results[-1][0], results[-1][1]
    assert len(ticks) > 10
    assert mdl.stats["encode"] > 0 and mdl.stats["decode"] > 0
