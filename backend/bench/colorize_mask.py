"""Krita's own Colorize Mask (lazy brush) as a bench baseline, run in Krita 5.2.9 from a Debian trixie chroot.

Krita's Colorize Mask needs Krita's Python API >= 5.2 (`ColorizeMask`); the machines we run on have 5.1 or no
Krita at all, so a Debian trixie root file system with Krita 5.2.9 is built once with debootstrap
(`build_chroot`, about 2 minutes, 1.6 GB, needs root and the network) under `.cache/krita52/chroot`
(git-ignored; `MANGACOLOR_KRITA52_ROOT` overrides it) and every run starts ONE headless Krita session in it
(`run_colorize_mask`): Xvfb on a display it picks itself, fresh HOME and XDG_* folders, /proc and /dev
bind-mounted only while the session runs, and `kritarunner` running the module `KRITA_SCRIPT` below.

What the baseline does, as a Krita user does:
- the B/W page is opened as one paint layer (opaque gray, RGBA 8-bit, sRGB),
- a Colorize Mask is added to it; every DISTINCT hint colour (pixels with alpha > 0, grouped by RGB) becomes
  one key stroke whose pixels are that colour's hint pixels (`key_strokes`), plus one white key stroke
  along the whole page border (`BORDER_PX` wide: it tells the lazy brush that the background is paper),
- Krita's default mask settings otherwise (edge detection off, edge detection size 4, clean-up 0.7,
  "limit to layer bounds" off, no transparent key stroke: the settings Krita reports are logged and kept
  in each job's result.json), `updateMask(True)`, wait until the filling stroke is done,
- the result is read from the page layer's projection, which with the mask on is the page with the mask's
  colouring composited on it: first with the mask's own blending (Multiply on an opaque page: what the user
  sees, compared with ours in `krita_composite_max_diff`), then with the mask's blending set to Copy, which gives the
  colouring alone with its alpha (`colour.bgra`). Pixels the lazy brush left unfilled (alpha 0) are white
  paper. The composite returned is `colour x ink` (Multiply, as `baselines.compose`), so every method of the
  bench is composed the same way.

Known Krita quirks avoided: `setBatchmode(True)` and `Node.save()` hang (neither is used; results are raw
bytes written by the script), pixels are BGRA, `addChildNode(child, X)` puts child above X, kritarunner
always exits 0 (success is the result files a job writes).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ROOT = Path(os.environ.get("MANGACOLOR_KRITA52_ROOT") or (REPO_ROOT / ".cache" / "krita52" / "chroot"))
MIRROR = "http://deb.debian.org/debian"
SUITE = "trixie"
PACKAGES = ("krita", "python3-pyqt5", "xvfb", "xauth")
MIN_VERSION = (5, 2)
COMPLETE_MARKER = ".mangacolor-krita52-complete"  # written by build_chroot once the chroot is usable
PATCH_TILE = 64  # key strokes are handed to Krita as non-empty tiles of this size
BORDER_PX = 3  # width of the white "paper" key stroke along the page border
SCRIPT_MODULE = "mangacolor_colorize_mask"
STARTUP_BUDGET_S = 180.0  # Krita start-up inside the chroot, before the first job starts
JOB_BUDGET_S = 120.0  # per job, plus JOB_BUDGET_S_PER_MPX per megapixel; no progress for longer = stuck
JOB_BUDGET_S_PER_MPX = 90.0
MAX_RESTARTS = 10  # sessions restarted after a stuck job (the stuck job is dropped)


class KritaUnavailable(RuntimeError):
    """The Krita 5.2 chroot cannot be built or a Krita session cannot run at all (the reason is the message)."""


@dataclass
class MaskJob:
    id: str  # unique job id, e.g. f"{case_id}/k16"
    ink: np.ndarray  # float32 HxW in [0, 1], 1 = white paper (the B/W page)
    hints: np.ndarray  # uint8 HxWx4 RGBA; pixels with alpha > 0 are colour hints


@dataclass
class KeyStroke:
    rgb: tuple[int, int, int]
    x: int  # bounding box of the stroke's pixels in page coordinates
    y: int
    width: int
    height: int
    alpha: np.ndarray  # uint8 (height, width): 255 on the stroke's pixels, 0 elsewhere

    @property
    def pixels(self) -> int:
        return int(np.count_nonzero(self.alpha))


# --- pure helpers (no Krita) ---------------------------------------------------------------------------


def border_mask(height: int, width: int, px: int = BORDER_PX) -> np.ndarray:
    """bool (height, width): a px-wide frame along the whole image border."""
    m = np.zeros((height, width), bool)
    p = max(1, min(px, (min(height, width) + 1) // 2))
    m[:p, :] = m[-p:, :] = True
    m[:, :p] = m[:, -p:] = True
    return m


def key_strokes(hints: np.ndarray, border_px: int = BORDER_PX) -> list[KeyStroke]:
    """One key stroke per distinct hint colour (RGB of the pixels whose alpha > 0) plus the white paper
    stroke on the page border (`border_px` wide; 0 = none), merged with white hints if there are any; a
    coloured hint painted on the border keeps its pixels (the paper stroke leaves them out).
    Ordered: white first when present, then by pixel count (most first), then by colour."""
    if hints.ndim != 3 or hints.shape[2] != 4 or hints.dtype != np.uint8:
        raise ValueError(f"hints must be uint8 HxWx4 RGBA, got {hints.dtype} {hints.shape}")
    h, w = hints.shape[:2]
    rgb = hints[..., :3].astype(np.int64)
    key = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    selected = hints[..., 3] > 0
    white = 0xFFFFFF
    per_colour: dict[int, np.ndarray] = {}
    if border_px > 0:
        frame = border_mask(h, w, border_px) & ~(selected & (key != white))
        if frame.any():
            per_colour[white] = np.flatnonzero(frame)
    flat_idx = np.flatnonzero(selected)
    if flat_idx.size:
        keys = key.reshape(-1)[flat_idx]
        order = np.argsort(keys, kind="stable")
        keys_sorted, idx_sorted = keys[order], flat_idx[order]
        uniq, starts = np.unique(keys_sorted, return_index=True)
        bounds = list(starts) + [len(keys_sorted)]
        for i, k in enumerate(uniq.tolist()):
            part = idx_sorted[bounds[i] : bounds[i + 1]]
            per_colour[k] = np.union1d(per_colour[k], part) if k in per_colour else part
    strokes = []
    for k, idx in per_colour.items():
        ys, xs = np.divmod(idx, w)
        x0, y0 = int(xs.min()), int(ys.min())
        bw, bh = int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1
        alpha = np.zeros((bh, bw), np.uint8)
        alpha[ys - y0, xs - x0] = 255
        strokes.append(KeyStroke(((k >> 16) & 255, (k >> 8) & 255, k & 255), x0, y0, bw, bh, alpha))
    strokes.sort(key=lambda s: (s.rgb != (255, 255, 255), -s.pixels, s.rgb))
    return strokes


def stroke_patches(stroke: KeyStroke, tile: int = PATCH_TILE) -> list[tuple[int, int, int, int, bytes]]:
    """The stroke's alpha plane as non-overlapping patches (x, y, w, h, alpha bytes) in page coordinates:
    its bounding box cut into tile x tile squares, empty ones left out (the border stroke's box is the whole
    page but only its edge tiles hold pixels). Non-overlapping matters: setKeyStrokePixelData overwrites."""
    out = []
    for ty in range(0, stroke.height, tile):
        for tx in range(0, stroke.width, tile):
            a = stroke.alpha[ty : ty + tile, tx : tx + tile]
            if a.any():
                out.append((stroke.x + tx, stroke.y + ty, a.shape[1], a.shape[0], np.ascontiguousarray(a).tobytes()))
    return out


def compose(colour: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """Colour layer x ink (Multiply), uint8; the same as `baselines.compose`."""
    from .baselines import compose as _compose

    return _compose(colour, ink)


def bgra_to_rgba(data: bytes, width: int, height: int) -> np.ndarray:
    a = np.frombuffer(data, np.uint8)
    if a.size != width * height * 4:
        raise ValueError(f"expected {width * height * 4} bytes of BGRA, got {a.size}")
    a = a.reshape(height, width, 4)
    return a[..., [2, 1, 0, 3]].copy()


def colour_from_rgba(rgba: np.ndarray) -> np.ndarray:
    """float32 HxWx3 in [0, 1]: the colouring over white paper (unfilled = alpha 0 = white)."""
    c = rgba[..., :3].astype(np.float32) / 255.0
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    return np.clip(c * a + (1.0 - a), 0.0, 1.0).astype(np.float32)


def read_result(job_dir: Path, ink: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read what the Krita script wrote for one job: (colour float32 HxWx3, composite uint8 HxWx3, info).
    Raises FileNotFoundError when the job has no complete result, RuntimeError when it failed in Krita."""
    job_dir = Path(job_dir)
    err = job_dir / "error.txt"
    res = job_dir / "result.json"
    if not res.exists():
        if err.exists():
            raise RuntimeError(err.read_text(errors="replace").strip()[-2000:])
        raise FileNotFoundError(f"no result in {job_dir}")
    info = json.loads(res.read_text())
    h, w = ink.shape
    if (info.get("width"), info.get("height")) != (w, h):
        raise RuntimeError(f"result size {info.get('width')}x{info.get('height')} != page {w}x{h}")
    rgba = bgra_to_rgba((job_dir / "colour.bgra").read_bytes(), w, h)
    colour = colour_from_rgba(rgba)
    info["unfilled_fraction"] = float(np.mean(rgba[..., 3] == 0))
    comp = compose(colour, ink)
    kc = job_dir / "composite.bgra"
    if kc.exists():  # what Krita shows (the mask's Multiply over the page) against our colour x ink
        krita = bgra_to_rgba(kc.read_bytes(), w, h)[..., :3]
        info["krita_composite_max_diff"] = int(np.abs(krita.astype(np.int16) - comp).max())
    return colour, comp, info


