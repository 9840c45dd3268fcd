"""`python -m backend bench --variants`: issue 13's measurements (drafts and variants).

On the bench's held-out ground-truth cases (`data.TestSet`, the same cases and hint layers as the
main bench; composite vs truth, CIEDE2000 over non-ink pixels, `metrics.delta_e_non_ink`):

- **oracle draft**: at 0 hints, today's output (no draft) vs the output given the ground truth as a
  painted draft over the whole page (the pipeline blurs it at the working size as it blurs any
  painted draft, `variants.working_draft`: blurred ground truth, what the colorizer was trained on);
- **model drafts**: at 0 hints, N (4) variants (drafts sampled from the drafting model, seeds 0..3):
  the best of the N and their mean vs today's single output;
- **diversity**: mean pairwise CIEDE2000 between the N variants on the unhinted regions (non-ink
  pixels of the full-resolution line-enclosed regions, `restore.full_regions`, that hold no hint
  pixel), at 0 and 16 hints; **hint adherence** of every variant at 16 hints
  (`metrics.hint_adherence`) and **ink** (`metrics.ink_preservation`, the minimum over variants).

On the real Black Jack pages (no hints; no truth): today's output vs the N variants:
**colourfulness ratio** (Hasler & Suesstrunk M of a variant / M of today's output, non-ink pixels),
and the **share of the coloured area outside the page's dominant hue** (coloured = non-ink pixels of
chroma C* > 10; the dominant hue is the fullest 30-degree bin of the output's hue histogram; outside
= farther than 30 degrees from that bin's centre). A contact sheet of the first `--sheet-pages` pages
(today's output, then the N variants) goes to `--sheet`.

**Time**: on the first `--time-pages` real pages at full size, a first colorization (empty page
cache) with N = 1 and with N = N; each extra variant's cost = (T_N - T_1) / (N - 1), as a share of T_1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from .. import color
from ..request import ColorizeOptions, ColorizeRequest
from . import metrics
from .data import NEW_SOURCES, SOURCES, DataMissing, TestSet

CHROMA_COLOURED = 10.0
HUE_HALF_WIDTH = 30.0


def _composites(result) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    return [result.composite] + (result.variant_composites() if result.variants else [])


def unhinted_mask(ink: np.ndarray, hints: np.ndarray | None) -> np.ndarray:
    """Non-ink pixels of the full-resolution line-enclosed regions that hold no hint pixel."""
    from .. import page_cache

    regions = page_cache.analysis(ink).full_regions(ink)
    non_ink = np.asarray(ink) >= metrics.INK_LEVEL
    if hints is None or not (hints[..., 3] > 0).any():
        return non_ink & (regions.labels > 0)
    hinted = np.zeros(regions.n, bool)
    hinted[np.unique(regions.labels[hints[..., 3] > 0])] = True
    hinted[0] = True  # the walls
    return non_ink & ~hinted[regions.labels]


def pairwise(outs: list[np.ndarray], mask: np.ndarray) -> float:
    vals = [metrics.mean_delta_e(a, b, mask) for i, a in enumerate(outs) for b in outs[i + 1 :]]
    return float(np.nanmean(vals)) if vals else float("nan")


def hue_stats(rgb: np.ndarray, ink: np.ndarray) -> dict:
    """Coloured share of non-ink pixels, and the share of the coloured ones outside the dominant hue."""
    non_ink = np.asarray(ink) >= metrics.INK_LEVEL
    px = rgb[..., :3][non_ink]
    if len(px) > 400_000:
        px = px[:: len(px) // 400_000]
    lab = color.rgb_to_lab(px.astype(np.float64) / 255.0)
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    coloured = chroma > CHROMA_COLOURED
    if coloured.sum() < 50:
        return {"coloured_share": float(coloured.mean()), "outside_dominant_hue": float("nan"), "dominant_hue": float("nan")}
    hue = np.degrees(np.arctan2(lab[coloured, 2], lab[coloured, 1])) % 360.0
    hist, edges = np.histogram(hue, bins=12, range=(0, 360))
    centre = edges[int(np.argmax(hist))] + 15.0
    dist = np.abs((hue - centre + 180.0) % 360.0 - 180.0)
    return {
        "coloured_share": float(coloured.mean()),
        "outside_dominant_hue": float((dist > HUE_HALF_WIDTH).mean()),
        "dominant_hue": float(centre),
    }


def colour_m(rgb: np.ndarray, ink: np.ndarray) -> float:
    return metrics.colourfulness(rgb, np.asarray(ink) >= metrics.INK_LEVEL)


def gt_cases(ts: TestSet, model, n: int, n_new: int, n_var: int, seed: int, log=print, extra: dict | None = None) -> dict:  # type: ignore[no-untyped-def]
    extra = extra or {}
    from ..pipeline import colorize

    refs = ts.select(n, SOURCES) + ts.select(n_new, NEW_SOURCES)
    rows = []
    for i, ref in enumerate(refs):
        case = ts.load(ref)
        t0 = time.perf_counter()
        ink, gt = case.ink, case.gt
        row: dict = {"id": case.id}

        def run(hints=None, draft=None, variants=1):  # type: ignore[no-untyped-def]
            opts = ColorizeOptions(variants=variants, seed=seed, **extra)
            return colorize(ColorizeRequest(ink=ink, hints=hints, draft=draft, options=opts), model=model)

        today = run().composite
        row["k0_none"] = metrics.delta_e_non_ink(today, gt, ink)
        oracle = np.dstack([gt, np.full(gt.shape[:2], 255, np.uint8)])
        row["k0_oracle"] = metrics.delta_e_non_ink(run(draft=oracle).composite, gt, ink)
        outs = _composites(run(variants=n_var))
        des = [metrics.delta_e_non_ink(o, gt, ink) for o in outs]
        row["k0_variants"] = des
        row["k0_best"], row["k0_mean"] = float(np.min(des)), float(np.mean(des))
        open0 = unhinted_mask(ink, None)
        coloured = ~metrics.gt_white(gt)  # where the truth has colour (not white paper)
        row["k0_pairwise_unhinted"] = pairwise(outs, open0)
        row["k0_pairwise_unhinted_coloured"] = pairwise(outs, open0 & coloured)
        row["ink_k0"] = float(min(metrics.ink_preservation(o, ink) for o in outs))
        h16 = case.hints.get(16)
        if h16 is not None:
            today16 = run(hints=h16).composite
            row["k16_none"] = metrics.delta_e_non_ink(today16, gt, ink)
            row["k16_hint_adherence_today"] = metrics.hint_adherence(today16, h16)
            outs16 = _composites(run(hints=h16, variants=n_var))
            row["k16_variants"] = [metrics.delta_e_non_ink(o, gt, ink) for o in outs16]
            row["k16_hint_adherence"] = [metrics.hint_adherence(o, h16) for o in outs16]
            open16 = unhinted_mask(ink, h16)
            row["k16_pairwise_unhinted"] = pairwise(outs16, open16)
            row["k16_pairwise_unhinted_coloured"] = pairwise(outs16, open16 & coloured)
            row["ink_k16"] = float(min(metrics.ink_preservation(o, ink) for o in outs16))
        h64 = case.hints.get(64)
        if h64 is not None:  # today's single output at 64 hints: the shipping check of a fine-tune
            row["k64_none"] = metrics.delta_e_non_ink(run(hints=h64).composite, gt, ink)
        rows.append(row)
        log(f"  [{i + 1}/{len(refs)}] {case.id}: none {row['k0_none']:.2f} oracle {row['k0_oracle']:.2f} "
            f"best-of-{n_var} {row['k0_best']:.2f} pairwise {row['k0_pairwise_unhinted']:.2f} ({time.perf_counter() - t0:.1f}s)")
    return summarise_gt(rows)


def _m(rows: list[dict], key: str) -> float:
    vals = [r[key] for r in rows if key in r and r[key] == r[key]]
    return float(np.mean(vals)) if vals else float("nan")


def summarise_gt(rows: list[dict]) -> dict:
    s = {k: _m(rows, k) for k in ("k0_none", "k0_oracle", "k0_best", "k0_mean", "k0_pairwise_unhinted", "ink_k0",
                                  "k16_none", "k16_hint_adherence_today", "k16_pairwise_unhinted", "ink_k16",
                                  "k0_pairwise_unhinted_coloured", "k16_pairwise_unhinted_coloured", "k64_none")}
    adh = [np.nanmean(r["k16_hint_adherence"]) for r in rows if "k16_hint_adherence" in r]
    adh_max = [np.nanmax(r["k16_hint_adherence"]) for r in rows if "k16_hint_adherence" in r]
    s["k16_hint_adherence_variants"] = float(np.nanmean(adh)) if adh else float("nan")
    s["k16_hint_adherence_worst_variant"] = float(np.nanmean(adh_max)) if adh_max else float("nan")
    s["k16_variants_mean"] = float(np.mean([np.mean(r["k16_variants"]) for r in rows if "k16_variants" in r] or [np.nan]))
    s["oracle_gain"] = 1.0 - s["k0_oracle"] / s["k0_none"]
    s["best_of_n_gain"] = 1.0 - s["k0_best"] / s["k0_none"]
    d = np.array([r["k0_none"] - r["k0_best"] for r in rows])
    s["best_of_n_gain_se"] = float(d.std(ddof=1) / np.sqrt(len(d)) / s["k0_none"]) if len(d) > 1 else float("nan")
    return {"cases": len(rows), "summary": s, "rows": rows}


def real_pages(ts: TestSet, model, n: int, n_var: int, seed: int, sheet: Path | None, sheet_pages: int, log=print) -> dict:  # type: ignore[no-untyped-def]
    from ..pipeline import colorize

    rows, thumbs = [], []
    for i, page in enumerate(ts.real_pages(n)):
        t0 = time.perf_counter()
        ink = page.ink
        today = colorize(ColorizeRequest(ink=ink), model=model).composite
        outs = _composites(colorize(ColorizeRequest(ink=ink, options=ColorizeOptions(variants=n_var, seed=seed)), model=model))
        m_today = colour_m(today, ink)
        row = {
            "id": page.id,
            "colourfulness_today": m_today,
            "colourfulness_variants": [colour_m(o, ink) for o in outs],
            "hue_today": hue_stats(today, ink),
            "hue_variants": [hue_stats(o, ink) for o in outs],
            "pairwise": pairwise(outs, ink >= metrics.INK_LEVEL),
            "ink": float(min(metrics.ink_preservation(o, ink) for o in outs)),
        }
        row["colourfulness_ratio"] = float(np.mean(row["colourfulness_variants"]) / max(m_today, 1e-6))
        rows.append(row)
        if sheet is not None and i < sheet_pages:
            thumbs.append([today] + outs)
        log(f"  [{i + 1}/{n}] {page.id}: M today {m_today:.1f} variants {np.mean(row['colourfulness_variants']):.1f}, "
            f"outside dominant hue today {row['hue_today']['outside_dominant_hue']:.2f} variants "
            f"{np.nanmean([h['outside_dominant_hue'] for h in row['hue_variants']]):.2f} ({time.perf_counter() - t0:.1f}s)")
    if sheet is not None and thumbs:
        contact_sheet(thumbs, sheet)
    s = {
        "colourfulness_today": _m(rows, "colourfulness_today"),
        "colourfulness_variants": float(np.mean([np.mean(r["colourfulness_variants"]) for r in rows])),
        "colourfulness_ratio": _m(rows, "colourfulness_ratio"),
        "outside_dominant_hue_today": float(np.nanmean([r["hue_today"]["outside_dominant_hue"] for r in rows])),
        "outside_dominant_hue_variants": float(np.nanmean([h["outside_dominant_hue"] for r in rows for h in r["hue_variants"]])),
        "coloured_share_today": float(np.mean([r["hue_today"]["coloured_share"] for r in rows])),
        "coloured_share_variants": float(np.mean([h["coloured_share"] for r in rows for h in r["hue_variants"]])),
        "pairwise": _m(rows, "pairwise"),
        "ink": float(min(r["ink"] for r in rows)),
    }
    return {"pages": len(rows), "summary": s, "rows": rows}


def contact_sheet(rows: list[list[np.ndarray]], path: Path, height: int = 300) -> None:
    """One row per page: today's output, then the variants; labelled."""
    lines = []
    for outs in rows:
        h, w = outs[0].shape[:2]
        tw = round(w * height / h)
        cells = []
        for j, o in enumerate(outs):
            t = cv2.resize(o[..., :3], (tw, height), interpolation=cv2.INTER_AREA)
            label = "today (no draft)" if j == 0 else f"variant {j}"
            cv2.rectangle(t, (0, 0), (8 + 8 * len(label), 18), (255, 255, 255), -1)
            cv2.putText(t, label, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
            cells += [t, np.full((height, 6, 3), 255, np.uint8)]
        lines += [np.concatenate(cells[:-1], 1), np.full((6, sum(c.shape[1] for c in cells[:-1]), 3), 255, np.uint8)]
    width = max(l.shape[1] for l in lines)
    lines = [np.pad(l, ((0, 0), (0, width - l.shape[1]), (0, 0)), constant_values=255) for l in lines]
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(np.concatenate(lines[:-1], 0))
    img.save(path, optimize=True)
    if path.stat().st_size > 1_400_000:  # keep the docs light: a 256-colour palette
        img.quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)


