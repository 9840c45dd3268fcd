"""`python -m backend bench --speed`: the round trip as the Krita plugin sees it, measured through a
real server process (issue 15).

For each page (the 1414x2000 sample with its hints, and the same page upscaled to 6000x8500, a 600-dpi
page) and each transport the server speaks (`png`: the public JSON API with base64 PNG; `frames`: the
plugin's lean localhost format), it times:
- a first run: a page the server has not seen (one pixel of paper changed each time, so nothing
  cached by the ink's hash can help);
- a re-run with only the hints moved (the colorist's common case);
and splits each into the client's encoding, the HTTP round trip (the server's own stages listed),
and the client's decoding of the result. The server's peak memory is read from /proc (Linux), reset
before each page. The page paper's generator (`paper_generator.py`, random weights) is timed in the same
run on the same device at the size it would use for the sample page.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .. import frames
from . import paper_generator

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "blackjack_p007.jpg"
SAMPLE_HINTS = ROOT / "samples" / "blackjack_p007_hints.png"
BIG_SIZE = (6000, 8500)  # W x H: an A4-ish page scanned at 600 dpi
HINT_SHIFT = 6  # px the hints move between re-runs


@dataclass
class Page:
    name: str
    ink: np.ndarray  # uint8 HxW
    hints: np.ndarray  # uint8 HxWx4 RGBA


@dataclass
class Timing:
    total: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)  # the server process's CPU seconds (user + system)
    encode: list[float] = field(default_factory=list)
    decode: list[float] = field(default_factory=list)
    server: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        def med(xs: list[float]) -> float:
            return round(statistics.median(xs), 3) if xs else float("nan")

        stages = sorted({k for s in self.server for k in s})
        return {
            "runs": len(self.total),
            "total_s": med(self.total),
            "server_cpu_s": med(self.server_cpu),
            "client_encode_s": med(self.encode),
            "client_decode_s": med(self.decode),
            "server_stages_s": {k: med([s.get(k, 0.0) for s in self.server]) for k in stages},
        }


def load_pages(big: bool) -> list[Page]:
    ink = np.asarray(Image.open(SAMPLE).convert("L"))
    hints = np.asarray(Image.open(SAMPLE_HINTS).convert("RGBA"))
    pages = [Page(f"{ink.shape[1]}x{ink.shape[0]} sample", ink, hints)]
    if big:
        w, h = BIG_SIZE
        pages.append(Page(
            f"{w}x{h} (600 dpi)",
            np.asarray(Image.fromarray(ink).resize((w, h), Image.LANCZOS)),
            np.asarray(Image.fromarray(hints).resize((w, h), Image.NEAREST)),
        ))
    return pages


def _png_b64(arr: np.ndarray) -> str:
    from ..imageio import encode_png

    return base64.b64encode(encode_png(arr)).decode("ascii")


def _hint_box(hints: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(hints[..., 3])
    if len(xs) == 0:
        return (0, 0, 0, 0)
    return (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))


def encode_request(transport: str, ink: np.ndarray, hints: np.ndarray) -> tuple[bytes, str]:
    if transport == "png":
        body = {"ink": _png_b64(ink), "hints": _png_b64(hints), "references": [], "options": {}}
        return json.dumps(body).encode(), "application/json"
    x, y, w, h = _hint_box(hints)
    bgra = frames.rgba_to_bgra(hints[y : y + h, x : x + w])
    size = (ink.shape[1], ink.shape[0])
    body = frames.encode({"options": {}}, [("ink", "gray8", ink, None, None), ("hints", "bgra8", bgra, size, (x, y, w, h))])
    return body, frames.CONTENT_TYPE


def decode_result(transport: str, data: bytes) -> tuple[np.ndarray, dict]:
    if transport == "png":
        value = json.loads(data)
        from ..imageio import load_hints

        return load_hints(base64.b64decode(value["color_layer"])), value.get("seconds", {})
    fields, blobs = frames.decode(data)
    return blobs[0].full(), fields.get("seconds", {})


class Server:
    """`python -m backend serve` on a free port, with its own token (a private config folder)."""

    def __init__(self, device: str):
        self.config = tempfile.TemporaryDirectory(prefix="mangacolor-speed-")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = dict(os.environ, XDG_CONFIG_HOME=self.config.name)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "backend", "serve", "--port", str(self.port), "--device", device],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        token_file = Path(self.config.name) / "mangacolor" / "token"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.proc.stderr.read().decode()[-800:]}")
            if token_file.exists():
                try:
                    self.token = token_file.read_text().strip()
                    self.get("/v1/health")
                    return
                except (OSError, urllib.error.URLError):
                    pass
            time.sleep(0.3)
        raise RuntimeError("the server did not answer within 180 s")

    def get(self, path: str) -> bytes:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers={"Authorization": f"Bearer {self.token}"})
        return urllib.request.urlopen(req, timeout=30).read()

    def post(self, path: str, body: bytes, content_type: str) -> bytes:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=body,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": content_type},
        )
        return urllib.request.urlopen(req, timeout=600).read()

    def speaks_frames(self) -> bool:
        try:
            return bool(json.loads(self.get("/v1/health")).get("frames"))
        except (ValueError, urllib.error.URLError):
            return False

    def cpu_seconds(self) -> float:
        """The server's CPU time so far (user + system, all its threads): unlike wall time, not
        stretched by other processes on a shared machine."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return float("nan")

    def reset_peak_memory(self) -> None:
        try:
            Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
        except OSError:
            pass

    def peak_memory_mib(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            return None
        return None

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.config.cleanup()


def _one(server: Server, transport: str, ink: np.ndarray, hints: np.ndarray, timing: Timing) -> None:
    t0 = time.perf_counter()
    body, content_type = encode_request(transport, ink, hints)
    t1 = time.perf_counter()
    cpu0 = server.cpu_seconds()
    data = server.post("/v1/colorize", body, content_type)
    t2 = time.perf_counter()
    timing.server_cpu.append(server.cpu_seconds() - cpu0)
    _, seconds = decode_result(transport, data)
    t3 = time.perf_counter()
    seconds = {k: float(v) for k, v in seconds.items() if isinstance(v, (int, float))}
    seconds["http_round_trip"] = round(t2 - t1, 4)
    timing.total.append(t3 - t0)
    timing.encode.append(t1 - t0)
    timing.decode.append(t3 - t2)
    timing.server.append(seconds)


def measure_page(server: Server, page: Page, transport: str, runs: int) -> dict:
    first, rerun = Timing(), Timing()
    server.reset_peak_memory()
    _one(server, transport, page.ink, page.hints, Timing())  # warm-up: allocations, the model's first call
    for i in range(runs):
        ink = page.ink.copy()
        ink[0, i + 1] = 254 if ink[0, i + 1] == 255 else 255  # a page the server has not seen
        _one(server, transport, ink, page.hints, first)
        moved = np.roll(page.hints, HINT_SHIFT * (1 + i % 2), axis=1)
        _one(server, transport, ink, moved, rerun)
    out = {"page": page.name, "transport": transport, "first_run": first.summary(), "hints_only_rerun": rerun.summary()}
    out["rerun_over_first"] = round(out["hints_only_rerun"]["total_s"] / out["first_run"]["total_s"], 3)
    out["server_peak_mib"] = server.peak_memory_mib()
    return out


def run_speed(device: str = "cpu", runs: int = 5, big: bool = True, big_runs: int = 3) -> dict:
    import torch

    pages = load_pages(big)
    server = Server(device)
    results = []
    try:
        transports = ["png"] + (["frames"] if server.speaks_frames() else [])
        for page in pages:
            n = runs if page.ink.size < 10_000_000 else big_runs
            for transport in transports:
                print(f"speed: {page.name}, {transport}, {n} runs ...", flush=True)
                results.append(measure_page(server, page, transport, n))
    finally:
        server.close()
    paper = paper_generator.time_forward(device="cuda" if device == "cuda" else "cpu")
    sample = [r for r in results if r["page"] == pages[0].name]
    best = min(r["first_run"]["total_s"] for r in sample)
    return {
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": device,
                    "gpu": torch.cuda.get_device_name(0) if device == "cuda" and torch.cuda.is_available() else None},
        "pages": results,
        "paper_generator": paper,
        "sample_round_trip_over_paper_forward": round(best / paper["seconds"], 3),
    }


