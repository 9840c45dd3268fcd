"""The bench loop: every method on every case and condition, scored the same way."""

from __future__ import annotations

import math
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import baselines, metrics
from .data import HINT_COUNTS, REAL_HINT_COUNTS, Case, RealPage
from .resources import measure, memory_method

SHIFT_PX = 16
METHOD_ORDER = ("ours", "levin", "flatfill", "none")
METHOD_LABEL = {
    "ours": "MangaColor",
    "levin": "Levin et al. 2004",
    "flatfill": "flat fill",
    "none": "no colour",
    "krita": "Krita Colorize Mask",
}

GT_METRICS = {
    "delta_e": ("mean CIEDE2000 of the output vs the ground truth over non-ink pixels", "dE00", "lower"),
    "hint_adherence": ("mean CIEDE2000 between the output and the hint colour at the hint pixels (undefined for k=0)", "dE00", "lower"),
    "colourfulness_ratio": ("Hasler-Suesstrunk colourfulness of the output / of the ground truth", "ratio", "closer to 1"),
    "palette_fidelity": ("216-bin RGB histogram intersection of the output with the reference image", "0..1", "higher"),
    "ink_preservation": ("share of ink pixels (ink < 0.5) still ink in the output (luma < 0.5)", "0..1", "higher"),
    "white_preservation": ("share of the large white areas of the page (paper regions >= 0.1 % of the page: background, balloons, "
                           "shapes left white) that are also white in the ground truth, left unchanged (dE00 < 5)", "0..1", "higher"),
    "seconds": ("wall seconds for one page (the method alone, not the metrics)", "s", "lower"),
    "cpu_seconds": ("CPU seconds of the process (all threads) for one page: less sensitive than wall time to other load on the machine", "s", "lower"),
    "peak_mb": ("peak resident memory of the process during the call", "MiB", "lower"),
    "delta_mb": ("peak resident memory during the call minus resident memory before it", "MiB", "lower"),
}
REAL_METRICS = {
    "ink_preservation": GT_METRICS["ink_preservation"],
    "balloon_preservation": ("share of balloon-like white regions of the page left unchanged (dE00 < 5)", "0..1", "higher"),
    "shift_consistency": (f"mean CIEDE2000 on the overlap between the output of the page and of the page shifted by {SHIFT_PX} px (non-ink pixels)", "dE00", "lower"),
    "seconds": GT_METRICS["seconds"],
    "cpu_seconds": GT_METRICS["cpu_seconds"],
    "peak_mb": GT_METRICS["peak_mb"],
    "delta_mb": GT_METRICS["delta_mb"],
}


def cond_name(k: int, ref: bool) -> str:
    return f"k{k}" + ("+ref" if ref else "")


GT_CONDITIONS = [(k, ref) for ref in (False, True) for k in HINT_COUNTS]
REAL_CONDITIONS = [(k, False) for k in REAL_HINT_COUNTS]

Runner = Callable[[np.ndarray, "np.ndarray | None", list], np.ndarray]  # (ink, hints, refs) -> composite


@dataclass
class Results:
    per_case: dict = field(default_factory=dict)  # set -> case id -> method -> condition -> metric -> value
    case_info: dict = field(default_factory=dict)  # set -> list of case dicts
    thumbs: dict = field(default_factory=dict)  # case id -> {column: image}
    model_seconds: float = 0.0
    baseline_seconds: float = 0.0


def make_ours(device: str, weights: Path | None, log=print) -> tuple[Runner, dict]:
    """Load the model once (timed apart) and return a runner for it, plus facts about it."""
    from ..model import DEFAULT_WEIGHTS
    from ..pipeline import colorize, get_model
    from ..request import ColorizeOptions, ColorizeRequest

    path = Path(weights) if weights else DEFAULT_WEIGHTS
    t0 = time.perf_counter()
    model = get_model(device, path)
    load_s = time.perf_counter() - t0
    warm = np.ones((256, 256), np.float32)
    warm[::32] = 0.0
    t0 = time.perf_counter()
    colorize(ColorizeRequest(ink=warm), model=model)
    warm_s = time.perf_counter() - t0
    options = ColorizeOptions()

    def run(ink: np.ndarray, hints: np.ndarray | None, refs: list) -> np.ndarray:
        req = ColorizeRequest(ink=ink, hints=hints, references=list(refs), options=options)
        return colorize(req, model=model).composite

    info = {
        "model_version": model.version,
        "weights": str(path),
        "device": str(model.device),
        "options": options.__dict__,
        "load_seconds": round(load_s, 3),
        "warmup_seconds": round(warm_s, 3),
    }
    log(f"model {model.version} on {model.device} (load {load_s:.2f}s, warm-up {warm_s:.2f}s)")
    return run, info


def _call(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, dict]:
    with measure() as m:
        out = fn()
    return out, {"seconds": m.seconds, "cpu_seconds": m.cpu_seconds, "peak_mb": m.peak_mb, "delta_mb": m.delta_mb}