def timing(ts: TestSet, model, n_pages: int, n_var: int) -> dict:  # type: ignore[no-untyped-def]
    from .. import page_cache
    from ..pipeline import colorize

    rows = []
    for page in ts.real_pages(n_pages):
        t = {}
        cpu = {}
        for n in (1, n_var):
            page_cache.clear()
            t0, c0 = time.perf_counter(), time.process_time()
            colorize(ColorizeRequest(ink=page.ink, options=ColorizeOptions(variants=n)), model=model)
            t[n], cpu[n] = time.perf_counter() - t0, time.process_time() - c0
        extra = (t[n_var] - t[1]) / (n_var - 1)
        extra_cpu = (cpu[n_var] - cpu[1]) / (n_var - 1)
        rows.append({"id": page.id, "t1": t[1], f"t{n_var}": t[n_var], "extra_per_variant": extra, "share_of_t1": extra / t[1],
                     "cpu1": cpu[1], f"cpu{n_var}": cpu[n_var], "cpu_share_of_t1": extra_cpu / cpu[1]})
    return {
        "rows": rows,
        "t1": float(np.mean([r["t1"] for r in rows])),
        f"t{n_var}": float(np.mean([r[f"t{n_var}"] for r in rows])),
        "share_of_t1": float(np.mean([r["share_of_t1"] for r in rows])),
        "cpu1": float(np.mean([r["cpu1"] for r in rows])),
        f"cpu{n_var}": float(np.mean([r[f"cpu{n_var}"] for r in rows])),
        "cpu_share_of_t1": float(np.mean([r["cpu_share_of_t1"] for r in rows])),
    }


