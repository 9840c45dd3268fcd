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
    skipped_cases: dict = field(default_factory=dict)  # method -> case id -> why it has no row for that case


# ----------------------------------------------------------------------------- Krita's Colorize Mask

KRITA_CHUNK_PIXELS = 60_000_000  # page pixels per Krita session: bounds the jobs (ink + hints) held in memory at once


@dataclass
class KritaResults:
    """Composites of Krita's Colorize Mask, looked up per case and hint count (k > 0), from one
    pre-pass over all jobs; `missing` says why a job has no result."""

    composites: dict = field(default_factory=dict)  # (case id, k) -> uint8 HxWx3
    seconds: dict = field(default_factory=dict)  # (case id, k) -> wall s of its Krita session / jobs in it
    cpu_seconds: dict = field(default_factory=dict)  # (case id, k) -> CPU s of the session's child processes / jobs
    missing: dict = field(default_factory=dict)  # (case id, k) -> reason
    sessions: list = field(default_factory=list)  # per Krita call: {"jobs", "seconds", "ok"}
    note: str = ""

    @staticmethod
    def job_id(case_id: str, k: int) -> str:
        return f"{case_id}@k{k}"

    def get(self, case_id: str, k: int) -> "np.ndarray | None":
        return self.composites.get((case_id, k))


def krita_prepass(cases: list, run_colorize_mask: Callable, make_job: Callable, log=print,
                  load: Callable[[object], Case] | None = None, chunk_pixels: int = KRITA_CHUNK_PIXELS,
                  job_info: dict | None = None, **kwargs) -> KritaResults:
    """Run Krita's Colorize Mask on every (case, k > 0) before the per-case loop: Krita starts slowly,
    so jobs go in as few sessions as memory allows (`chunk_pixels` page pixels each).
    `run_colorize_mask(jobs, log=..., **kwargs)` returns {job id: (colour, composite)}; a job it leaves
    out, a session that raises, or a result of the wrong shape leaves that job missing, with the reason.
    `job_info` (the driver's per-job details, filled by the call) may give a job's own seconds
    (`seconds_total`); otherwise a job's seconds are its session's shared equally among its jobs."""
    import resource

    out = KritaResults()
    pending: list = []
    pixels = 0

    def flush() -> None:
        nonlocal pending, pixels
        if not pending:
            return
        jobs = [j for j, _ in pending]
        why = ""
        t0 = time.perf_counter()
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        c0 = c0.ru_utime + c0.ru_stime
        ok = True
        try:
            results = run_colorize_mask(jobs, log=log, **kwargs) or {}
        except Exception as exc:  # noqa: BLE001 - any failure of the external tool skips its jobs, never the bench
            results, ok = {}, False
            why = f"Krita session failed: {type(exc).__name__}: {exc}"
            log(f"  {why}")
        spent = time.perf_counter() - t0
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (c1.ru_utime + c1.ru_stime) - c0
        out.sessions.append({"jobs": len(jobs), "seconds": spent, "cpu_seconds": cpu, "ok": ok})
        for job, key in pending:
            got = results.get(job.id)
            if got is None:
                out.missing[key] = why if not ok else "no result from the Colorize Mask"
                continue
            composite = np.asarray(got[1] if isinstance(got, (tuple, list)) else got)
            if composite.shape != job.ink.shape + (3,):
                out.missing[key] = f"result of shape {composite.shape}, page {job.ink.shape}"
                continue
            out.composites[key] = np.ascontiguousarray(composite, dtype=np.uint8)
            own = (job_info or {}).get(job.id, {}).get("seconds_total")
            out.seconds[key] = float(own) if own is not None else spent / len(jobs)
            out.cpu_seconds[key] = cpu / len(jobs)
        pending, pixels = [], 0

    for item in cases:
        case = load(item) if load is not None else item
        for k in HINT_COUNTS:
            if k <= 0 or k not in case.hints:
                continue
            pending.append((make_job(KritaResults.job_id(case.id, k), case.ink, case.hints[k]), (case.id, k)))
            pixels += case.ink.size
        if pixels >= chunk_pixels:
            flush()
    flush()
    n_ok, n_all = len(out.composites), len(out.composites) + len(out.missing)
    log(f"Krita Colorize Mask: {n_ok}/{n_all} jobs in {len(out.sessions)} session(s), "
        f"{sum(x['seconds'] for x in out.sessions):.0f}s")
    return out


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


def _krita_runner(krita: KritaResults) -> Callable:
    """The `krita` method for run_gt_cases: (case, k) -> composite or None (k0: the page uncoloured)."""
    def run(case: Case, k: int) -> "np.ndarray | None":
        if k <= 0:
            return baselines.no_colour(case.ink)[1]
        return krita.get(case.id, k)

    return run