def write_job_inputs(job: MaskJob, job_dir: Path, border_px: int = BORDER_PX) -> dict:
    """Write one job's inputs (the page as 8-bit gray PNG, each key stroke's patches in one file) and return
    its manifest entry."""
    import cv2

    ink = np.asarray(job.ink, np.float32)
    if ink.ndim != 2:
        raise ValueError(f"job {job.id}: ink must be HxW, got {ink.shape}")
    h, w = ink.shape
    if job.hints.shape[:2] != (h, w):
        raise ValueError(f"job {job.id}: hints {job.hints.shape[:2]} != ink {(h, w)}")
    job_dir.mkdir(parents=True, exist_ok=True)
    gray = np.clip(ink * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if not cv2.imwrite(str(job_dir / "ink.png"), gray):
        raise RuntimeError(f"job {job.id}: could not write {job_dir / 'ink.png'}")
    entries = []
    for i, st in enumerate(key_strokes(job.hints, border_px)):
        name = f"stroke{i:03d}.a8"
        patches, offset = [], 0
        with open(job_dir / name, "wb") as f:
            for x, y, pw, ph, data in stroke_patches(st):
                f.write(data)
                patches.append([x, y, pw, ph, offset])
                offset += len(data)
        entries.append({"rgb": list(st.rgb), "file": name, "patches": patches, "pixels": st.pixels})
    return {"id": job.id, "dir": job_dir.name, "width": w, "height": h, "strokes": entries}


# --- the script Krita runs -----------------------------------------------------------------------------

KRITA_SCRIPT = r'''
"""Run by kritarunner inside the Krita 5.2 chroot: colorize-mask jobs from MANGACOLOR_CM_SESSION/manifest.json."""
import json
import os
import sys
import time
import traceback

from krita import Krita, ManagedColor
from PyQt5.QtCore import QByteArray, QCoreApplication
from PyQt5.QtGui import QColor, QImage


def _log(msg):
    sys.stdout.write("[mangacolor-cm] %s\n" % msg)
    sys.stdout.flush()


def _settle(doc, rounds=4):
    for _ in range(rounds):
        QCoreApplication.processEvents()
        doc.waitForDone()
        QCoreApplication.processEvents()


def _write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _settings(mask):
    out = {}
    for name in ("useEdgeDetection", "edgeDetectionSize", "cleanUpAmount", "limitToDeviceBounds",
                 "transparencyIndex", "showOutput", "editKeyStrokes", "blendingMode", "opacity"):
        try:
            out[name] = getattr(mask, name)()
        except Exception as e:  # pragma: no cover - informative only
            out[name] = "error: %s" % e
    return out


def _run_job(app, session, job):
    d = os.path.join(session, job["dir"])
    _write(os.path.join(d, "started"), b"")
    t0 = time.monotonic()
    w, h = int(job["width"]), int(job["height"])
    doc = app.createDocument(w, h, "mangacolor-cm", "RGBA", "U8", "", 72.0)
    if doc is None:
        raise RuntimeError("createDocument returned None")
    try:
        root = doc.rootNode()
        others = list(root.childNodes())
        layer = doc.createNode("page", "paintlayer")
        root.addChildNode(layer, None)
        for n in others:
            n.remove()
        page = QImage(os.path.join(d, "ink.png"))
        if page.isNull() or page.width() != w or page.height() != h:
            raise RuntimeError("could not read the page ink.png (%dx%d)" % (page.width(), page.height()))
        page = page.convertToFormat(QImage.Format_ARGB32)  # BGRA bytes in memory (little-endian), 4*w per line
        layer.setPixelData(QByteArray(page.constBits().asstring(page.byteCount())), 0, 0, w, h)
        _settle(doc, 2)

        mask = doc.createColorizeMask("lazy brush")
        layer.addChildNode(mask, None)
        colors = [ManagedColor.fromQColor(QColor(*st["rgb"])) for st in job["strokes"]]
        mask.initializeKeyStrokeColors(colors, -1)
        for color, st in zip(colors, job["strokes"]):
            with open(os.path.join(d, st["file"]), "rb") as f:
                data = f.read()
            for x, y, pw, ph, offset in st["patches"]:
                chunk = QByteArray(data[offset:offset + pw * ph])
                if not mask.setKeyStrokePixelData(chunk, color, x, y, pw, ph):
                    raise RuntimeError("setKeyStrokePixelData failed for colour %s" % (st["rgb"],))
        got = [[round(v * 255) for v in c.components()] for c in mask.keyStrokesColors()]  # B, G, R, A
        mask.setEditKeyStrokes(False)
        mask.setShowOutput(True)
        _settle(doc, 2)
        settings = _settings(mask)
        t1 = time.monotonic()
        mask.updateMask(True)
        _settle(doc, 6)
        t2 = time.monotonic()
        comp = bytes(layer.projectionPixelData(0, 0, w, h))
        mode = mask.blendingMode()
        mask.setBlendingMode("copy")
        _settle(doc, 4)
        colour = bytes(layer.projectionPixelData(0, 0, w, h))
        if mask.blendingMode() != "copy":
            raise RuntimeError("could not set the mask's blending mode to copy (it is %r)" % mask.blendingMode())
        if len(colour) != w * h * 4 or len(comp) != w * h * 4:
            raise RuntimeError("projection has %d / %d bytes, expected %d" % (len(colour), len(comp), w * h * 4))
        _write(os.path.join(d, "composite.bgra"), comp)
        _write(os.path.join(d, "colour.bgra"), colour)
        info = {
            "id": job["id"], "width": w, "height": h, "strokes": len(job["strokes"]),
            "stroke_colours_in_krita": got, "mask_blending_mode": mode, "settings": settings,
            "seconds_setup": t1 - t0, "seconds_fill": t2 - t1, "seconds_total": time.monotonic() - t0,
        }
        _write(os.path.join(d, "result.json"), json.dumps(info).encode())
        _log("job %s done in %.1f s (fill %.1f s)" % (job["id"], info["seconds_total"], t2 - t1))
    finally:
        try:
            doc.close()
        except Exception:
            pass


def main(*args):
    session = os.environ["MANGACOLOR_CM_SESSION"]
    try:
        app = Krita.instance()
        with open(os.path.join(session, "manifest.json")) as f:
            manifest = json.load(f)
        _write(os.path.join(session, "alive"), json.dumps({"version": app.version()}).encode())
        _log("Krita %s, %d jobs" % (app.version(), len(manifest["jobs"])))
        for job in manifest["jobs"]:
            try:
                _run_job(app, session, job)
            except Exception:
                msg = traceback.format_exc()
                _log("job %s failed: %s" % (job.get("id"), msg))
                _write(os.path.join(session, job["dir"], "error.txt"), msg.encode())
    except Exception:
        _write(os.path.join(session, "fatal.txt"), traceback.format_exc().encode())
    finally:
        _write(os.path.join(session, "done"), b"")
    sys.stdout.flush()
'''


# --- the chroot ----------------------------------------------------------------------------------------


def _dpkg_version(root: Path, package: str) -> str | None:
    status = root / "var" / "lib" / "dpkg" / "status"
    try:
        text = status.read_text(errors="replace")
    except OSError:
        return None
    for block in text.split("\n\n"):
        lines = block.splitlines()
        if f"Package: {package}" in lines and any(l.startswith("Status:") and l.endswith(" installed") for l in lines):
            for l in lines:
                if l.startswith("Version:"):
                    return l.split(":", 1)[1].strip()
    return None


def _version_tuple(v: str) -> tuple[int, ...]:
    v = v.split(":", 1)[-1]
    parts = []
    for p in v.replace("+", ".").replace("-", ".").split(".")[:3]:
        if not p.isdigit():
            break
        parts.append(int(p))
    return tuple(parts)


def status(root: Path = DEFAULT_ROOT) -> tuple[bool, str]:
    """Cheap: is a usable Krita 5.2 chroot at `root`? (ok, human note)."""
    root = Path(root)
    if not root.is_dir():
        return False, f"no Krita 5.2 chroot at {root} (build it: python -m backend.bench.colorize_mask --build)"
    if not (root / COMPLETE_MARKER).exists():
        return False, f"the Krita 5.2 chroot at {root} is incomplete (rebuild it: python -m backend.bench.colorize_mask --build)"
    missing = [p for p in ("usr/bin/kritarunner", "usr/bin/Xvfb") if not (root / p).exists()]
    if missing:
        return False, f"the chroot at {root} lacks {', '.join(missing)}"
    version = _dpkg_version(root, "krita") or "?"
    if _version_tuple(version) < MIN_VERSION:
        return False, f"the chroot at {root} has Krita {version}; the Colorize Mask API needs >= 5.2"
    if os.geteuid() != 0:
        return False, f"Krita {version} chroot at {root}, but running it needs root (chroot, bind mounts)"
    return True, f"Krita {version} in the Debian {SUITE} chroot at {root}"


def _mounts_under(path: Path) -> list[str]:
    path = os.path.realpath(path)
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                target = line.split()[4].replace("\\040", " ")
                if target == path or target.startswith(path + "/"):
                    out.append(target)
    except OSError:
        pass
    return out


def _safe_rmtree(path: Path) -> None:
    """Remove a (partial) chroot, never while something is mounted inside it (a bound /dev would go too)."""
    mounted = _mounts_under(path)
    if mounted:
        raise KritaUnavailable(f"refusing to remove {path}: still mounted inside it: {', '.join(mounted)}")
    shutil.rmtree(path, ignore_errors=True)


def build_chroot(root: Path = DEFAULT_ROOT, log: Callable[[str], None] = print) -> None:
    """debootstrap the Krita 5.2 chroot at `root` if it is missing (about 2 min, 1.6 GB). Raises KritaUnavailable
    when impossible (not root, no debootstrap, no network, ...)."""
    root = Path(root)
    ok, note = status(root)
    if ok:
        log(f"colorize mask: {note}: already there")
        return
    if os.geteuid() != 0:
        raise KritaUnavailable("building the Krita 5.2 chroot needs root (debootstrap, chroot)")
    debootstrap = shutil.which("debootstrap") or next((p for p in ("/usr/sbin/debootstrap", "/sbin/debootstrap") if os.path.exists(p)), None)
    if debootstrap is None and shutil.which("apt-get"):
        log("colorize mask: installing debootstrap with apt-get")
        r = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "debootstrap"], capture_output=True, text=True)
        if r.returncode != 0:
            subprocess.run(["apt-get", "update"], capture_output=True)
            r = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "debootstrap"], capture_output=True, text=True)
        debootstrap = shutil.which("debootstrap") or ("/usr/sbin/debootstrap" if os.path.exists("/usr/sbin/debootstrap") else None)
        if debootstrap is None:
            raise KritaUnavailable(f"debootstrap is missing and apt-get could not install it: {r.stderr.strip()[-500:]}")
    if debootstrap is None:
        raise KritaUnavailable("debootstrap is missing (apt-get install debootstrap)")
    scripts = Path("/usr/share/debootstrap/scripts")
    if scripts.is_dir() and not (scripts / SUITE).exists():
        raise KritaUnavailable(f"this debootstrap does not know Debian {SUITE} (update debootstrap)")
    root.parent.mkdir(parents=True, exist_ok=True)
    partial = root.with_name(root.name + ".partial")
    if partial.exists():
        _safe_rmtree(partial)
    if root.exists():  # incomplete or too old
        _safe_rmtree(root)
    cmd = [debootstrap, "--variant=minbase", "--include=" + ",".join(PACKAGES), SUITE, str(partial), MIRROR]
    log(f"colorize mask: building the Krita 5.2 chroot (a few minutes): {' '.join(cmd)}")
    logfile = root.with_name(root.name + ".build.log")
    t0 = time.monotonic()
    with open(logfile, "wb") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    tail = logfile.read_text(errors="replace")[-1500:]
    if r.returncode != 0:
        _safe_rmtree(partial)
        raise KritaUnavailable(f"debootstrap failed ({r.returncode}; network? mirror {MIRROR}); log {logfile}:\n{tail}")
    _finish_chroot(partial, root)
    ok, note = status(root)
    if not ok:
        raise KritaUnavailable(f"the chroot was built but is not usable: {note}")
    log(f"colorize mask: {note} (built in {time.monotonic() - t0:.0f} s)")