def _baseline(name: str) -> Runner:
    fn = baselines.METHODS[name]

    def run(ink, hints, refs):
        return fn(ink, hints)[1]

    return run


THUMB_SIDE = 480


def _small(img: np.ndarray) -> np.ndarray:
    """A copy at most THUMB_SIDE px a side (area filter), for the contact sheet."""
    import cv2

    h, w = img.shape[:2]
    s = THUMB_SIDE / max(h, w)
    if s >= 1:
        return img.copy()
    return cv2.resize(np.ascontiguousarray(img), (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _thumb_hints(ink: np.ndarray, hints: np.ndarray | None) -> np.ndarray:
    """The page faded, hint dots drawn larger so they show at thumbnail size."""
    import cv2

    base = (metrics.ink_to_rgb(ink).astype(np.float32) * 0.45 + 255 * 0.55).astype(np.uint8)
    if hints is None:
        return base
    mask = (hints[..., 3] > 0).astype(np.uint8)
    r = max(2, int(round(max(ink.shape) / 160)))
    n, lab, stats, cent = cv2.connectedComponentsWithStats(mask, connectivity=8)
    for i in range(1, n):
        y, x = int(stats[i, 1]), int(stats[i, 0])
        c = tuple(int(v) for v in hints[y, x, :3])
        cx, cy = int(cent[i][0]), int(cent[i][1])
        cv2.circle(base, (cx, cy), r + 1, (0, 0, 0), -1)
        cv2.circle(base, (cx, cy), r, c, -1)
    return base


def ink_stats(ink: np.ndarray) -> dict:
    """How a B/W page looks, to compare the converter's pages with real ones: share of the page
    that is ink, line ink, and tone ink (small blobs: screentone dots, specks)."""
    from ..structure import split_line_and_tone

    line, tone = split_line_and_tone(ink)
    return {
        "ink_share": float((ink < metrics.INK_LEVEL).mean()),
        "line_share": float(line.mean()),
        "tone_share": float(tone.mean()),
        "gray_share": float(((ink >= 0.1) & (ink <= 0.9)).mean()),
    }


def run_gt_cases(
    cases: list, methods: dict[str, Runner], res: Results, contact_ids: set[str], log=print,
    load: Callable[[object], Case] | None = None,
) -> None:
    """`cases` are Case objects, or references that `load` turns into one (loaded one at a time,
    so the process holds one case, and peak memory is about the method, not the test set)."""
    per = res.per_case.setdefault("gt", {})
    info = res.case_info.setdefault("gt", [])
    for i, item in enumerate(cases):
        case = load(item) if load is not None else item
        t_case = time.perf_counter()
        region = metrics.gt_white(case.gt, metrics.white_regions(case.ink))
        m_gt = metrics.colourfulness(case.gt)
        info.append(
            {
                "id": case.id,
                "source": case.source,
                "file": case.file,
                "attribution": case.attribution,
                "size": list(case.ink.shape),
                "hint_pixels": {str(k): int((v[..., 3] > 0).sum()) for k, v in case.hints.items()},
                "white_region_pixels": int(region.sum()),
                **ink_stats(case.ink),
                "gt_colourfulness": m_gt,
                "palette_fidelity_of_gt": metrics.palette_fidelity(case.gt, case.ref),
            }
        )
        row = per.setdefault(case.id, {})
        thumbs = {} if case.id in contact_ids else None
        for name, run in methods.items():
            row[name] = {}
            for k, ref in GT_CONDITIONS:
                cond = cond_name(k, ref)
                if name != "ours" and ref:
                    # Baselines take no reference: the +ref rows are the very same runs.
                    row[name][cond] = dict(row[name][cond_name(k, False)])
                    continue
                hints = case.hints.get(k) if k > 0 else None
                refs = [case.ref] if ref else []
                out, cost = _call(lambda: run(case.ink, hints, refs))
                if name == "ours":
                    res.model_seconds += cost["seconds"]
                else:
                    res.baseline_seconds += cost["seconds"]
                row[name][cond] = {
                    "delta_e": metrics.delta_e_non_ink(out, case.gt, case.ink),
                    "hint_adherence": metrics.hint_adherence(out, hints),
                    "colourfulness_ratio": metrics.colourfulness_ratio(out, case.gt, m_gt),
                    "palette_fidelity": metrics.palette_fidelity(out, case.ref),
                    "ink_preservation": metrics.ink_preservation(out, case.ink),
                    "white_preservation": metrics.balloon_preservation(out, case.ink, region),
                    **cost,
                }
                if thumbs is not None and k == 16:
                    thumbs[f"{name}{'+ref' if ref else ''}"] = _small(out)
        if thumbs is not None:
            thumbs["ink"] = _small(metrics.ink_to_rgb(case.ink))
            thumbs["hints"] = _small(_thumb_hints(case.ink, case.hints.get(16)))
            thumbs["gt"] = _small(case.gt)
            thumbs["ref"] = _small(case.ref)
            res.thumbs[case.id] = thumbs
        ours = row.get("ours", {}).get("k16", {}).get("delta_e", float("nan"))
        log(f"  [{i + 1}/{len(cases)}] {case.id} {case.ink.shape[1]}x{case.ink.shape[0]}: "
            f"dE00 k16 ours {ours:.1f} levin {row.get('levin', {}).get('k16', {}).get('delta_e', float('nan')):.1f} "
            f"({time.perf_counter() - t_case:.1f}s)")


def run_real_pages(
    pages: list, methods: dict[str, Runner], res: Results, log=print, load: Callable[[object], RealPage] | None = None
) -> None:
    per = res.per_case.setdefault("real", {})
    info = res.case_info.setdefault("real", [])
    for i, item in enumerate(pages):
        page = load(item) if load is not None else item
        t_case = time.perf_counter()
        info.append(
            {
                "id": page.id,
                "file": page.file,
                "attribution": page.attribution,
                "size": list(page.ink.shape),
                "balloon_pixels": int(page.balloons.sum()),
                "balloon_source": page.balloon_source,
                **ink_stats(page.ink),
                "hint_pixels": {str(k): int((v[..., 3] > 0).sum()) for k, v in page.hints.items()},
            }
        )
        row = per.setdefault(page.id, {})
        shifted_ink = metrics.shift_page(page.ink, SHIFT_PX, 1.0)
        for name, run in methods.items():
            row[name] = {}
            for k, _ in REAL_CONDITIONS:
                hints = page.hints.get(k) if k > 0 else None
                shifted_hints = metrics.shift_page(hints, SHIFT_PX, 0) if hints is not None else None
                out, cost = _call(lambda: run(page.ink, hints, []))
                out_s, cost_s = _call(lambda: run(shifted_ink, shifted_hints, []))
                spent = cost["seconds"] + cost_s["seconds"]
                if name == "ours":
                    res.model_seconds += spent
                else:
                    res.baseline_seconds += spent
                row[name][cond_name(k, False)] = {
                    "ink_preservation": metrics.ink_preservation(out, page.ink),
                    "balloon_preservation": metrics.balloon_preservation(out, page.ink, page.balloons),
                    "shift_consistency": metrics.shift_consistency(out, out_s, page.ink, SHIFT_PX),
                    **cost,
                }
        log(f"  [{i + 1}/{len(pages)}] {page.id} {page.ink.shape[1]}x{page.ink.shape[0]} ({time.perf_counter() - t_case:.1f}s)")


def _finite(values: list[float]) -> np.ndarray:
    arr = np.array([v for v in values if v is not None], np.float64)
    return arr[np.isfinite(arr)]


def aggregate(per_case: dict, metric_names: dict, case_filter: Callable[[str], bool] | None = None) -> dict:
    """method -> condition -> metric -> {mean, median, sem, n} over the cases (NaNs left out)."""
    out: dict = {}
    for case_id, row in per_case.items():
        if case_filter is not None and not case_filter(case_id):
            continue
        for method, conds in row.items():
            for cond, vals in conds.items():
                for m in metric_names:
                    out.setdefault(method, {}).setdefault(cond, {}).setdefault(m, []).append(vals.get(m))
    for method, conds in out.items():
        for cond, ms in conds.items():
            for m, values in ms.items():
                v = _finite(values)
                ms[m] = {
                    "mean": float(v.mean()) if v.size else None,
                    "median": float(np.median(v)) if v.size else None,
                    "sem": float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else None,
                    "n": int(v.size),
                }
    return out


def paired(per_case: dict, method: str = "ours", metric: str = "delta_e") -> dict:
    """Per-case differences `method` minus each other method on one metric (paired over the same
    cases): baseline -> condition -> {mean, sem, n, better_share}. Negative mean = `method` lower.
    Paired differences cancel the case-to-case spread that dominates the per-method standard errors."""
    out: dict = {}
    for row in per_case.values():
        if method not in row:
            continue
        for other, conds in row.items():
            if other == method:
                continue
            for cond, vals in conds.items():
                a = row[method].get(cond, {}).get(metric)
                b = vals.get(metric)
                if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
                    continue
                out.setdefault(other, {}).setdefault(cond, []).append(a - b)
    for other, conds in out.items():
        for cond, d in conds.items():
            v = np.array(d, np.float64)
            conds[cond] = {
                "mean": float(v.mean()),
                "sem": float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else None,
                "n": int(v.size),
                "better_share": float((v < 0).mean()),
            }
    return out


def machine_info() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10,
                                cwd=Path(__file__).resolve().parents[2]).stdout.strip() or None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10, cwd=Path(__file__).resolve().parents[2]).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, ""
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit,
        "tree_dirty": bool(dirty),
        "memory_measure": memory_method(),
        "loadavg_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