def text_report(out: dict) -> str:
    lines = [f"Speed on {out['machine']['cpu_count']} CPU cores, device {out['machine']['device']}"
             + (f" ({out['machine']['gpu']})" if out["machine"]["gpu"] else "")]
    lines.append(f"{'page':<24}{'transport':<10}{'first s':>9}{'rerun s':>9}{'rerun/first':>12}{'cpu 1st':>8}{'cpu re':>8}{'enc s':>7}{'dec s':>7}{'peak MiB':>10}  server stages (first run)")
    for r in out["pages"]:
        f, h = r["first_run"], r["hints_only_rerun"]
        stages = ", ".join(f"{k} {v:.2f}" for k, v in f["server_stages_s"].items())
        lines.append(f"{r['page']:<24}{r['transport']:<10}{f['total_s']:>9.2f}{h['total_s']:>9.2f}{r['rerun_over_first']:>12.2f}"
                     f"{f.get('server_cpu_s', float('nan')):>8.2f}{h.get('server_cpu_s', float('nan')):>8.2f}"
                     f"{f['client_encode_s']:>7.2f}{f['client_decode_s']:>7.2f}{str(r['server_peak_mib']):>10}  {stages}")
    p = out["paper_generator"]
    lines.append(f"page paper's generator ({p['parameters'] / 1e6:.1f} M parameters) at {p['size'][1]}x{p['size'][0]}: "
                 f"{p['seconds']:.2f} s per forward; sample round trip / that = {out['sample_round_trip_over_paper_forward']:.2f}")
    return "\n".join(lines)
