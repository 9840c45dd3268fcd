"""Test-only Krita plugin: drives the real MangaColor docker inside a real Krita, then exits Krita.

Started by tests/krita_e2e/test_real_krita.py with:
  MANGACOLOR_E2E_RESULT      path of the JSON report to write
  MANGACOLOR_URL             the real backend started by the test (read by the MangaColor plugin)
  MANGACOLOR_E2E_FAKE_URL    the test's fake backend (slow jobs on demand: cancel, the 6000x8500 page)
  MANGACOLOR_E2E_TMP         a folder for .kra files and screenshots
  MANGACOLOR_E2E_SERVER_PYTHON / _ROOT   the backend command for the plugin to start itself
Scenarios, in order (each one's checks are named with its prefix; an exception fails that scenario only):
  action      the four actions exist, Ctrl+Shift+M free, the Colorize Mask action disabled in Krita 5.1
  down        backend down, no server command -> a clear error, no change
  options     one control per /v1/options entry, its help as tooltip; a changed value is sent
  pickers     role pickers' defaults by name
  rgba        Colorize -> 'MangaColor' beneath the ink, ink Multiply, user layers byte-identical
  undo        one Ctrl+Z removes the new layer; all of a run's steps restore the page exactly; redo
  again       re-run through the action replaces the layer
  history     Restore of the first result puts its pixels back
  selection   an elliptical selection: colour inside, transparent in the box's corners and outside
  gray        GRAYA page whose only layer is the ink -> RGB result above it, Multiply, one undo step
  deep        16-bit RGBA and 16-bit grayscale pages
  kra         pickers set to non-default layers, colorize, save .kra, close, reopen: choices found again
  panels      Detect panels -> Panels vector layer; palette for one panel -> colorize; .kra keeps them
              (panels_scenarios.py)
  cmask       Krita 5.2+: Export hints to Colorize Mask (panels_scenarios.py)
  hinttool    'MangaColor: New hint layer' -> Hints above the ink, active, hint brush
  all         'Colorize all open documents' -> each colorized, the one without an ink skipped and named
  cancel      Cancel mid-run (slow fake backend) -> nothing changed, the job deleted on the backend
  timing, variants  the sample page's click->layer timings; variants, pick, Keep as draft (round_trip.py)
  bigpage     6000x8500 page (fake backend): GUI-thread blocking, the plugin's own times and memory
  autostart   no server: the plugin starts the real backend from the server command
  kill        that backend killed with SIGKILL mid-job -> clear message, layers byte-identical; the next
              Colorize starts a new backend and works
  screenshot  the docker (and the main window) grabbed with QWidget.grab()
The report lists every check; Krita is left with os._exit (never waits on dialogs).
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import os
import signal
import socket
import sys
import time
import traceback
import urllib.request
import zipfile

from krita import Krita, Selection
from PyQt5.QtCore import QByteArray, QEventLoop, QTimer
from PyQt5.QtWidgets import QApplication, QComboBox, QDockWidget, QLabel, QListWidget, QPushButton, QWidget

RESULT_PATH = os.environ.get("MANGACOLOR_E2E_RESULT", "")
TMP = os.environ.get("MANGACOLOR_E2E_TMP", "/tmp")
FAKE_URL = os.environ.get("MANGACOLOR_E2E_FAKE_URL", "")
WATCHDOG_S = float(os.environ.get("MANGACOLOR_E2E_WATCHDOG", "600"))
JOB_TIMEOUT_S = float(os.environ.get("MANGACOLOR_E2E_JOB_TIMEOUT", "240"))
ONLY = set(filter(None, os.environ.get("MANGACOLOR_E2E_ONLY", "").split(",")))  # run a subset (debugging)

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
PAPER_POINTS = [(4, 4), (395, 150), (200, 70), (100, 149), (300, 295), (200, 149)]  # margins and gutters
HUE_TOLERANCE_DEG = 30.0
MIN_SATURATION = 0.15
MASKS = ("transparencymask", "filtermask", "transformmask", "selectionmask", "colorizemask")

report = {"checks": [], "status": {}, "notes": {}, "colour": [], "error": None, "timings": {}, "bigpage": {}, "files": {}}


def log(msg):
    print(f"[e2e harness] {msg}", flush=True)


def check(name, ok, detail=""):
    report["checks"].append({"name": name, "ok": bool(ok), "detail": str(detail)[:2000]})
    log(f"{'PASS' if ok else 'FAIL'} {name} {str(detail)[:300]}")
    return ok


def finish(rc):
    if RESULT_PATH:
        with open(RESULT_PATH + ".tmp", "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
        os.replace(RESULT_PATH + ".tmp", RESULT_PATH)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


# The scenarios are generators driven from Krita's own (outermost) event loop: `yield seconds` hands control
# back to Krita for that long. Nested event loops (processEvents in a loop) are not enough: Krita's layer UI
# (the Layers docker, the active layer) learns about script-made changes only in the outermost loop, as it
# does when a user's click runs the plugin.


def wait_for(pred, timeout, what, poll=0.02):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        yield poll


def mc_model():
    import krita_mangacolor.ui_model as m

    return m.instance()


# --- pixels and layers -----------------------------------------------------------------------------


def digest(node, w=None, h=None):
    doc = Krita.instance().activeDocument()
    w = w or (doc.width() if doc else W)
    h = h or (doc.height() if doc else H)
    return hashlib.sha256(bytes(node.pixelData(0, 0, w, h))).hexdigest()


def names(parent):
    """Child layer names, bottom first (masks left out: Document.setSelection adds a global
    'Selection Mask' node to the root in a real Krita)."""
    return [n.name() for n in parent.childNodes() if n.type() not in MASKS]


def find_child(parent, name):
    for n in parent.childNodes():
        if n.name() == name:
            return n
    return None


def state_of(doc):
    """Everything about every layer (not masks), to prove what changed: name, type, blending, pixels."""
    out = []
    w, h = doc.width(), doc.height()

    def walk(node, depth):
        for c in node.childNodes():
            if c.type() in MASKS:
                continue
            out.append((depth, c.name(), c.type(), c.blendingMode(), c.uniqueId().toString(),
                        hashlib.sha256(bytes(c.pixelData(0, 0, w, h))).hexdigest()[:16]))
            walk(c, depth + 1)

    walk(doc.rootNode(), 0)
    return out


def bgra_canvas(w, h, bgra):
    return bytearray(bytes(bgra) * (w * h))


def paint_rect(buf, w, x, y, rw, rh, px):
    bpp = len(px)
    row = bytes(px) * rw
    for yy in range(y, y + rh):
        start = (yy * w + x) * bpp
        buf[start : start + rw * bpp] = row


def panel_lines(buf, w, px, panels=PANELS, line=LINE):
    for x, y, pw, ph in panels:
        paint_rect(buf, w, x, y, pw, line, px)
        paint_rect(buf, w, x, y + ph - line, pw, line, px)
        paint_rect(buf, w, x, y, line, ph, px)
        paint_rect(buf, w, x + pw - line, y, line, ph, px)


def scaled_panels(w, h):
    sx, sy = w / W, h / H
    return [(int(x * sx), int(y * sy), int(pw * sx), int(ph * sy)) for x, y, pw, ph in PANELS]


def show(doc):
    Krita.instance().activeWindow().addView(doc)
    yield 0.6
    return doc


def build_page(name, w=W, h=H, model="RGBA", depth="U8", ink_name="Ink", hints_name="Hints", hints_below=True):
    """Background paper / Hints dots / Ink panels on top (the ink active in a new view)."""
    k = Krita.instance()
    doc = k.createDocument(w, h, name, model, depth, "", 300.0)
    root = doc.rootNode()
    paper = root.childNodes()[0]
    wide = depth == "U16"
    sx, sy = w / W, h / H
    if hints_name:
        hints = doc.createNode(hints_name, "paintlayer")
        if model != "RGBA":
            hints.setColorSpace("RGBA", depth, "sRGB-elle-V2-srgbtrc.icc")
        buf = bgra_canvas(w, h, (0,) * (8 if wide else 4))
        for x, y, (r, g, b) in HINTS:
            px = (b, b, g, g, r, r, 255, 255) if wide else (b, g, r, 255)
            paint_rect(buf, w, int(x * sx) - DOT // 2, int(y * sy) - DOT // 2, DOT, DOT, px)
        hints.setPixelData(bytes(buf), 0, 0, w, h)
        root.addChildNode(hints, paper if hints_below else None)
    ink = doc.createNode(ink_name, "paintlayer")
    if model == "GRAYA":
        px, bg = ((0, 0, 255, 255), (0, 0, 0, 0)) if wide else ((0, 255), (0, 0))
    else:
        px, bg = ((0, 0, 0, 0, 0, 0, 255, 255), (0,) * 8) if wide else ((0, 0, 0, 255), (0, 0, 0, 0))
    buf = bgra_canvas(w, h, bg)
    panel_lines(buf, w, px, scaled_panels(w, h), max(LINE, int(LINE * sx)))
    ink.setPixelData(bytes(buf), 0, 0, w, h)
    if hints_name and not hints_below:
        root.addChildNode(ink, paper)
    else:
        root.addChildNode(ink, None)  # on top: a new view makes the top layer active
    yield from show(doc)
    doc.setActiveNode(ink)
    yield 0.3
    return doc


def close(doc):
    """Close without a 'save changes?' dialog (test documents)."""
    doc.setModified(False)
    doc.close()


def reopen(doc, path, what):
    """Close a saved document and open it again from `path` (yields while Krita works); the reopened
    document, shown in a window, or None after a failed check."""
    close(doc)
    yield 0.5
    doc = Krita.instance().openDocument(path)
    check(f"{what}: reopened", doc is not None)
    if doc is not None:
        yield from show(doc)
    return doc


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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token():
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.environ["HOME"], ".config")
    with open(os.path.join(base, "mangacolor", "token"), encoding="utf-8") as f:
        return f.read().strip()


def http(url, path, body=None, method=None, timeout=10):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode() if body is not None else None, method=method)
    req.add_header("Authorization", f"Bearer {token()}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read().decode())


def wait_backend(url, timeout):
    def healthy():
        try:
            with urllib.request.urlopen(url + "/v1/health", timeout=1) as r:
                report["health"] = json.loads(r.read().decode())
                return True
        except Exception:
            return False

    yield from wait_for(healthy, timeout, f"the backend at {url}")


def rss_mb():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                out[line.split(":")[0]] = int(line.split()[1]) // 1024
    return out


# --- the docker ------------------------------------------------------------------------------------


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
        self.dock.show()
        self.widget = self.dock.findChild(QWidget, "mangacolor_widget")
        self.button = self.dock.findChild(QPushButton, "mangacolor_colorize_button")
        self.cancel = self.dock.findChild(QPushButton, "mangacolor_cancel_button")
        self.status = self.dock.findChild(QLabel, "mangacolor_status")
        self.notes = self.dock.findChild(QLabel, "mangacolor_notes")
        self.backend = self.dock.findChild(QLabel, "mangacolor_backend_status")
        self.history = self.dock.findChild(QListWidget, "mangacolor_history")
        self.restore = self.dock.findChild(QPushButton, "mangacolor_history_restore")
        self.combos = {r: self.dock.findChild(QComboBox, f"mangacolor_role_{r}") for r in ("ink", "hints", "reference")}
        if self.button is None or self.status is None or None in self.combos.values():
            raise RuntimeError("the docker lacks the Colorize button / status label / role pickers")

    def run(self, trigger, label, timeout=JOB_TIMEOUT_S):
        """Press (or trigger), wait until the Colorize button is enabled again, return the status text."""
        if not self.button.isEnabled():
            yield from wait_for(self.button.isEnabled, 30, "the Colorize button to be enabled")
        before = time.monotonic()
        trigger()
        yield 0.05
        yield from wait_for(lambda: self.button.isEnabled(), timeout, f"{label} to finish")
        text = self.status.text()
        report["status"][label] = text
        report["notes"][label] = self.notes.text() if self.notes is not None else ""
        log(f"{label}: {time.monotonic() - before:.1f} s: {text!r} notes={report['notes'][label]!r}")
        return text

    def refresh(self):
        self.widget.roles.refresh(force=True)

    def combo_texts(self, role):
        c = self.combos[role]
        return [c.itemText(i) for i in range(c.count())]

    def pick(self, role, text):
        """Choose in a role picker as a user would (the `activated` signal only comes from the user)."""
        self.refresh()
        c = self.combos[role]
        for i in range(c.count()):
            if c.itemText(i).strip() == text:
                c.setCurrentIndex(i)
                c.activated.emit(i)
                yield 0.1
                return True
        raise AssertionError(f"no '{text}' in the {role} picker: {self.combo_texts(role)}")


# --- scenarios ---------------------------------------------------------------------------------------

ctx = {}


def scenario(prefix):
    def deco(fn):
        def run(*args):
            if ONLY and prefix not in ONLY:
                return None
            t0 = time.monotonic()
            try:
                result = fn(*args)
                if hasattr(result, "send"):  # a generator: let it run, yielding to Krita
                    result = yield from result
                return result
            except Exception as exc:
                check(f"{prefix}: scenario raised", False, "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-1500:])
                return None
            finally:
                report["timings"][prefix] = round(time.monotonic() - t0, 1)

        run.__name__ = fn.__name__
        return run

    return deco


@scenario("action")
def scenario_action():
    k = Krita.instance()
    want = {
        "mangacolor_colorize": "MangaColor: Colorize",
        "mangacolor_new_hint_layer": "MangaColor: New hint layer",
        "mangacolor_colorize_all": "MangaColor: Colorize all open documents",
        "mangacolor_export_colorize_mask": "MangaColor: Export hints to Colorize Mask",
    }
    found = {a.objectName(): a for a in k.actions() if a.objectName() in want}
    check("action: all four MangaColor actions exist", sorted(found) == sorted(want), sorted(found))
    action = found.get("mangacolor_colorize")
    if action is None:
        return None
    check("action: texts", all(found[n].text().replace("&", "") == t for n, t in want.items() if n in found),
          {n: a.text() for n, a in found.items()})
    shortcut = action.shortcut().toString()
    check("action: the default shortcut Ctrl+Shift+M", shortcut == "Ctrl+Shift+M", shortcut)
    clashes = [a.objectName() for a in k.actions() if a.objectName() != "mangacolor_colorize" and shortcut and a.shortcut().toString() == shortcut]
    check("action: no other Krita action uses the shortcut", not clashes, clashes)
    mask = found.get("mangacolor_export_colorize_mask")
    if hasattr(__import__("krita"), "ColorizeMask"):  # Krita 5.2+: scenario 'cmask' uses it
        # (Krita 5.2 itself disables script actions while no document is open: 'cmask' checks it enabled)
        check("action: Colorize Mask export not disabled by MangaColor in Krita 5.2+", mask is not None and "Needs Krita" not in mask.toolTip(),
              mask and mask.toolTip())
    else:
        check("action: Colorize Mask export disabled in Krita 5.1, saying why",
              mask is not None and not mask.isEnabled() and "Krita 5.2" in mask.toolTip(), mask and (mask.isEnabled(), mask.toolTip()))
    ctx["actions"] = found
    return action


@scenario("down")
def scenario_backend_down(docker, doc):
    real_url = os.environ.get("MANGACOLOR_URL", "")
    dead = f"http://127.0.0.1:{free_port()}"
    os.environ["MANGACOLOR_URL"] = dead
    try:
        before = state_of(doc)
        text = yield from docker.run(docker.button.click, "backend_down")
        check("down: error says it is not running, with the URL", f"not running at {dead}" in text, text)
        check("down: says how to start it", "python -m backend serve" in text, text)
        check("down: document unchanged", state_of(doc) == before)
    finally:
        os.environ["MANGACOLOR_URL"] = real_url


@scenario("options")
def scenario_options(docker):
    url = os.environ["MANGACOLOR_URL"]
    schema = http(url, "/v1/options")["options"]
    docker.dock.findChild(QPushButton, "mangacolor_check_backend").click()
    m = mc_model()
    yield from wait_for(lambda: len(m.options.specs) == len(schema) and url in docker.backend.text(), 30, "the docker to read the options")
    missing, bad_tip = [], []
    for entry in schema:
        w = docker.dock.findChild(QWidget, "mangacolor_option_" + entry["name"])
        if w is None:
            missing.append(entry["name"])
        elif not w.toolTip().startswith(entry["help"]):
            bad_tip.append((entry["name"], w.toolTip()))
    check("options: one control per backend option", not missing and schema, f"missing {missing} of {[e['name'] for e in schema]}")
    check("options: each option's help is its tooltip", not bad_tip, bad_tip)
    report["options_schema"] = [e["name"] for e in schema]
    backend_line = docker.backend.text()
    check("options: backend line shows device and model", "on " in backend_line and "model" in backend_line, backend_line)


@scenario("pickers")
def scenario_pickers(docker):
    docker.refresh()
    texts = {r: docker.combos[r].currentText() for r in docker.combos}
    report["pickers_default"] = texts
    check("pickers: ink defaults to the layer named Ink", texts["ink"] == "Auto: Ink", texts)
    check("pickers: hints default to 'Hints'", texts["hints"] == "Auto: Hints", texts)
    check("pickers: no reference layer", texts["reference"].startswith("Auto (none"), texts)
    check("pickers: the layers are listed", {"Ink", "Hints", "Background"} <= {t.strip() for t in docker.combo_texts("ink")}, docker.combo_texts("ink"))


@scenario("rgba")
def scenario_rgba(docker, doc):
    root = doc.rootNode()
    ink, hints = find_child(root, "Ink"), find_child(root, "Hints")
    ctx["ink_hash"], ctx["hints_hash"] = digest(ink), digest(hints)
    ink_id, hints_id = ink.uniqueId(), hints.uniqueId()
    paper_hash = digest(find_child(root, "Background"))
    ctx["before_first"] = state_of(doc)
    doc.setActiveNode(hints)  # a colourist who just painted hints: the ink is still found by its name

    text = yield from docker.run(docker.button.click, "rgba")
    check("rgba: finished with Done", text.startswith("Done"), text)
    order = names(root)
    check("rgba: MangaColor directly beneath the ink", order == ["Background", "Hints", "MangaColor", "Ink"], order)
    ink = find_child(root, "Ink")
    result = find_child(root, "MangaColor")
    check("rgba: ink is the same node", ink is not None and ink.uniqueId() == ink_id)
    check("rgba: ink blending mode is multiply", ink is not None and ink.blendingMode() == "multiply", ink and ink.blendingMode())
    check("rgba: ink pixels byte-identical", ink is not None and digest(ink) == ctx["ink_hash"])
    hints = find_child(root, "Hints")
    check("rgba: hint pixels byte-identical", hints is not None and hints.uniqueId() == hints_id and digest(hints) == ctx["hints_hash"])
    check("rgba: paper pixels byte-identical", digest(find_child(root, "Background")) == paper_hash)
    check("rgba: hint layer blending untouched", hints is not None and hints.blendingMode() == "normal")
    m = mc_model()
    check("rgba: every backend option was sent, at its default", sorted(m.last_options or {}) == sorted(report.get("options_schema", [])), m.last_options)
    check("rgba: the roles used", m.last_roles == ("Ink", "Hints", None), m.last_roles)
    if result is None:
        return
    check("rgba: result is a paint layer", result.type() == "paintlayer", result.type())
    opaque = sum(1 for a in bytes(result.pixelData(0, 0, W, H))[3::4] if a > 0)
    check("rgba: result layer has pixels", opaque > W * H // 2, f"{opaque} non-transparent pixels")
    ctx["first_result"] = digest(result)
    ctx["after_first"] = state_of(doc)
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
    # Margins and gutters are paper open to the page border: with hints in every panel they stay white.
    report["paper"] = [
        {"at": [x, y], "result_rgb": [round(c, 1) for c in sample_rgb(result, x, y)[0]]} for x, y in PAPER_POINTS
    ]


@scenario("undo")
def scenario_undo_first(doc):
    """After the FIRST run (ink was Normal): Add Layer is the last step, the ink's Multiply the one before."""
    k = Krita.instance()
    undo, redo = k.action("edit_undo"), k.action("edit_redo")
    applied = mc_model().last_result
    steps = applied.undo_steps if applied is not None else 0
    report["undo_steps_first_run"] = steps
    report["undo_text_first_run"] = undo.text()
    check("undo: first run is 2 steps (ink Multiply, Add Layer)", steps == 2, steps)
    undo.trigger()
    yield 0.5
    after_one = state_of(doc)
    before = ctx["before_first"]
    check("undo: one undo removes the colour layer", [s[1] for s in after_one] == [s[1] for s in before], [s[1] for s in after_one])
    same_but_blend = [s[:3] + s[4:] for s in after_one] == [s[:3] + s[4:] for s in before]
    check("undo: ...and leaves every user layer byte-identical (the ink still Multiply)", same_but_blend)
    for _ in range(steps - 1):
        undo.trigger()
        yield 0.3
    check("undo: all the run's steps restore the page exactly", state_of(doc) == before, state_of(doc))
    for _ in range(steps):
        redo.trigger()
        yield 0.3
    check("undo: redo brings the result back", state_of(doc) == ctx["after_first"], state_of(doc))


