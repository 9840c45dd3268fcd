"""The job lifecycle over real Qt networking (QNetworkAccessManager) against a fake backend."""

import socket
import sys
from pathlib import Path

import pytest

from conftest import pump, wait_until
from fake_backend import FILL, FakeBackend
from helpers import make_page, names, snapshot
from krita_mangacolor import settings, ui_model as m

HERE = Path(__file__).resolve().parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_token(tmp_path, token="secret-token"):
    d = tmp_path / "config" / "mangacolor"
    d.mkdir(parents=True, exist_ok=True)
    (d / "token").write_text(token + "\n")


@pytest.fixture
def backend(tmp_path):
    write_token(tmp_path)
    b = FakeBackend().start()
    yield b
    b.stop()


def make_model(krita, url, command=None, timeout=20.0, tmp_path=None):
    def load():
        s = settings.load_settings(krita.readSetting, env={}, file_path=Path("/nonexistent/backend_config.json"))
        s.url = url
        s.server_command = list(command or [])
        s.cwd = str(HERE) if command else ""
        s.startup_timeout = timeout
        return s

    mdl = m.ColorizeModel(krita, settings_loader=load, poll_ms=20)
    results = []
    mdl.finished.connect(lambda ok, msg: results.append((ok, msg)))
    return mdl, results


def run(mdl, results, timeout=20):
    mdl.colorize()
    wait_until(lambda: results, timeout, "the job to finish")
    return results[-1]


def test_colorize_end_to_end(krita, backend):
    doc, ink, hint = make_page(krita)
    before = snapshot(doc)
    mdl, results = make_model(krita, backend.url)
    states = []
    mdl.changed.connect(lambda: states.append(mdl.state))
    ok, message = run(mdl, results)
    assert ok, message
    assert "added layer 'MangaColor' beneath 'Ink'" in message
    assert names(doc.rootNode()) == ["Background", "Hints", "MangaColor", "Ink"]
    layer = doc.rootNode().childNodes()[2]
    assert bytes(layer.pixelData(10, 10, 1, 1)) == bytes([FILL[2], FILL[1], FILL[0], 255])
    assert bytes(layer.pixelData(5, 5, 1, 1)) == bytes([0, 0, 255, 255])  # the red hint, BGRA
    assert ink.blendingMode() == "multiply"
    after = snapshot(doc)
    assert after[ink.uniqueId()]["pixels"] == before[ink.uniqueId()]["pixels"]
    assert after[hint.uniqueId()] == before[hint.uniqueId()]
    # the requests: health without token, then submit, polls, result
    paths = [(meth, path) for meth, path, _ in backend.requests]
    assert paths[:3] == [("GET", "/v1/health"), ("GET", "/v1/options"), ("POST", "/v1/jobs")]
    assert paths[-1][1].endswith("/result")
    body = backend.requests[2][2]
    assert set(body) == {"ink", "hints", "references", "options"} and body["hints"] and body["references"] == []
    # every option the backend offers, at its default
    assert body["options"] == {"reference_mode": "histogram", "working_size": 768, "keep_white": True, "flat_regions": 0.6}
    assert "one undo step" in message or "2 undo steps" in message
    assert len(mdl.history) == 1 and set(mdl.stats) >= {"gui_read", "encode", "gui_submit", "decode", "gui_apply", "total"}
    for st in ("preparing", "connecting", "submitting", "running", "downloading", "applying", "done"):
        assert st in states
    assert mdl.state == m.DONE and not mdl.busy
    assert "no hint layer" not in " ".join(mdl.notes)
    assert "fake-1" in mdl.connection.status


def test_backend_down_without_command(krita):
    make_page(krita)
    url = f"http://127.0.0.1:{free_port()}"
    mdl, results = make_model(krita, url)
    ok, message = run(mdl, results)
    assert not ok
    assert f"The MangaColor backend is not running at {url}" in message
    assert f"python -m backend serve --port {url.rsplit(':', 1)[1]}" in message
    assert mdl.state == m.ERROR


def test_backend_down_mentions_env(krita, monkeypatch):
    make_page(krita)
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MANGACOLOR_URL", url)
    monkeypatch.setattr(settings, "config_file_path", lambda: Path("/nonexistent.json"))
    mdl = m.ColorizeModel(krita, poll_ms=20)
    results = []
    mdl.finished.connect(lambda ok, msg: results.append((ok, msg)))
    ok, message = run(mdl, results)
    assert not ok and "set by the MANGACOLOR_URL environment variable" in message


def test_plugin_starts_the_server(krita, tmp_path):
    write_token(tmp_path)
    doc, ink, hint = make_page(krita)
    port = free_port()
    cmd = [sys.executable, str(HERE / "fake_backend.py"), "--port", str(port)]
    mdl, results = make_model(krita, f"http://127.0.0.1:{port}", command=cmd)
    states = []
    mdl.changed.connect(lambda: states.append(mdl.state))
    try:
        ok, message = run(mdl, results, timeout=30)
        assert ok, message
        assert m.STARTING in states
        assert "MangaColor" in names(doc.rootNode())
        assert "started by MangaColor" in mdl.connection.status
        assert mdl.connection.server.running
    finally:
        mdl.shutdown()
    assert not mdl.connection.server.running