def _finish_chroot(partial: Path, root: Path) -> None:
    version = _dpkg_version(partial, "krita")
    if version is None:
        raise KritaUnavailable(f"debootstrap finished but krita is not installed in {partial}")
    apt_cache = partial / "var" / "cache" / "apt" / "archives"
    for deb in apt_cache.glob("*.deb"):
        deb.unlink()
    (partial / COMPLETE_MARKER).write_text(json.dumps({"krita": version, "suite": SUITE, "built": time.time()}) + "\n")
    os.replace(partial, root)


# --- one Krita session ---------------------------------------------------------------------------------


def _stop_group(proc: subprocess.Popen | None, grace: float = 5.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)


def _pids_rooted_in(root: Path) -> list[int]:
    """Processes whose root directory is this chroot (ours: sessions on one chroot are serialised by a lock)."""
    target = os.path.realpath(root)
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/root") == target:
                out.append(int(entry))
        except OSError:
            continue
    return out


def _kill_leftovers(root: Path, log: Callable[[str], None]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _pids_rooted_in(root)
        if not pids:
            return
        if sig == signal.SIGTERM:
            log(f"colorize mask: stopping {len(pids)} leftover process(es) in the chroot: {pids}")
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _pids_rooted_in(root):
            time.sleep(0.2)


class _Mounts:
    """/proc and /dev bound into the chroot for the duration of a `with` block; always unmounted."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.done: list[Path] = []

    def __enter__(self):
        try:
            for src in ("/proc", "/dev"):
                dst = self.root / src.lstrip("/")
                dst.mkdir(exist_ok=True)
                r = subprocess.run(["mount", "--bind", src, str(dst)], capture_output=True, text=True)
                if r.returncode != 0:
                    raise KritaUnavailable(f"cannot bind-mount {src} into the chroot: {r.stderr.strip()}")
                self.done.append(dst)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        for dst in reversed(self.done):
            r = subprocess.run(["umount", str(dst)], capture_output=True, text=True)
            if r.returncode != 0:
                time.sleep(1)
                r = subprocess.run(["umount", str(dst)], capture_output=True, text=True)
                if r.returncode != 0:
                    subprocess.run(["umount", "-l", str(dst)], capture_output=True, text=True)
        self.done.clear()
        return False


def _chroot_env(session_in: str, display: str | None) -> dict:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": f"{session_in}/home",
        "XDG_CONFIG_HOME": f"{session_in}/config",
        "XDG_DATA_HOME": f"{session_in}/data",
        "XDG_CACHE_HOME": f"{session_in}/cache",
        "XDG_RUNTIME_DIR": f"{session_in}/runtime",
        "TMPDIR": f"{session_in}/tmp",
        "DBUS_SESSION_BUS_ADDRESS": "disabled:",
        "QT_QPA_PLATFORM": "xcb",
        "MANGACOLOR_CM_SESSION": session_in,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": f"{session_in}/data/krita/pykrita",  # where kritarunner -s finds the script module
    }
    if display:
        env["DISPLAY"] = display
    return env


def _start_xvfb(root: Path, env: dict, log_path: Path) -> tuple[subprocess.Popen, str]:
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(
            ["chroot", str(root), "/usr/bin/Xvfb", "-displayfd", str(write_fd), "-noreset", "-nolisten", "tcp",
             "-screen", "0", "1024x768x24"],
            pass_fds=(write_fd,), env=env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )
    finally:
        os.close(write_fd)
    reader = os.fdopen(read_fd, "rb", buffering=0)
    proc._mangacolor_reader = reader  # held open while Xvfb runs (it writes again at a server reset)
    number = b""
    deadline = time.monotonic() + 30
    import select

    while not number.endswith(b"\n") and time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([reader], [], [], 0.5)
        if ready:
            chunk = reader.read(16)
            if not chunk:
                break
            number += chunk
    if not number.strip():
        _stop_group(proc)
        reader.close()
        raise KritaUnavailable(f"Xvfb in the chroot did not report a display: {log_path.read_text(errors='replace')[-1500:]}")
    return proc, ":" + number.decode().strip()


def _job_budget(job: MaskJob) -> float:
    h, w = job.ink.shape[:2]
    return JOB_BUDGET_S + JOB_BUDGET_S_PER_MPX * (h * w / 1e6)


def _session(root: Path, jobs: list[MaskJob], log: Callable[[str], None], deadline: float, keep: bool) -> tuple[dict, list[str], str | None]:
    """One Krita session over `jobs`. Returns (results id -> (colour, composite, info), ids not reached, id of
    the job that got stuck or None). Raises KritaUnavailable if Krita could not run at all."""
    tmp_root = root / "tmp"
    tmp_root.mkdir(exist_ok=True)
    session = Path(tempfile.mkdtemp(prefix="mangacolor-cm-", dir=tmp_root))
    session_in = "/" + str(session.relative_to(root))
    results: dict[str, tuple] = {}
    xvfb = krita = None
    try:
        for sub in ("home", "config", "data", "cache", "runtime", "tmp", "swap", "data/krita/pykrita"):
            (session / sub).mkdir(parents=True, exist_ok=True)
        (session / "runtime").chmod(0o700)
        (session / "data" / "krita" / "pykrita" / f"{SCRIPT_MODULE}.py").write_text(KRITA_SCRIPT)
        (session / "config" / "kritarc").write_text(f"swaplocation={session_in}/swap\n")
        entries = []
        for i, job in enumerate(jobs):
            entries.append(write_job_inputs(job, session / f"job{i:04d}"))
        (session / "manifest.json").write_text(json.dumps({"jobs": entries}))
        by_dir = {e["dir"]: (job, e) for job, e in zip(jobs, entries)}
        env = _chroot_env(session_in, None)
        os.chmod(session, 0o755)

        with _Mounts(root):
            try:
                xvfb, display = _start_xvfb(root, env, session / "xvfb.log")
                env = _chroot_env(session_in, display)
                krita_log = session / "krita.log"
                t_start = time.monotonic()
                krita = subprocess.Popen(
                    ["chroot", str(root), "/usr/bin/kritarunner", "-s", SCRIPT_MODULE, "-f", "main"],
                    env=env, cwd="/", stdout=open(krita_log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
                )
                # progress: a job is "started" when its folder has `started`; stuck = no progress within its budget
                last_progress = time.monotonic()
                budget = STARTUP_BUDGET_S + (_job_budget(jobs[0]) if jobs else 0)
                finished: set[str] = set()
                stuck = None
                current = None
                while True:
                    # both looked at before the scan, so the scan sees every file written before they happened
                    done = (session / "done").exists()
                    exited = krita.poll() is not None
                    for d, (job, _e) in by_dir.items():
                        if d in finished:
                            continue
                        jd = session / d
                        if (jd / "result.json").exists() or (jd / "error.txt").exists():
                            finished.add(d)
                            last_progress = time.monotonic()
                            try:
                                colour, comp, info = read_result(jd, np.asarray(job.ink, np.float32))
                                results[job.id] = (colour, comp, info)
                            except Exception as e:
                                msg = str(e).strip()
                                log(f"colorize mask: job {job.id} failed in Krita: {msg.splitlines()[-1] if msg else repr(e)}")
                            if not keep:
                                shutil.rmtree(jd, ignore_errors=True)
                        elif (jd / "started").exists() and current != d:
                            current = d
                            last_progress = time.monotonic()
                            budget = _job_budget(job)
                    if done or exited:
                        if not done and current and current not in finished:
                            stuck = by_dir[current][0].id
                            log(f"colorize mask: Krita exited ({krita.poll()}) during job {stuck}")
                        break
                    now = time.monotonic()
                    if now - last_progress > budget or now > deadline:
                        stuck = by_dir[current][0].id if current and current not in finished else None
                        why = "overall timeout" if now > deadline else f"no progress for {budget:.0f} s"
                        log(f"colorize mask: Krita session stopped ({why}){'; stuck on job ' + stuck if stuck else ''}")
                        break
                    time.sleep(0.25)
                # the done marker is written last; give Krita a moment to quit by itself
                if krita.poll() is None and (session / "done").exists():
                    try:
                        krita.wait(15)
                    except subprocess.TimeoutExpired:
                        pass
                out_tail = krita_log.read_text(errors="replace")[-3000:] if krita_log.exists() else ""
                if not (session / "alive").exists():
                    fatal = (session / "fatal.txt").read_text(errors="replace") if (session / "fatal.txt").exists() else ""
                    raise KritaUnavailable(
                        f"Krita did not run the script (exit {krita.poll()}, {time.monotonic() - t_start:.0f} s)."
                        f"{' ' + fatal[-1500:] if fatal else ''}\n--- Krita output (tail) ---\n{out_tail}"
                    )
                if (session / "fatal.txt").exists():
                    log(f"colorize mask: Krita script error: {(session / 'fatal.txt').read_text(errors='replace')[-1500:]}")
                not_reached = [by_dir[d][0].id for d in by_dir if d not in finished and by_dir[d][0].id != stuck]
                return results, not_reached, stuck
            finally:
                _stop_group(krita, grace=5)
                if xvfb is not None:
                    _stop_group(xvfb, grace=5)
                    xvfb._mangacolor_reader.close()
                _kill_leftovers(root, log)
    finally:
        if keep:
            log(f"colorize mask: session files kept in {session}")
        else:
            shutil.rmtree(session, ignore_errors=True)


def run_colorize_mask(
    jobs: list[MaskJob],
    root: Path = DEFAULT_ROOT,
    log: Callable[[str], None] = print,
    timeout_s: float | None = None,
    keep_files: bool = False,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Run all jobs in ONE Krita 5.2 session (restarted only after a stuck job, which is dropped).

    Returns job id -> (colour float32 HxWx3 in [0, 1], composite uint8 HxWx3 = colour x ink). Jobs that failed
    inside Krita are missing (logged with the reason). Raises KritaUnavailable if the session cannot run at all.
    `timeout_s`: for the whole call; default: Krita start-up plus each job's budget (120 s + 90 s per megapixel).
    Per-job details (seconds, Krita's mask settings, the fraction left unfilled) go to `last_run_info`."""
    root = Path(root).resolve()
    last_run_info.clear()
    if not jobs:
        return {}
    ids = [j.id for j in jobs]
    if len(set(ids)) != len(ids):
        raise ValueError("job ids must be unique")
    ok, note = status(root)
    if not ok:
        raise KritaUnavailable(note)
    if timeout_s is None:
        timeout_s = STARTUP_BUDGET_S * (1 + MAX_RESTARTS) + sum(_job_budget(j) for j in jobs)
    deadline = time.monotonic() + timeout_s
    lock_path = root.with_name(root.name + ".session.lock")
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pending = list(jobs)
        restarts = 0
        t0 = time.monotonic()
        while pending:
            try:
                results, not_reached, stuck = _session(root, pending, log, deadline, keep_files)
            except KritaUnavailable as e:
                if not restarts:
                    raise
                log(f"colorize mask: the restarted Krita session failed; {len(pending)} job(s) not run: {e}")
                break
            for jid, (colour, comp, info) in results.items():
                out[jid] = (colour, comp)
                last_run_info[jid] = info
            if stuck:
                log(f"colorize mask: job {stuck} dropped (Krita got stuck or exited on it)")
            if not not_reached:
                break
            if time.monotonic() > deadline or restarts >= MAX_RESTARTS or (not results and not stuck):
                log(f"colorize mask: {len(not_reached)} job(s) not run: {', '.join(not_reached[:10])}{' ...' if len(not_reached) > 10 else ''}")
                break
            restarts += 1
            log(f"colorize mask: restarting Krita for the {len(not_reached)} remaining job(s)")
            pending = [j for j in pending if j.id in set(not_reached)]
        secs = [last_run_info[j]["seconds_total"] for j in out if "seconds_total" in last_run_info.get(j, {})]
        log(f"colorize mask: {len(out)}/{len(jobs)} jobs in {time.monotonic() - t0:.0f} s"
            + (f" ({np.mean(secs):.1f} s per job inside Krita)" if secs else ""))
    return out


last_run_info: dict[str, dict] = {}


# --- synthetic checks / CLI ----------------------------------------------------------------------------


def synthetic_circles(size: int = 128) -> MaskJob:
    """Two ink circles; a red dot inside the left one, a blue dot inside the right one."""
    import cv2

    h, w = size, size * 2
    ink = np.full((h, w), 255, np.uint8)
    r = size // 3
    cv2.circle(ink, (size // 2, h // 2), r, 0, 3)
    cv2.circle(ink, (size + size // 2, h // 2), r, 0, 3)
    hints = np.zeros((h, w, 4), np.uint8)
    hints[h // 2 - 2 : h // 2 + 2, size // 2 - 2 : size // 2 + 2] = (255, 0, 0, 255)
    hints[h // 2 - 2 : h // 2 + 2, size + size // 2 - 2 : size + size // 2 + 2] = (0, 0, 255, 255)
    return MaskJob("selftest/circles", ink.astype(np.float32) / 255.0, hints)


def check_circles(job: MaskJob, colour: np.ndarray) -> list[str]:
    """Problems with the two-circle result (empty = correct)."""
    h, w = job.ink.shape
    size = h
    r = size // 3
    yy, xx = np.mgrid[:h, :w]
    problems = []
    for cx, want, name in ((size // 2, (1, 0, 0), "left/red"), (size + size // 2, (0, 0, 1), "right/blue")):
        inside = (yy - h // 2) ** 2 + (xx - cx) ** 2 < (r - 4) ** 2
        got = colour[inside].mean(0)
        if np.abs(got - np.array(want)).max() > 0.05:
            problems.append(f"{name} circle is {np.round(got, 3).tolist()}, expected {want}")
    outside = np.ones((h, w), bool)
    for cx in (size // 2, size + size // 2):
        outside &= (yy - h // 2) ** 2 + (xx - cx) ** 2 > (r + 4) ** 2
    got = colour[outside].mean(0)
    if np.abs(got - 1.0).max() > 0.05:
        problems.append(f"background is {np.round(got, 3).tolist()}, expected white")
    return problems


def synthetic_page(height: int, width: int, colours: int, seed: int = 0) -> MaskJob:
    """A page of random ink circles and lines, one hint dot of a distinct colour in `colours` of the circles."""
    import cv2

    rng = np.random.default_rng(seed)
    ink = np.full((height, width), 255, np.uint8)
    hints = np.zeros((height, width, 4), np.uint8)
    n = max(colours, 8)
    centres = []
    for _ in range(n):
        r = int(rng.integers(min(height, width) // 30 + 5, min(height, width) // 8 + 10))
        cx, cy = int(rng.integers(r, width - r)), int(rng.integers(r, height - r))
        cv2.circle(ink, (cx, cy), r, 0, 2)
        centres.append((cx, cy))
    for _ in range(n // 2):
        p = rng.integers(0, [width, height], size=(2, 2))
        cv2.line(ink, tuple(int(v) for v in p[0]), tuple(int(v) for v in p[1]), 0, 2)
    for i, (cx, cy) in enumerate(centres[:colours]):
        rgb = rng.integers(0, 256, 3)
        hints[cy - 2 : cy + 3, cx - 2 : cx + 3] = (*rgb.tolist(), 255)
    return MaskJob(f"synthetic/{width}x{height}/k{colours}", ink.astype(np.float32) / 255.0, hints)


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m backend.bench.colorize_mask", description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=f"the chroot (default {DEFAULT_ROOT})")
    p.add_argument("--build", action="store_true", help="debootstrap the Krita 5.2 chroot if missing")
    p.add_argument("--status", action="store_true", help="say whether the chroot is usable")
    p.add_argument("--selftest", action="store_true", help="two circles, red and blue dots: check the colours")
    p.add_argument("--time", nargs="*", default=[], metavar="WxH[:K]", help="also time synthetic pages, e.g. 512x512:16 1414x2000:64")
    p.add_argument("--keep", action="store_true", help="keep the session folder (inputs, outputs, Krita log)")
    p.add_argument("--out", type=Path, help="write the selftest images (colour, composite) here")
    a = p.parse_args(argv)
    if a.build:
        try:
            build_chroot(a.root)
        except KritaUnavailable as e:
            print(f"cannot build: {e}", file=sys.stderr)
            return 2
    if a.status or not (a.build or a.selftest or a.time):
        ok, note = status(a.root)
        print(("ok: " if ok else "unavailable: ") + note)
        if not (a.selftest or a.time):
            return 0 if ok else 1
    if a.selftest or a.time:
        jobs = [synthetic_circles()] if a.selftest else []
        for spec in a.time:
            size, _, k = spec.partition(":")
            w, h = (int(v) for v in size.lower().split("x"))
            jobs.append(synthetic_page(h, w, int(k or 16)))
        t0 = time.monotonic()
        try:
            res = run_colorize_mask(jobs, a.root, keep_files=a.keep)
        except KritaUnavailable as e:
            print(f"unavailable: {e}", file=sys.stderr)
            return 2
        print(f"{len(res)}/{len(jobs)} jobs in {time.monotonic() - t0:.1f} s (one Krita session)")
        rc = 0 if len(res) == len(jobs) else 1
        for job in jobs:
            info = last_run_info.get(job.id, {})
            if job.id not in res:
                print(f"  {job.id}: FAILED")
                continue
            h, w = job.ink.shape
            print(f"  {job.id}: {w}x{h}, {info.get('strokes')} key strokes, {info.get('seconds_total', float('nan')):.1f} s "
                  f"(fill {info.get('seconds_fill', float('nan')):.1f} s), unfilled {info.get('unfilled_fraction', 0):.3f}, "
                  f"Krita's own composite differs by <= {info.get('krita_composite_max_diff')}")
            if job.id == "selftest/circles":
                print(f"  mask settings: {info.get('settings')}")
                problems = check_circles(job, res[job.id][0])
                print("  selftest: " + ("OK (red, blue, white background)" if not problems else "FAILED: " + "; ".join(problems)))
                rc = rc or (1 if problems else 0)
            if a.out:
                import cv2

                a.out.mkdir(parents=True, exist_ok=True)
                stem = job.id.replace("/", "_")
                colour, comp = res[job.id]
                cv2.imwrite(str(a.out / f"{stem}_colour.png"), cv2.cvtColor((colour * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR))
                cv2.imwrite(str(a.out / f"{stem}_composite.png"), cv2.cvtColor(comp, cv2.COLOR_RGB2BGR))
        return rc
    return 0


if __name__ == "__main__":
    sys.exit(_main())