def run_gt_cases(
    cases: list, methods: dict[str, Runner], res: Results, contact_ids: set[str], log=print,
    load: Callable[[object], Case] | None = None, krita: KritaResults | None = None,
) -> None:
    """`cases` are Case objects, or references that `load` turns into one (loaded one at a time,
    so the process holds one case, and peak memory is about the method, not the test set).
    With `krita` (a pre-pass's results) the method `krita` is scored from them; a case without all
    its Krita results has no `krita` row, and `res.skipped_cases['krita']` says why."""
    per = res.per_case.setdefault("gt", {})
    info = res.case_info.setdefault("gt", [])
    all_methods: dict = dict(methods)
    if krita is not None:
        all_methods["krita"] = _krita_runner(krita)
    for i, item in enumerate(cases):
        case = load(item) if load is not None else item
        t_case = time.perf_counter()
        region = metrics.gt_white(case.gt, metrics.white_regions(case.ink))
        m_gt = metrics.colourfulness(case.gt)
        info.append(
            {
                "id": case.id,
                "source": case.source,
                "set": case.set,
                "ink_kind": case.ink_kind,
                "hint_style": case.hint_style,
                "input_sha1": case.input_digest(),
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
        for name, run in all_methods.items():
            row[name] = {}
            for k, ref in GT_CONDITIONS:
                cond = cond_name(k, ref)
                if name != "ours" and ref:
                    # Baselines take no reference: the +ref rows are the very same runs.
                    row[name][cond] = dict(row[name][cond_name(k, False)])
                    continue
                hints = case.hints.get(k) if k > 0 else None
                refs = [case.ref] if ref else []
                if name == "krita":
                    out = run(case, k)
                    if out is None:
                        why = krita.missing.get((case.id, k), "no result") if krita is not None else "no result"
                        res.skipped_cases.setdefault("krita", {})[case.id] = f"k{k}: {why}"
                        break
                    if k > 0:
                        cost = {"seconds": krita.seconds.get((case.id, k)), "cpu_seconds": krita.cpu_seconds.get((case.id, k)),
                                "peak_mb": None, "delta_mb": None}
                    else:
                        out, cost = _call(lambda: run(case, k))
                    res.baseline_seconds += cost["seconds"] or 0.0
                else:
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
            if name == "krita" and case.id in res.skipped_cases.get("krita", {}):
                del row[name]
                if thumbs is not None:
                    thumbs.pop("krita", None)
        if thumbs is not None:
            thumbs["ink"] = _small(metrics.ink_to_rgb(case.ink))
            thumbs["hints"] = _small(_thumb_hints(case.ink, case.hints.get(16)))
            thumbs["gt"] = _small(case.gt)
            thumbs["ref"] = _small(case.ref)
            res.thumbs[case.id] = thumbs
        de16 = "  ".join(f"{n} {row[n]['k16']['delta_e']:.1f}" for n in row if "k16" in row[n])
        log(f"  [{i + 1}/{len(cases)}] {case.id} {case.ink.shape[1]}x{case.ink.shape[0]}: dE00 k16 {de16} "
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


# ----------------------------------------------------------------------------- issue 10's bars

BARS = {
    "de_vs_krita_ratio": 0.85,  # ours / krita dE00 at k16 and k64: at least 15 % below
    "white_min": 0.98,  # white-paper preservation in every condition
    "hint_adherence_max": 5.0,  # dE00 at the hint pixels
    "ink_min": 0.999,  # ink preservation 1.0 (to 3 decimals)
    "k0_vs_none_ratio": 0.90,  # without hints at least 10 % below no colour
}


def _mean_over(per_case: dict, ids: list[str], method: str, cond: str, metric: str) -> tuple[float | None, int]:
    v = _finite([per_case[c][method][cond].get(metric) for c in ids if cond in per_case[c].get(method, {})])
    return (float(v.mean()) if v.size else None), int(v.size)


def _ratio(per_case: dict, ids: list[str], a: str, b: str, cond: str, bar: float) -> dict:
    """Means of `a` and `b` on the cases where both have the metric, their ratio and the bar."""
    both = [c for c in ids if a in per_case[c] and b in per_case[c]
            and all(math.isfinite(per_case[c][m].get(cond, {}).get("delta_e") or float("nan")) for m in (a, b))]
    ma, n = _mean_over(per_case, both, a, cond, "delta_e")
    mb, _ = _mean_over(per_case, both, b, cond, "delta_e")
    ratio = ma / mb if ma is not None and mb else None
    return {a: ma, b: mb, "ratio": ratio, "n": n, "bar": bar, "pass": None if ratio is None else bool(ratio <= bar)}


def bars_summary(per_case: dict, case_sets: dict[str, str], method: str = "ours") -> dict:
    """Issue 10's bars for `method`, per scope (all cases, the current set, the extended set):
    dE00 against Krita's Colorize Mask at k16/k64, the lowest white preservation over the conditions,
    hint adherence, ink preservation, and dE00 against no colour at k0. Each entry has the bar and
    whether it is met (None where a side is missing, e.g. Krita not run)."""
    out: dict = {}
    scopes = {"all": list(per_case)}
    for name in ("current", "extended"):
        scopes[name] = [c for c in per_case if case_sets.get(c) == name]
    for scope, ids in scopes.items():
        ids = [c for c in ids if method in per_case[c]]
        if not ids:
            continue
        conds = sorted({cond for c in ids for cond in per_case[c][method]}, key=lambda x: (x.endswith("+ref"), int(x[1:].split("+")[0])))
        white = {cond: _mean_over(per_case, ids, method, cond, "white_preservation")[0] for cond in conds}
        white = {c: v for c, v in white.items() if v is not None}
        ink = {cond: _mean_over(per_case, ids, method, cond, "ink_preservation")[0] for cond in conds}
        ink = {c: v for c, v in ink.items() if v is not None}
        hint = {cond: _mean_over(per_case, ids, method, cond, "hint_adherence")[0] for cond in conds if not cond.startswith("k0")}
        hint = {c: v for c, v in hint.items() if v is not None}
        entry: dict = {"n": len(ids)}
        for cond in ("k16", "k64"):
            entry[f"de_vs_krita_{cond}"] = _ratio(per_case, ids, method, "krita", cond, BARS["de_vs_krita_ratio"])
        wmin = min(white, key=white.get) if white else None
        entry["white_min"] = {"value": white.get(wmin), "condition": wmin, "per_condition": white, "bar": BARS["white_min"],
                              "pass": None if wmin is None else bool(white[wmin] >= BARS["white_min"])}
        hmax = max(hint, key=hint.get) if hint else None
        entry["hint_adherence_max"] = {"value": hint.get(hmax), "condition": hmax, "per_condition": hint,
                                       "bar": BARS["hint_adherence_max"],
                                       "pass": None if hmax is None else bool(hint[hmax] <= BARS["hint_adherence_max"])}
        imin = min(ink, key=ink.get) if ink else None
        entry["ink_min"] = {"value": ink.get(imin), "condition": imin, "bar": BARS["ink_min"],
                            "pass": None if imin is None else bool(ink[imin] >= BARS["ink_min"])}
        entry["k0_vs_none"] = _ratio(per_case, ids, method, "none", "k0", BARS["k0_vs_none_ratio"])
        out[scope] = entry
    return out


def compare_runs(per_case: dict, case_info: list[dict], old: dict, method: str = "ours") -> dict:
    """This run against an earlier bench.json (`old`), on the cases both scored with identical inputs
    (same `input_sha1`, or same id where the old run has no digests): per set and condition, the
    mean dE00 and white preservation of `method` then and now. Answers "no worse than today"."""
    old_info = {c["id"]: c for c in old.get("cases", {}).get("gt", [])}
    old_per = old.get("per_case", {}).get("gt", {})
    same = []
    for c in case_info:
        o = old_info.get(c["id"])
        if o is None or method not in old_per.get(c["id"], {}) or method not in per_case.get(c["id"], {}):
            continue
        if o.get("input_sha1") and o["input_sha1"] != c.get("input_sha1"):
            continue
        same.append(c)
    out: dict = {"n": len(same), "differing_inputs": sum(
        1 for c in case_info if c["id"] in old_info and old_info[c["id"]].get("input_sha1") not in (None, c.get("input_sha1")))}
    for scope in ("all", "current", "extended"):
        ids = [c["id"] for c in same if scope == "all" or c.get("set", "current") == scope]
        if not ids:
            continue
        rows = {}
        for cond in sorted({k for cid in ids for k in per_case[cid][method]}):
            row = {}
            for metric in ("delta_e", "white_preservation"):
                now = _finite([per_case[cid][method].get(cond, {}).get(metric) for cid in ids])
                then = _finite([old_per[cid][method].get(cond, {}).get(metric) for cid in ids])
                row[metric] = {"now": float(now.mean()) if now.size else None, "then": float(then.mean()) if then.size else None}
            rows[cond] = row
        out[scope] = {"n": len(ids), "conditions": rows}
    return out