def test_server_that_cannot_start(krita, tmp_path):
    make_page(krita)
    mdl, results = make_model(krita, f"http://127.0.0.1:{free_port()}", command=[str(tmp_path / "no-python"), "-m", "backend"])
    ok, message = run(mdl, results)
    assert not ok and "Could not start the MangaColor backend" in message and "does not exist" in message


def test_server_that_exits_at_once_shows_its_output(krita):
    make_page(krita)
    cmd = [sys.executable, str(HERE / "fake_backend.py"), "--port", "1", "--exit-at-once"]
    mdl, results = make_model(krita, f"http://127.0.0.1:{free_port()}", command=cmd)
    ok, message = run(mdl, results)
    assert not ok
    assert "stopped while starting (exit code 3)" in message and "cannot load the model weights" in message


def test_server_error_is_shown_verbatim(krita, backend):
    make_page(krita)
    backend.reject = (400, "hints are 10x10 but the ink is 40x30; they must be the same size")
    mdl, results = make_model(krita, backend.url)
    ok, message = run(mdl, results)
    assert not ok and message.endswith("hints are 10x10 but the ink is 40x30; they must be the same size")


def test_busy_backend(krita, backend):
    make_page(krita)
    backend.reject = (503, "busy: 4 job(s) already waiting")
    mdl, results = make_model(krita, backend.url)
    ok, message = run(mdl, results)
    assert not ok and message == "The backend is busy: busy: 4 job(s) already waiting"


def test_failed_job_is_shown_verbatim_and_nothing_changes(krita, backend):
    doc, ink, hint = make_page(krita)
    before = snapshot(doc)
    backend.fail_with = "RuntimeError: out of memory: try a smaller working_size"
    mdl, results = make_model(krita, backend.url)
    ok, message = run(mdl, results)
    assert not ok and message == "The backend failed: RuntimeError: out of memory: try a smaller working_size"
    assert snapshot(doc) == before


def test_wrong_token(krita, backend, tmp_path):
    make_page(krita)
    write_token(tmp_path, "not-the-token")
    mdl, results = make_model(krita, backend.url)
    ok, message = run(mdl, results)
    assert not ok and "missing or wrong access token" in message and "mangacolor/token" in message


def test_cancel_deletes_the_job_and_changes_nothing(krita, backend):
    doc, ink, hint = make_page(krita)
    before = snapshot(doc)
    backend.polls_until_done = 10_000
    mdl, results = make_model(krita, backend.url)
    mdl.colorize()
    wait_until(lambda: mdl.state == m.RUNNING, 15, "running")
    job_id = mdl.jobs.job_id
    mdl.cancel()
    assert results[-1][0] is False and mdl.state == m.CANCELLED and not mdl.busy
    wait_until(lambda: ("DELETE", f"/v1/jobs/{job_id}") in [(a, b) for a, b, _ in backend.requests], 10, "DELETE")
    wait_until(lambda: backend.jobs[job_id]["status"] == "cancelled", 5, "cancelled on the backend")
    n = len(backend.requests)
    pump(0.3)  # no more polling after cancel
    assert len(backend.requests) == n
    assert snapshot(doc) == before


def test_cancel_during_upload_cancels_the_job_the_backend_made(krita, backend):
    doc, ink, hint = make_page(krita)
    before = snapshot(doc)
    backend.post_delay = 0.5
    backend.polls_until_done = 10_000
    mdl, results = make_model(krita, backend.url)
    mdl.colorize()
    wait_until(lambda: mdl.state == m.SUBMITTING, 10, "the upload")
    mdl.cancel()
    assert mdl.state == m.CANCELLED
    wait_until(lambda: backend.jobs and any(meth == "DELETE" for meth, _, _ in backend.requests), 10, "DELETE")
    job_id = next(iter(backend.jobs))
    assert ("DELETE", f"/v1/jobs/{job_id}") in [(a, b) for a, b, _ in backend.requests]
    assert backend.jobs[job_id]["status"] == "cancelled"
    # a new run right after is not confused by the old one's answers
    backend.post_delay, backend.polls_until_done = 0.0, 2
    results.clear()
    ok, message = run(mdl, results)
    assert ok, message
    assert names(doc.rootNode()) == ["Background", "Hints", "MangaColor", "Ink"]
    assert before[ink.uniqueId()]["pixels"] == snapshot(doc)[ink.uniqueId()]["pixels"]


def test_result_of_the_wrong_size_is_not_applied(krita, backend):
    doc, ink, hint = make_page(krita)
    backend.result_size = (10, 10)
    mdl, results = make_model(krita, backend.url)
    ok, message = run(mdl, results)
    assert not ok and "10x10" in message
    assert "MangaColor" not in names(doc.rootNode())


def test_input_errors_never_reach_the_network(krita, backend):
    mdl, results = make_model(krita, backend.url)  # no document open
    ok, message = run(mdl, results)
    assert not ok and "No document is open" in message and backend.requests == []


def test_check_backend_line(krita, backend):
    mdl, _ = make_model(krita, backend.url)
    mdl.connection.check()
    wait_until(lambda: "fake-1" in mdl.connection.status, 10, "health")
    down, _ = make_model(krita, f"http://127.0.0.1:{free_port()}")
    down.connection.check()
    wait_until(lambda: "not running" in down.connection.status, 10, "health")
    assert "python -m backend serve" in down.connection.status