def markdown(data: dict) -> str:
    n = data["variants"]
    out = [f"model {data['model']}, drafting weights {data['draft_weights']}, N = {n} variants, seed {data['seed']}", ""]
    if "gt" in data:
        s = data["gt"]["summary"]
        out += [
            f"Ground-truth cases: {data['gt']['cases']}",
            "",
            "| measure | value | bar |",
            "|---|---|---|",
            f"| k0 ΔE2000, today (no draft) | {s['k0_none']:.2f} | |",
            f"| k0 ΔE2000, oracle draft (blurred truth) | {s['k0_oracle']:.2f} ({100 * s['oracle_gain']:.1f} % lower) | ≥ 30 % lower |",
            f"| k0 ΔE2000, best of {n} model-draft variants | {s['k0_best']:.2f} ({100 * s['best_of_n_gain']:.1f} ± {100 * s['best_of_n_gain_se']:.1f} % lower) | ≥ 10 % lower |",
            f"| k0 ΔE2000, mean of the {n} variants | {s['k0_mean']:.2f} | |",
            f"| pairwise ΔE2000 between variants, unhinted regions, k0 | {s['k0_pairwise_unhinted']:.2f} | ≥ 8 |",
            f"| pairwise ΔE2000 between variants, unhinted regions, k16 | {s['k16_pairwise_unhinted']:.2f} | ≥ 8 |",
            f"| the same on the unhinted regions' pixels coloured in the truth (not white paper), k0 / k16 | {s['k0_pairwise_unhinted_coloured']:.2f} / {s['k16_pairwise_unhinted_coloured']:.2f} | |",
            f"| hint adherence k16: today / variants (mean) / worst variant | {s['k16_hint_adherence_today']:.2f} / {s['k16_hint_adherence_variants']:.2f} / {s['k16_hint_adherence_worst_variant']:.2f} | ≤ 6 |",
            f"| k16 ΔE2000: today / variants (mean) | {s['k16_none']:.2f} / {s['k16_variants_mean']:.2f} | |",
            f"| k64 ΔE2000: today | {s['k64_none']:.2f} | |",
            f"| ink preserved (min over variants) k0 / k16 | {s['ink_k0']:.3f} / {s['ink_k16']:.3f} | 1.0 |",
            "",
        ]
    if "real" in data:
        s = data["real"]["summary"]
        out += [
            f"Real pages, no hints: {data['real']['pages']}",
            "",
            "| measure | today | variants |",
            "|---|---|---|",
            f"| colourfulness M (non-ink) | {s['colourfulness_today']:.1f} | {s['colourfulness_variants']:.1f} (ratio {s['colourfulness_ratio']:.2f}) |",
            f"| coloured share of non-ink (C* > {CHROMA_COLOURED:g}) | {s['coloured_share_today']:.3f} | {s['coloured_share_variants']:.3f} |",
            f"| share of coloured area outside the dominant hue (±{HUE_HALF_WIDTH:g}°) | {s['outside_dominant_hue_today']:.3f} | {s['outside_dominant_hue_variants']:.3f} |",
            f"| pairwise ΔE2000 between variants (non-ink) | | {s['pairwise']:.2f} |",
            f"| ink preserved (min) | | {s['ink']:.3f} |",
            "",
        ]
    if "time" in data:
        t = data["time"]
        out += [
            f"Time (first colorization, empty page cache, {len(t['rows'])} real pages at full size): N = 1 {t['t1']:.2f} s, "
            f"N = {n} {t[f't{n}']:.2f} s: each extra variant costs {100 * t['share_of_t1']:.0f} % of one colorization (bar ≤ 50 %); "
            f"in process CPU seconds (steadier on a shared machine) N = 1 {t['cpu1']:.2f}, N = {n} {t[f'cpu{n}']:.2f}: "
            f"{100 * t['cpu_share_of_t1']:.0f} %",
            "",
        ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m backend bench --variants", description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, default=4, help="variants per page (default 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cases", type=int, default=24, help="ground-truth cases of the current set (default 24)")
    p.add_argument("--new-cases", type=int, default=0, help="cases of the extended set (default 0)")
    p.add_argument("--real-pages", type=int, default=12)
    p.add_argument("--sheet-pages", type=int, default=3)
    p.add_argument("--sheet", type=Path, default=None, help="contact sheet PNG (default OUT/variants_real.png)")
    p.add_argument("--time-pages", type=int, default=2)
    p.add_argument("--weights", type=Path, default=None, help="colorizer weights (default the shipped ones)")
    p.add_argument("--draft-weights", type=Path, default=None, help="drafting weights (default $MANGACOLOR_DRAFT_WEIGHTS or the shipped)")
    p.add_argument("--only", choices=("gt", "real", "time"), action="append", default=None)
    p.add_argument("--draft-strength", type=float, default=None, help="the option draft_strength (default the option's)")
    p.add_argument("--temperature", type=float, default=None, help="variants.DRAFT_TEMPERATURE for this run (default its value)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--out", type=Path, default=Path("bench_out"))
    args = p.parse_args(argv)
    import os

    from ..model import DEFAULT_WEIGHTS
    from ..pipeline import get_model
    from ..variants import draft_weights_path

    if args.temperature is not None:
        from .. import variants

        variants.DRAFT_TEMPERATURE = args.temperature
    if args.draft_weights is not None:
        os.environ["MANGACOLOR_DRAFT_WEIGHTS"] = str(args.draft_weights)
    only = set(args.only or ("gt", "real", "time"))
    try:
        ts = TestSet(args.data)
        model = get_model(args.device, args.weights or DEFAULT_WEIGHTS)
        from .. import variants as _variants

        data: dict = {"model": model.version, "draft_weights": str(draft_weights_path()), "variants": args.n, "seed": args.seed,
                      "temperature": _variants.DRAFT_TEMPERATURE,
                      "argv": argv}
        args.out.mkdir(parents=True, exist_ok=True)
        if "gt" in only and args.cases + args.new_cases > 0:
            print("ground-truth cases:")
            extra = {} if args.draft_strength is None else {"draft_strength": args.draft_strength}
            data["draft_strength"] = extra.get("draft_strength", ColorizeOptions().draft_strength)
            data["gt"] = gt_cases(ts, model, args.cases, args.new_cases, args.n, args.seed, extra=extra)
        if "real" in only and args.real_pages > 0:
            print("real pages:")
            data["real"] = real_pages(ts, model, args.real_pages, args.n, args.seed, args.sheet or args.out / "variants_real.png",
                                      args.sheet_pages)
        if "time" in only and args.time_pages > 0:
            print("time:")
            data["time"] = timing(ts, model, args.time_pages, args.n)
    except DataMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    (args.out / "variants.json").write_text(json.dumps(data, indent=1, default=float))
    print()
    print(markdown(data))
    (args.out / "variants.md").write_text(markdown(data))
    print(f"wrote {args.out / 'variants.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