@scenario("again")
def scenario_again(docker, doc, action):
    k = Krita.instance()
    root = doc.rootNode()
    old_id = find_child(root, "MangaColor").uniqueId()
    fill_hint = find_child(root, "Hints")
    flat = docker.dock.findChild(QWidget, "mangacolor_option_flat_regions")
    if flat is not None:
        flat.setValue(0.5)  # as a user would, in the docker's Options
        yield 0.1
    text = yield from docker.run(action.trigger, "rgba_again_action")
    m = mc_model()
    check("again: the option changed in the docker was sent", (m.last_options or {}).get("flat_regions") == 0.5, m.last_options)
    docker.dock.findChild(QPushButton, "mangacolor_options_reset").click()
    yield 0.1
    check("again: Defaults puts the options back", m.options.job_options().get("flat_regions") == 0.6, m.options.job_options())
    check("again: finished with Done and says replaced", text.startswith("Done") and "replaced" in text, text)
    order = names(root)
    check("again: still exactly one MangaColor, same place", order == ["Background", "Hints", "MangaColor", "Ink"], order)
    new = find_child(root, "MangaColor")
    check("again: the old result layer was replaced", new is not None and new.uniqueId() != old_id)
    check("again: ink pixels still byte-identical", digest(find_child(root, "Ink")) == ctx["ink_hash"])
    check("again: hints still byte-identical", digest(fill_hint) == ctx["hints_hash"])
    # undo of a re-run: one step = no colour layer, the second = the first result back
    undo, redo = k.action("edit_undo"), k.action("edit_redo")
    steps = mc_model().last_result.undo_steps
    after_again = state_of(doc)
    undo.trigger()
    yield 0.5
    check("again: one undo removes the new colour layer", names(root) == ["Background", "Hints", "Ink"], names(root))
    undo.trigger()
    yield 0.5
    check("again: a second undo brings the first result back, exactly", state_of(doc) == ctx["after_first"], state_of(doc))
    for _ in range(steps):
        redo.trigger()
        yield 0.3
    check("again: redo", state_of(doc) == after_again)


