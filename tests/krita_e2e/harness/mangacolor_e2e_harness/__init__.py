"""Test-only Krita plugin: drives the real MangaColor docker inside a real Krita, then exits Krita.

Started by tests/krita_e2e/test_real_krita.py with:
  MANGACOLOR_E2E_RESULT  path of the JSON report to write
  MANGACOLOR_URL         the real backend started by the test (read by the MangaColor plugin)
Scenarios, in order:
  1. backend down: MANGACOLOR_URL pointed at a dead port, no server command -> a clear error, no change;
  2. RGBA page (Background paper / Hints dots / Ink panels on top, the ink active): click Colorize ->
     'MangaColor' directly beneath the ink, ink Multiply, ink and hints byte-identical, colour at hints;
  3. the action (Ctrl+Shift+M's action triggered) again -> the own layer replaced in place;
  4. with a selection -> pixels outside the selection transparent;
  5. GRAYA page whose only layer is the ink -> an RGB result layer beneath the restacked ink;
  6. autostart: no server at a new URL, a server command saved in Krita's settings -> the plugin starts
     the real backend itself (QProcess), waits for /v1/health, colorizes; then stops it.
The report lists every check; Krita is left with os._exit (never waits on dialogs).
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import os
import socket
import sys
import time
import traceback
import urllib.request

from krita import Krita
from PyQt5.QtCore import QEventLoop, QTimer
from PyQt5.QtWidgets import QApplication, QDockWidget, QLabel, QPushButton

RESULT_PATH = os.environ.get("MANGACOLOR_E2E_RESULT", "")
WATCHDOG_S = float(os.environ.get("MANGACOLOR_E2E_WATCHDOG", "420"))
JOB_TIMEOUT_S = float(os.environ.get("MANGACOLOR_E2E_JOB_TIMEOUT", "240"))

W, H = 400, 300
PANELS = [(10, 10, 185, 135), (205, 10, 185, 135), (10, 155, 185, 135), (205, 155, 185, 135)]
LINE = 3
HINTS = [  # (x, y, (r, g, b)): one dot in each panel
    (102, 77, (230, 30, 30)),
    (297, 77, (30, 60, 230)),
    (102, 222, (30, 180, 40)),
    (297, 222, (240, 200, 20)),
]
DOT = 8
HUE_TOLERANCE_DEG = 30.0
MIN_SATURATION = 0.15

report = {"checks": [], "status": {}, "notes": {}, "colour": [], "error": None}


def log(msg):
    print(f"[e2e harness] {msg}", flush=True)


def check(name, ok, detail=""):
    report["checks"].append({"name": name, "ok": bool(ok), "detail": str(detail)})
    log(f"{'PASS' if ok else 'FAIL'} {name} {detail}")
    return ok


def finish(rc):
    if RESULT_PATH:
        with open(RESULT_PATH + ".tmp", "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
        os.replace(RESULT_PATH + ".tmp", RESULT_PATH)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


def pump(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents(QEventLoop.AllEvents, 50)
        time.sleep(0.01)


def wait(pred, timeout, what):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        QApplication.processEvents(QEventLoop.AllEvents, 50)
        time.sleep(0.01)


def digest(node):
    return hashlib.sha256(bytes(node.pixelData(0, 0, node_doc_w, node_doc_h))).hexdigest()


node_doc_w, node_doc_h = W, H


MASKS = ("transparencymask", "filtermask", "transformmask", "selectionmask", "colorizemask")


def names(parent):
    """Child layer names, bottom first (masks left out: Document.setSelection adds a global
    'Selection Mask' node to the root in a real Krita)."""
    return [n.name() for n in parent.childNodes() if n.type() not in MASKS]


def bgra_canvas(w, h, bgra):
    return bytearray(bytes(bgra) * (w * h))


def paint_rect(buf, w, x, y, rw, rh, px):
    bpp = len(px)
    row = bytes(px) * rw
    for yy in range(y, y + rh):
        start = (yy * w + x) * bpp
        buf[start : start + rw * bpp] = row


def panel_lines(buf, w, px):
    for x, y, pw, ph in PANELS:
        paint_rect(buf, w, x, y, pw, LINE, px)
        paint_rect(buf, w, x, y + ph - LINE, pw, LINE, px)
        paint_rect(buf, w, x, y, LINE, ph, px)
        paint_rect(buf, w, x + pw - LINE, y, LINE, ph, px)


def find_docker():
    win = Krita.instance().activeWindow()
    dock = win.qwindow().findChild(QDockWidget, "mangacolor_docker")
    if dock is None:
        for d in win.qwindow().findChildren(QDockWidget):
            if d.windowTitle() == "MangaColor":
                dock = d
    if dock is None:
        raise RuntimeError("the MangaColor docker was not found in the main window")
    return dock


class Docker:
    def __init__(self):
        self.dock = find_docker()
        self.button = self.dock.findChild(QPushButton, "mangacolor_colorize_button")
        self.status = self.dock.findChild(QLabel, "mangacolor_status")
        self.notes = self.dock.findChild(QLabel, "mangacolor_notes")
        self.backend = self.dock.findChild(QLabel, "mangacolor_backend_status")
        if self.button is None or self.status is None:
            raise RuntimeError("the docker has no Colorize button / status label")

    def run(self, trigger, label):
        """Press (or trigger), wait until the Colorize button is enabled again, return the status text."""
        if not self.button.isEnabled():
            wait(self.button.isEnabled, 30, "the Colorize button to be enabled")
        before = time.monotonic()
        trigger()
        wait(lambda: self.button.isEnabled(), JOB_TIMEOUT_S, f"{label} to finish")
        text = self.status.text()
        report["status"][label] = text
        report["notes"][label] = self.notes.text() if self.notes is not None else ""
        log(f"{label}: {time.monotonic() - before:.1f} s: {text!r} notes={report['notes'][label]!r}")
        return text


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_backend(url, timeout):
    def healthy():
        try:
            with urllib.request.urlopen(url + "/v1/health", timeout=1) as r:
                report["health"] = json.loads(r.read().decode())
                return True
        except Exception:
            return False

    wait(healthy, timeout, f"the backend at {url}")


def hue_deg(rgb):
    h, s, v = colorsys.rgb_to_hsv(*[c / 255.0 for c in rgb])
    return h * 360.0, s, v


def sample_rgb(node, x, y, r=1):
    data = bytes(node.pixelData(x - r, y - r, 2 * r + 1, 2 * r + 1))
    n = len(data) // 4
    b = sum(data[0::4]) / n
    g = sum(data[1::4]) / n
    rr = sum(data[2::4]) / n
    a = sum(data[3::4]) / n
    return (rr, g, b), a


def scenario_action():
    k = Krita.instance()
    actions = [a for a in k.actions() if a.objectName() == "mangacolor_colorize"]
    check("action mangacolor_colorize exists", len(actions) == 1, [a.objectName() for a in actions])
    if not actions:
        return None
    action = actions[0]
    shortcut = action.shortcut().toString()
    check("action has the default shortcut Ctrl+Shift+M", shortcut == "Ctrl+Shift+M", shortcut)
    clashes = [a.objectName() for a in k.actions() if a is not action and a.objectName() != "mangacolor_colorize" and shortcut and a.shortcut().toString() == shortcut]
    check("no other Krita action uses the shortcut", not clashes, clashes)
    return action


def build_rgba_page():
    k = Krita.instance()
    doc = k.createDocument(W, H, "mangacolor e2e", "RGBA", "U8", "", 300.0)
    root = doc.rootNode()
    paper = root.childNodes()[0]  # "Background": white, opaque
    hints = doc.createNode("Hints", "paintlayer")
    buf = bgra_canvas(W, H, (0, 0, 0, 0))
    for x, y, (r, g, b) in HINTS:
        paint_rect(buf, W, x - DOT // 2, y - DOT // 2, DOT, DOT, (b, g, r, 255))
    hints.setPixelData(bytes(buf), 0, 0, W, H)
    root.addChildNode(hints, paper)
    ink = doc.createNode("Ink", "paintlayer")
    buf = bgra_canvas(W, H, (0, 0, 0, 0))
    panel_lines(buf, W, (0, 0, 0, 255))
    ink.setPixelData(bytes(buf), 0, 0, W, H)
    root.addChildNode(ink, None)  # on top: a new view makes the top layer active
    return doc


def scenario_backend_down(docker, doc):
    real_url = os.environ.get("MANGACOLOR_URL", "")
    dead = f"http://127.0.0.1:{free_port()}"
    os.environ["MANGACOLOR_URL"] = dead
    try:
        before = names(doc.rootNode())
        text = docker.run(docker.button.click, "backend_down")
        check("backend down: error says it is not running, with the URL", f"not running at {dead}" in text, text)
        check("backend down: says how to start it", "python -m backend serve" in text, text)
        check("backend down: document unchanged", names(doc.rootNode()) == before, names(doc.rootNode()))
    finally:
        os.environ["MANGACOLOR_URL"] = real_url


def find_child(parent, name):
    for n in parent.childNodes():
        if n.name() == name:
            return n
    return None


def scenario_rgba(docker, doc, action):
    root = doc.rootNode()
    ink, hints = find_child(root, "Ink"), find_child(root, "Hints")
    ink_id, hints_id = ink.uniqueId(), hints.uniqueId()
    ink_hash, hints_hash = digest(ink), digest(hints)
    paper_hash = digest(find_child(root, "Background"))

    text = docker.run(docker.button.click, "rgba")
    check("rgba: finished with Done", text.startswith("Done"), text)
    order = names(root)
    check("rgba: MangaColor directly beneath the ink", order == ["Background", "Hints", "MangaColor", "Ink"], order)
    ink = find_child(root, "Ink")
    result = find_child(root, "MangaColor")
    check("rgba: ink is the same node", ink is not None and ink.uniqueId() == ink_id)
    check("rgba: ink blending mode is multiply", ink is not None and ink.blendingMode() == "multiply", ink and ink.blendingMode())
    check("rgba: ink pixels byte-identical", ink is not None and digest(ink) == ink_hash)
    hints = find_child(root, "Hints")
    check("rgba: hint pixels byte-identical", hints is not None and hints.uniqueId() == hints_id and digest(hints) == hints_hash)
    check("rgba: paper pixels byte-identical", digest(find_child(root, "Background")) == paper_hash)
    check("rgba: hint layer blending untouched", hints is not None and hints.blendingMode() == "normal")
    if result is None:
        return
    check("rgba: result is a paint layer", result.type() == "paintlayer", result.type())
    opaque = sum(1 for a in bytes(result.pixelData(0, 0, W, H))[3::4] if a > 0)
    check("rgba: result layer has pixels", opaque > W * H // 2, f"{opaque} non-transparent pixels")
    colour_ok = True
    for x, y, rgb in HINTS:
        got, alpha = sample_rgb(result, x, y)
        want_h, want_s, _ = hue_deg(rgb)
        got_h, got_s, got_v = hue_deg(got)
        diff = abs(want_h - got_h) % 360.0
        diff = min(diff, 360.0 - diff)
        ok = got_s >= MIN_SATURATION and diff <= HUE_TOLERANCE_DEG
        colour_ok &= ok
        report["colour"].append(
            {"at": [x, y], "hint_rgb": list(rgb), "result_rgb": [round(c, 1) for c in got], "alpha": alpha,
             "hue_hint": round(want_h, 1), "hue_result": round(got_h, 1), "hue_diff": round(diff, 1),
             "saturation": round(got_s, 3), "ok": ok}
        )
    report["colour_ok"] = colour_ok
    old_id = result.uniqueId()

    # again, through the action (what Ctrl+Shift+M triggers): replaced in place
    if action is not None:
        text = docker.run(action.trigger, "rgba_again_action")
        check("again: finished with Done and says replaced", text.startswith("Done") and "replaced" in text, text)
        order = names(root)
        check("again: still exactly one MangaColor, same place", order == ["Background", "Hints", "MangaColor", "Ink"], order)
        new = find_child(root, "MangaColor")
        check("again: the old result layer was replaced", new is not None and new.uniqueId() != old_id)
        check("again: ink pixels still byte-identical", digest(find_child(root, "Ink")) == ink_hash)
        check("again: hints still byte-identical", digest(find_child(root, "Hints")) == hints_hash)

    # with a selection: the top-left panel only
    from krita import Selection

    sel = Selection()
    sel.select(0, 0, 200, 150, 255)
    doc.setSelection(sel)
    # In a real Krita, Document.setSelection() (unlike the selection tools) also makes the layer above
    # the selection mask's neighbour active: here MangaColor. Colorize then uses the ink above it.
    active = doc.activeNode()
    report["active_after_setSelection"] = active.name() if active is not None else None
    text = docker.run(docker.button.click, "selection")
    check("selection: finished with Done", text.startswith("Done") and "selected area" in text, text)
    result = find_child(root, "MangaColor")
    order = names(root)
    check("selection: still one MangaColor beneath the ink", order == ["Background", "Hints", "MangaColor", "Ink"], order)
    if result is not None:
        _, a_in = sample_rgb(result, 100, 70)
        _, a_out1 = sample_rgb(result, 300, 200)
        _, a_out2 = sample_rgb(result, 250, 70)
        check("selection: colour inside the selection", a_in > 0, a_in)
        check("selection: transparent outside the selection", a_out1 == 0 and a_out2 == 0, (a_out1, a_out2))
    check("selection: ink pixels still byte-identical", digest(find_child(root, "Ink")) == ink_hash)


def scenario_gray(docker):
    global node_doc_w, node_doc_h
    k = Krita.instance()
    gw, gh = 200, 150
    doc = k.createDocument(gw, gh, "mangacolor e2e gray", "GRAYA", "U8", "", 300.0)
    root = doc.rootNode()
    page = root.childNodes()[0]  # the only layer: a scanned page
    page.setName("Page")
    buf = bytearray(bytes([255, 255]) * (gw * gh))
    for x, y, pw, ph in [(8, 8, 90, 130), (104, 8, 88, 130)]:
        paint_rect(buf, gw, x, y, pw, LINE, (0, 255))
        paint_rect(buf, gw, x, y + ph - LINE, pw, LINE, (0, 255))
        paint_rect(buf, gw, x, y, LINE, ph, (0, 255))
        paint_rect(buf, gw, x + pw - LINE, y, LINE, ph, (0, 255))
    page.setPixelData(bytes(buf), 0, 0, gw, gh)
    page_id = page.uniqueId()
    node_doc_w, node_doc_h = gw, gh
    page_hash = digest(page)
    Krita.instance().activeWindow().addView(doc)
    pump(1.0)
    active = k.activeDocument()
    check("gray: the new view's document is active", active is not None and active.name() == doc.name(), active and active.name())
    node = doc.activeNode()
    check("gray: the page layer is active", node is not None and node.name() == "Page", node and node.name())
    text = docker.run(docker.button.click, "gray")
    check("gray: finished with Done", text.startswith("Done"), text)
    notes = report["notes"].get("gray", "")
    check("gray: says there is no hint layer", "no hint layer named 'Hints'" in notes, notes)
    check("gray: says the document is grayscale", "grayscale" in notes, notes)
    order = names(root)
    check("gray: MangaColor beneath the restacked page", order == ["MangaColor", "Page"], order)
    page = find_child(root, "Page")
    check("gray: page is the same node", page is not None and page.uniqueId() == page_id)
    check("gray: page pixels byte-identical", page is not None and digest(page) == page_hash)
    check("gray: page blends with multiply", page is not None and page.blendingMode() == "multiply")
    result = find_child(root, "MangaColor")
    check("gray: result layer is RGB/Alpha", result is not None and result.colorModel() == "RGBA", result and result.colorModel())


def scenario_autostart(docker):
    python, root = os.environ.get("MANGACOLOR_E2E_SERVER_PYTHON"), os.environ.get("MANGACOLOR_E2E_ROOT")
    if not python or not root:
        return
    k = Krita.instance()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    k.writeSetting("mangacolor", "server_command", json.dumps([python, "-m", "backend", "serve", "--port", str(port)]))
    k.writeSetting("mangacolor", "cwd", root)
    os.environ["MANGACOLOR_URL"] = url
    import krita_mangacolor.model as mc_model

    try:
        text = docker.run(docker.button.click, "autostart")
        check("autostart: finished with Done", text.startswith("Done"), text)
        backend_line = docker.backend.text() if docker.backend is not None else ""
        report["status"]["autostart_backend_line"] = backend_line
        check("autostart: backend line says the plugin started it", "started by MangaColor" in backend_line and url in backend_line, backend_line)
        server = mc_model.instance().server
        check("autostart: the plugin's server process runs", server.running, server.describe())
    finally:
        mc_model.instance().server.stop()
    check("autostart: the plugin stops its server", not mc_model.instance().server.running)
    k.writeSetting("mangacolor", "server_command", "")


def main():
    k = Krita.instance()
    k.setBatchmode(True)
    log(f"Krita {k.version()}, Python {sys.version.split()[0]}")
    action = scenario_action()
    doc = build_rgba_page()
    k.activeWindow().addView(doc)
    pump(1.0)
    active = doc.activeNode()
    check("setup: the ink is the active layer", active is not None and active.name() == "Ink", active and active.name())
    docker = Docker()
    scenario_backend_down(docker, doc)
    url = os.environ.get("MANGACOLOR_URL", "")
    wait_backend(url, 180)
    report["model_version"] = report.get("health", {}).get("model_version")
    scenario_rgba(docker, doc, action)
    scenario_gray(docker)
    scenario_autostart(docker)


def run():
    try:
        main()
        rc = 0 if all(c["ok"] for c in report["checks"]) else 1
    except BaseException as exc:
        report["error"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        log(report["error"])
        rc = 2
    finish(rc)


def watchdog():
    report["error"] = f"harness watchdog: still running after {WATCHDOG_S:.0f} s"
    finish(3)


def on_window():
    QTimer.singleShot(int(WATCHDOG_S * 1000), watchdog)
    QTimer.singleShot(500, run)


if RESULT_PATH:  # only ever active when the e2e test starts Krita
    Krita.instance().notifier().windowCreated.connect(on_window)