@scenario("history")
def scenario_history(docker, doc):
    root = doc.rootNode()
    count = docker.history.count()
    check("history: both results listed", count >= 2, [docker.history.item(i).text() for i in range(count)])
    first = None
    for i in range(count):
        if docker.history.item(i).text().startswith("#1 "):
            first = i
    if first is None:
        return
    docker.history.setCurrentRow(first)
    text = yield from docker.run(docker.restore.click, "history_restore")
    check("history: restore says so", text.startswith("Done") and "Restored result #1" in text, text)
    result = find_child(root, "MangaColor")
    check("history: the first result's pixels are back", result is not None and digest(result) == ctx.get("first_result"))
    check("history: still one MangaColor beneath the ink", names(root) == ["Background", "Hints", "MangaColor", "Ink"], names(root))
    check("history: ink untouched", digest(find_child(root, "Ink")) == ctx["ink_hash"])


@scenario("selection")
def scenario_selection(docker, doc):
    root = doc.rootNode()
    # an ellipse inside the top-left panel's area: not a rectangle
    x0, y0, w, h = 0, 0, 210, 160  # its box holds the top-left panel's lines
    mask = bytearray(w * h)
    for y in range(h):
        for x in range(w):
            if ((x - w / 2 + 0.5) / (w / 2)) ** 2 + ((y - h / 2 + 0.5) / (h / 2)) ** 2 <= 1.0:
                mask[y * w + x] = 255
    sel = Selection()
    sel.setPixelData(QByteArray(bytes(mask)), x0, y0, w, h)
    doc.setSelection(sel)
    yield 0.3
    text = yield from docker.run(docker.button.click, "selection")
    check("selection: finished with Done, selected area", text.startswith("Done") and "selected area" in text, text)
    result = find_child(root, "MangaColor")
    check("selection: still one MangaColor beneath the ink", names(root) == ["Background", "Hints", "MangaColor", "Ink"], names(root))
    if result is not None:
        _, a_center = sample_rgb(result, x0 + w // 2, y0 + h // 2)
        corners = [sample_rgb(result, x, y, 0)[1] for x, y in ((x0 + 3, y0 + 3), (x0 + w - 4, y0 + 3), (x0 + 3, y0 + h - 4), (x0 + w - 4, y0 + h - 4))]
        _, a_out = sample_rgb(result, 300, 230)
        check("selection: colour inside the ellipse", a_center > 0, a_center)
        check("selection: transparent in the corners of its bounding box", corners == [0, 0, 0, 0], corners)
        check("selection: transparent outside", a_out == 0, a_out)
    check("selection: ink pixels still byte-identical", digest(find_child(root, "Ink")) == ctx["ink_hash"])
    doc.setSelection(None)
    yield 0.2


@scenario("gray")
def scenario_gray(docker):
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
    yield from show(doc)
    page_hash = digest(page, gw, gh)
    before = state_of(doc)
    active = k.activeDocument()
    check("gray: the new view's document is active", active is not None and active.name() == doc.name(), active and active.name())
    text = yield from docker.run(docker.button.click, "gray")
    check("gray: finished with Done", text.startswith("Done") and "above 'Page'" in text, text)
    notes = report["notes"].get("gray", "")
    check("gray: says there is no hint layer", "no hint layer named 'Hints'" in notes, notes)
    check("gray: says the document is grayscale", "grayscale" in notes, notes)
    order = names(root)
    check("gray: MangaColor directly above the lowest (only) layer", order == ["Page", "MangaColor"], order)
    page = find_child(root, "Page")
    check("gray: page is the same node, untouched (pixels and blending)",
          page is not None and page.uniqueId() == page_id and digest(page, gw, gh) == page_hash and page.blendingMode() == "normal")
    result = find_child(root, "MangaColor")
    check("gray: result layer is RGB/Alpha and multiplies", result is not None and result.colorModel() == "RGBA" and result.blendingMode() == "multiply",
          result and (result.colorModel(), result.blendingMode()))
    applied = mc_model().last_result
    check("gray: one undo step", applied is not None and applied.undo_steps == 1, applied and applied.undo_steps)
    after = state_of(doc)
    Krita.instance().action("edit_undo").trigger()
    yield 0.5
    check("gray: one undo returns the page to its prior state, exactly", state_of(doc) == before, state_of(doc))
    Krita.instance().action("edit_redo").trigger()
    yield 0.5
    check("gray: redo", state_of(doc) == after)


@scenario("deep")
def scenario_deep(docker):
    for model, label in (("RGBA", "rgba16"), ("GRAYA", "gray16")):
        doc = yield from build_page(f"mangacolor e2e {label}", 200, 150, model, "U16")
        root = doc.rootNode()
        ink = find_child(root, "Ink")
        ink_hash = digest(ink, 200, 150)
        text = yield from docker.run(docker.button.click, label)
        check(f"deep: {label} finished with Done", text.startswith("Done"), text)
        check(f"deep: {label} MangaColor beneath the ink", names(root) == ["Background", "Hints", "MangaColor", "Ink"], names(root))
        result = find_child(root, "MangaColor")
        if result is None:
            continue
        check(f"deep: {label} result is 16-bit RGB/Alpha", (result.colorModel(), result.colorDepth()) == ("RGBA", "U16"),
              (result.colorModel(), result.colorDepth()))
        data = bytes(result.pixelData(100, 75, 4, 4))
        check(f"deep: {label} 16-bit values are v8*257 (both bytes equal)", len(data) == 128 and data[0::2] == data[1::2], data[:16].hex())
        check(f"deep: {label} ink untouched", digest(find_child(root, "Ink"), 200, 150) == ink_hash)
        check(f"deep: {label} hints used (their dots are RGB in a {model} document)", mc_model().last_roles[1] == "Hints", mc_model().last_roles)


@scenario("kra")
def scenario_kra(docker):
    doc = yield from build_page("mangacolor e2e roles", ink_name="Pencils", hints_name="Colours")
    root = doc.rootNode()
    decoy = doc.createNode("Ink", "paintlayer")  # what Auto would pick: empty, so a wrong pick would fail
    root.addChildNode(decoy, None)
    ref = doc.createNode("Palette pic", "paintlayer")
    buf = bgra_canvas(60, 40, (40, 90, 200, 255))
    ref.setPixelData(bytes(buf), 0, 0, 60, 40)
    root.addChildNode(ref, None)
    yield 0.3
    docker.refresh()
    check("kra: Auto picks the layer named Ink", docker.combos["ink"].currentText() == "Auto: Ink", docker.combos["ink"].currentText())
    yield from docker.pick("ink", "Pencils")
    yield from docker.pick("hints", "Colours")
    yield from docker.pick("reference", "Palette pic")
    text = yield from docker.run(docker.button.click, "kra_first")
    check("kra: colorized with the chosen layers", text.startswith("Done") and "beneath 'Pencils'" in text, text)
    check("kra: the roles used", mc_model().last_roles == ("Pencils", "Colours", "Palette pic"), mc_model().last_roles)
    check("kra: MangaColor beneath the chosen ink", names(root) == ["Background", "Colours", "MangaColor", "Pencils", "Ink", "Palette pic"], names(root))
    path = os.path.join(TMP, "roles.kra")
    if os.path.exists(path):
        os.remove(path)
    doc.setFileName(path)
    check("kra: saved", doc.saveAs(path), path)
    yield 0.3
    try:
        z = zipfile.ZipFile(path)
        entries = [n for n in z.namelist() if "annotations" in n]
        stored = [json.loads(z.read(n)) for n in entries if n.endswith("mangacolor-roles")]
    except Exception as exc:
        entries, stored = [str(exc)], []
    check("kra: the choices are inside the .kra", stored and stored[0]["ink"]["name"] == "Pencils" and stored[0]["reference"]["name"] == "Palette pic",
          (entries, stored))
    doc = yield from reopen(doc, path, "kra")
    if doc is None:
        return
    docker.refresh()
    texts = {r: docker.combos[r].currentText() for r in docker.combos}
    check("kra: the pickers show the saved choices after reopening",
          texts == {"ink": "Pencils", "hints": "Colours", "reference": "Palette pic"}, texts)
    doc.setActiveNode(find_child(doc.rootNode(), "Ink"))  # the decoy active: the choice still wins
    text = yield from docker.run(docker.button.click, "kra_reopened")
    check("kra: colorize after reopening uses them", text.startswith("Done") and "replaced" in text and "beneath 'Pencils'" in text, text)
    ctx["kra_doc"] = doc


@scenario("hinttool")
def scenario_hint_tool(docker):
    k = Krita.instance()
    doc = yield from build_page("mangacolor e2e hint tool", hints_name="")
    root = doc.rootNode()
    view = k.activeWindow().activeView()
    view.setForeGroundColor(__import__("krita").ManagedColor.fromQColor(__import__("PyQt5.QtGui", fromlist=["QColor"]).QColor(0, 0, 0)))
    k.action("mangacolor_new_hint_layer").trigger()
    yield 1.5  # the plugin activates the new layer once Krita's layer UI knows it
    check("hinttool: Hints created directly above the ink", names(root) == ["Background", "Ink", "Hints"], names(root))
    active = doc.activeNode()
    check("hinttool: the hint layer is active", active is not None and active.name() == "Hints", active and active.name())
    preset = view.currentBrushPreset()
    check("hinttool: a small hard round brush", preset is not None and preset.name() == "b) Basic-5 Size" and abs(view.brushSize() - 3.0) < 0.01,
          (preset and preset.name(), view.brushSize()))
    qc = view.foregroundColor().colorForCanvas(view.canvas())
    check("hinttool: a colourful foreground colour instead of black", max(qc.red(), qc.green(), qc.blue()) - min(qc.red(), qc.green(), qc.blue()) > 40, qc.name())
    check("hinttool: the docker says so", "Hint layer 'Hints' created" in docker.status.text(), docker.status.text())
    hints = find_child(root, "Hints")
    check("hinttool: the hint layer is RGB/Alpha", hints is not None and hints.colorModel() == "RGBA")
    k.action("mangacolor_new_hint_layer").trigger()
    yield 0.3
    check("hinttool: a second time finds it instead of adding another", names(root).count("Hints") == 1, names(root))


@scenario("all")
def scenario_all(docker):
    k = Krita.instance()
    for d in list(k.documents()):
        close(d)
    yield 0.5
    a = yield from build_page("chapter p1")
    b = k.createDocument(120, 90, "chapter p2 no ink", "RGBA", "U8", "", 300.0)
    for name in ("Sketch", "Flats"):
        n = b.createNode(name, "paintlayer")
        n.setPixelData(bytes([0, 0, 0, 255]) * 100, 5, 5, 10, 10)
        b.rootNode().addChildNode(n, None)
    yield from show(b)
    c = yield from build_page("chapter p3", ink_name="Lineart")
    text = yield from docker.run(lambda: ctx["actions"]["mangacolor_colorize_all"].trigger(), "colorize_all")
    check("all: summary", text.startswith("Colorized 2 of 3 open documents"), text)
    check("all: the document without an ink layer is named as skipped", "'chapter p2 no ink' (no ink layer)" in text, text)
    check("all: p1 colorized", names(a.rootNode()) == ["Background", "Hints", "MangaColor", "Ink"], names(a.rootNode()))
    check("all: p2 untouched", names(b.rootNode()) == ["Background", "Sketch", "Flats"], names(b.rootNode()))
    check("all: p3 colorized beneath its Lineart", names(c.rootNode()) == ["Background", "Hints", "MangaColor", "Lineart"], names(c.rootNode()))


@scenario("cancel")
def scenario_cancel(docker):
    if not FAKE_URL:
        return
    http(FAKE_URL, "/v1/_test/config", {"job_seconds": 120})
    real = os.environ["MANGACOLOR_URL"]
    os.environ["MANGACOLOR_URL"] = FAKE_URL
    try:
        doc = yield from build_page("mangacolor e2e cancel")
        before = state_of(doc)
        m = mc_model()
        docker.button.click()
        yield from wait_for(lambda: m.state == "running", 60, "the slow job to run")
        job = m.jobs.job_id
        yield 0.5
        check("cancel: Cancel is enabled mid-run", docker.cancel.isEnabled())
        docker.cancel.click()
        yield 0.5
        text = docker.status.text()
        report["status"]["cancel"] = text
        check("cancel: says nothing was changed", text.startswith("Cancelled: nothing was changed"), text)
        check("cancel: Colorize enabled again", docker.button.isEnabled())
        yield from wait_for(lambda: ["DELETE", f"/v1/jobs/{job}", None] in http(FAKE_URL, "/v1/_test/requests")["requests"], 10, "the DELETE")
        check("cancel: the job was deleted on the backend", True)
        yield 1.0
        check("cancel: the document is unchanged", state_of(doc) == before, state_of(doc))
        close(doc)
    finally:
        os.environ["MANGACOLOR_URL"] = real
        http(FAKE_URL, "/v1/_test/config", {"job_seconds": 0})


@scenario("bigpage")
def scenario_bigpage(docker):
    if not FAKE_URL:
        return
    k = Krita.instance()
    for d in list(k.documents()):
        close(d)
    yield 0.5
    bw, bh = 6000, 8500
    t0 = time.monotonic()
    rss0 = rss_mb()
    doc = k.createDocument(bw, bh, "mangacolor e2e 6000x8500", "RGBA", "U8", "", 600.0)
    root = doc.rootNode()
    ink = doc.createNode("Ink", "paintlayer")
    row_blank = bytes(bw * 4)
    line = bytes([0, 0, 0, 255]) * bw
    rows = []
    for y in range(bh):  # a grid of panel borders
        if y % 1000 < 6:
            rows.append(line)
        else:
            r = bytearray(row_blank)
            for x in range(0, bw, 1500):
                r[x * 4 : (x + 6) * 4] = bytes([0, 0, 0, 255]) * 6
            rows.append(bytes(r))
    ink.setPixelData(b"".join(rows), 0, 0, bw, bh)
    del rows
    root.addChildNode(ink, None)
    hints = doc.createNode("Hints", "paintlayer")
    for i, (x, y) in enumerate(((700, 500), (2200, 1500), (3700, 4500), (5200, 7500))):
        hints.setPixelData(bytes([40 * i, 200, 255 - 40 * i, 255]) * 100, x, y, 10, 10)
    root.addChildNode(hints, None)
    yield from show(doc)
    doc.setActiveNode(ink)
    report["bigpage"]["build_s"] = round(time.monotonic() - t0, 1)
    ink_hash = hashlib.sha256(bytes(ink.pixelData(0, 0, bw, bh))).hexdigest()

    real = os.environ["MANGACOLOR_URL"]
    os.environ["MANGACOLOR_URL"] = FAKE_URL
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    try:
        m = mc_model()
        rss1 = rss_mb()
        timer.start(10)
        start = time.monotonic()
        docker.button.click()  # returns after the GUI-thread part of reading the layers
        click_s = time.monotonic() - start
        ticks.append(time.monotonic())
        yield from wait_for(lambda: docker.button.isEnabled(), 300, "the 6000x8500 colorize")
        timer.stop()
        total = time.monotonic() - start
        text = docker.status.text()
        report["status"]["bigpage"] = text
        gaps = sorted((b - a for a, b in zip(ticks, ticks[1:])), reverse=True)
        rss2 = rss_mb()
        report["bigpage"].update(
            total_s=round(total, 1),
            click_blocked_s=round(click_s, 2),
            max_gui_gap_s=round(max([click_s] + gaps[:1]), 2),
            gaps_over_100ms=[round(g, 2) for g in gaps if g > 0.1][:15],
            blocked_s_over_100ms=round(sum(g for g in gaps if g > 0.1) + click_s, 2),
            plugin_stats=dict(m.stats),
            rss_mb_before=rss0, rss_mb_page_built=rss1, rss_mb_after=rss2,
        )
        log(f"bigpage: {report['bigpage']}")
        check("bigpage: 6000x8500 colorized", text.startswith("Done"), text)
        result = find_child(root, "MangaColor")
        check("bigpage: the result covers the page", result is not None and Rect_of(result.bounds()) == (0, 0, bw, bh), result and Rect_of(result.bounds()))
        check("bigpage: ink untouched", hashlib.sha256(bytes(find_child(root, "Ink").pixelData(0, 0, bw, bh))).hexdigest() == ink_hash)
        check("bigpage: no GUI freeze longer than 3 s", report["bigpage"]["max_gui_gap_s"] < 3.0, report["bigpage"])
        check("bigpage: plugin memory peak under 2.5 GB above the page", rss2["VmHWM"] - rss1["VmRSS"] < 2500, (rss1, rss2))
    finally:
        timer.stop()
        os.environ["MANGACOLOR_URL"] = real
    close(doc)
    yield 0.5


def Rect_of(q):
    return (q.x(), q.y(), q.width(), q.height())


@scenario("autostart")
def scenario_autostart(docker):
    python, root_dir = os.environ.get("MANGACOLOR_E2E_SERVER_PYTHON"), os.environ.get("MANGACOLOR_E2E_ROOT")
    if not python or not root_dir:
        return
    k = Krita.instance()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    k.writeSetting("mangacolor", "server_command", json.dumps([python, "-m", "backend", "serve", "--port", str(port)]))
    k.writeSetting("mangacolor", "cwd", root_dir)
    os.environ["MANGACOLOR_URL"] = url
    ctx["autostart_url"] = url
    doc = yield from build_page("mangacolor e2e autostart")
    text = yield from docker.run(docker.button.click, "autostart")
    check("autostart: finished with Done", text.startswith("Done"), text)
    backend_line = docker.backend.text()
    report["status"]["autostart_backend_line"] = backend_line
    check("autostart: backend line says the plugin started it", "started by MangaColor" in backend_line and url in backend_line, backend_line)
    server = mc_model().connection.server
    check("autostart: the plugin's server process runs", server.running, server.describe())
    check("autostart: Stop is enabled for a server MangaColor started", docker.dock.findChild(QPushButton, "mangacolor_backend_stop").isEnabled())
    close(doc)


@scenario("kill")
def scenario_kill(docker):
    """Issue 5's fault: the backend killed with SIGKILL mid-job while Krita waits."""
    m = mc_model()
    if not m.connection.server.running:
        check("kill: needs the server the plugin started", False, "autostart did not leave one running")
        return
    doc = yield from build_page("mangacolor e2e kill", 2400, 1800)
    before = state_of(doc)
    pid = m.connection.server.pid
    docker.button.click()
    yield from wait_for(lambda: m.jobs.job_id is not None and m.state in ("queued", "running") or not m.busy, 120, "the job to be accepted")
    check("kill: the job was accepted and runs", m.busy and m.jobs.job_id is not None, (m.state, m.status))
    os.kill(pid, signal.SIGKILL)
    yield from wait_for(lambda: docker.button.isEnabled(), 60, "the plugin to notice")
    text = docker.status.text()
    report["status"]["kill"] = text
    check("kill: a clear message", "stopped while colorizing" in text and "Nothing was changed" in text and "Press Colorize" in text, text)
    check("kill: every layer byte-identical", state_of(doc) == before, state_of(doc))
    line = docker.backend.text()
    check("kill: the backend line says it stopped", "stopped" in line, line)
    # the next Colorize notices the dead server and starts a new one with the server command
    text = yield from docker.run(docker.button.click, "kill_next")
    check("kill: the next Colorize works", text.startswith("Done"), text)
    check("kill: with a new backend process", m.connection.server.running and m.connection.server.pid not in (0, pid), (pid, m.connection.server.pid))
    check("kill: the result is there", "MangaColor" in names(doc.rootNode()), names(doc.rootNode()))
    ctx["kill_doc"] = doc


@scenario("screenshot")
def scenario_screenshot(docker):
    win = Krita.instance().activeWindow().qwindow()
    win.resize(1280, 1000)
    docker.dock.raise_()
    yield 1.0
    paths = {}
    shot_dir = os.environ.get("MANGACOLOR_E2E_SHOTS", TMP)
    os.makedirs(shot_dir, exist_ok=True)
    # the docker alone, floating at a comfortable size
    docker.dock.setFloating(True)
    docker.dock.resize(400, docker.widget.sizeHint().height() + 40)
    yield 1.0
    pix = docker.dock.grab()
    paths["docker"] = os.path.join(shot_dir, "docker.png")
    pix.save(paths["docker"])
    img = pix.toImage()
    colours = {img.pixel(x, y) for x in range(0, img.width(), 7) for y in range(0, img.height(), 7)}
    check("screenshot: the docker image is not empty", img.width() >= 200 and img.height() >= 300 and len(colours) > 20,
          (img.width(), img.height(), len(colours)))
    docker.dock.setFloating(False)
    yield 0.8
    pix = win.grab()
    paths["window"] = os.path.join(shot_dir, "docker_window.png")
    pix.save(paths["window"])
    check("screenshot: the window image is not empty", pix.width() > 600 and pix.height() > 400, (pix.width(), pix.height()))
    report["files"].update(paths)


def main():
    k = Krita.instance()
    k.setBatchmode(True)
    log(f"Krita {k.version()}, Python {sys.version.split()[0]}")
    report["krita_version"] = k.version()
    action = yield from scenario_action()
    doc = yield from build_page("mangacolor e2e")
    active = doc.activeNode()
    check("setup: the ink is the active layer", active is not None and active.name() == "Ink", active and active.name())
    docker = Docker()
    yield from scenario_backend_down(docker, doc)
    url = os.environ.get("MANGACOLOR_URL", "")
    yield from wait_backend(url, 180)
    report["model_version"] = report.get("health", {}).get("model_version")
    yield from scenario_options(docker)
    yield from scenario_pickers(docker)
    yield from scenario_rgba(docker, doc)
    yield from scenario_undo_first(doc)
    if action is not None:
        yield from scenario_again(docker, doc, action)
    yield from scenario_history(docker, doc)
    yield from scenario_selection(docker, doc)
    yield from scenario_gray(docker)
    yield from scenario_deep(docker)
    yield from scenario_kra(docker)
    from . import panels_scenarios  # issue 12: panels, palettes; Krita 5.2's Colorize Mask

    yield from panels_scenarios.scenario_panels(docker)
    yield from panels_scenarios.scenario_colorize_mask(docker)
    yield from scenario_hint_tool(docker)
    yield from scenario_all(docker)
    yield from scenario_cancel(docker)
    from .round_trip import scenario_timing, scenario_variants

    yield from scenario_timing(docker)
    yield from scenario_variants(docker)
    yield from scenario_bigpage(docker)
    yield from scenario_autostart(docker)
    yield from scenario_kill(docker)
    yield from scenario_screenshot(docker)
    mc_model().connection.server.stop()
    check("teardown: the plugin stops its server", not mc_model().connection.server.running)


def run():
    """Drive main() from Krita's event loop: each `yield seconds` returns to it for that long."""
    gen = main()

    def step():
        try:
            delay = next(gen)
        except StopIteration:
            finish(0 if all(c["ok"] for c in report["checks"]) else 1)
            return
        except BaseException as exc:
            report["error"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            log(report["error"])
            finish(2)
            return
        QTimer.singleShot(max(0, int((delay or 0) * 1000)), step)

    step()


def watchdog():
    report["error"] = f"harness watchdog: still running after {WATCHDOG_S:.0f} s"
    finish(3)


def on_window():
    QTimer.singleShot(int(WATCHDOG_S * 1000), watchdog)
    QTimer.singleShot(500, run)


if RESULT_PATH:  # only ever active when the e2e test starts Krita
    Krita.instance().notifier().windowCreated.connect(on_window)
