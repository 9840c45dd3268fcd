"""`python -m backend bench [--quick] [--out DIR] [--cases N] [--device D] [--weights PATH]`."""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
import time
from pathlib import Path

from ..request import RequestError
from . import baselines, report
from .data import ATTRIBUTION, DataMissing, QUICK_SOURCES, SOURCES, TestSet, fingerprint
from .runner import (
    GT_METRICS,
    METHOD_ORDER,
    REAL_METRICS,
    SHIFT_PX,
    Results,
    aggregate,
    machine_info,
    make_ours,
    paired,
    run_gt_cases,
    run_real_pages,
    _baseline,
)

DEFAULT_CASES = 72
QUICK_CASES = 2
QUICK_REAL_PAGES = 1
QUICK_REAL_SCALE = 0.5  # the quick run's real page at half size (its speed numbers are not per full page)
CONTACT_ROWS = 6
CONVERTER_PAGE = ("peppercarrot/en_episode-04_p01_2", "color_pages/peppercarrot/en_episode-04_p01_2.jpeg")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m backend bench",
        description="Measure the colorizer against ground truth and against what a colorist could use instead.",
    )
    p.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK_CASES} small cases and {QUICK_REAL_PAGES} real page")
    p.add_argument("--out", type=Path, default=Path("bench_out"), help="report folder (default bench_out/)")
    p.add_argument("--cases", type=int, default=None, help=f"number of ground-truth cases (default {DEFAULT_CASES}, quick {QUICK_CASES})")
    p.add_argument("--real-pages", type=int, default=None, help="number of real Black Jack pages (default all 12, quick 1)")
    p.add_argument("--real-scale", type=float, default=None, help=f"scale of the real pages (default 1, quick {QUICK_REAL_SCALE})")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="device for the model")
    p.add_argument("--weights", type=Path, default=None, help="model weights (default: the shipped weights)")
    p.add_argument("--data", type=Path, default=None, help="data root (default ../shared/data from the repo root)")
    p.add_argument("--cache", type=Path, default=None, help="test-set cache (default .cache/bench/)")
    p.add_argument("--methods", default=",".join(METHOD_ORDER), help="comma-separated subset of: " + ",".join(METHOD_ORDER))
    p.add_argument("--no-images", action="store_true", help="skip the contact sheet and pictures")
    p.add_argument("--quiet", action="store_true", help="print only the tables")
    p.add_argument("--from-json", type=Path, default=None, metavar="JSON",
                   help="run nothing: recompute the aggregates of a saved bench.json, print its tables and write tables.md next to it")
    args = p.parse_args(argv)
    if args.real_scale is not None and not 0.1 <= args.real_scale <= 1.0:
        p.error("--real-scale must be between 0.1 and 1")
    if args.cases is not None and args.cases < 1:
        p.error("--cases must be at least 1")
    unknown = set(args.methods.split(",")) - set(METHOD_ORDER)
    if unknown:
        p.error(f"unknown method(s) {', '.join(sorted(unknown))}; known: {', '.join(METHOD_ORDER)}")
    return args


def run(args: argparse.Namespace) -> dict:
    """Run the bench and write its outputs; returns the report dict (what the JSON holds)."""
    log = (lambda *a, **k: None) if args.quiet else (lambda *a, **k: print(*a, **k, flush=True))
    t_start = time.perf_counter()
    machine = machine_info()  # commit and tree state when the run starts (the code that runs)
    machine["loadavg_at_start"] = machine.pop("loadavg_1_5_15")
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n_cases = args.cases if args.cases is not None else (QUICK_CASES if args.quick else DEFAULT_CASES)
    n_real = args.real_pages if args.real_pages is not None else (QUICK_REAL_PAGES if args.quick else None)
    wanted = [m for m in METHOD_ORDER if m in args.methods.split(",")]

    # Test set (built once, then read from the cache).
    t0 = time.perf_counter()
    ts = TestSet(args.data, args.cache, log=log)
    cases = ts.select(n_cases, QUICK_SOURCES if args.quick else SOURCES)
    real_scale = args.real_scale if args.real_scale is not None else (QUICK_REAL_SCALE if args.quick else 1.0)
    pages = ts.real_page_files(n_real, quick=args.quick)
    testset_s = time.perf_counter() - t0
    log(f"test set {ts.dir.name}: {len(cases)} ground-truth cases, {len(pages)} real pages ({testset_s:.1f}s)")
    if len(cases) < n_cases:
        log(f"note: only {len(cases)} of the {n_cases} asked-for cases exist")

    methods = {}
    model_info = None
    if "ours" in wanted:
        ours, model_info = make_ours(args.device, args.weights, log=log)
        methods["ours"] = ours
    for m in wanted:
        if m != "ours":
            methods[m] = _baseline(m)
    krita_ok, krita_note = baselines.krita_status()
    log(f"Krita Colorize Mask: {krita_note}")

    contact_order = [c.id for c in cases if c.source == "openclipart"][:4] + [c.id for c in cases if c.source == "peppercarrot"][:2]
    contact_order += [c.id for c in cases if c.id not in contact_order]
    contact_ids = set(contact_order[:CONTACT_ROWS])

    res = Results()
    t0 = time.perf_counter()
    log(f"ground-truth cases x {len(methods)} methods x 6 conditions:")
    run_gt_cases(cases, methods, res, contact_ids, log=log, load=ts.load)
    gt_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    log(f"real pages x {len(methods)} methods x 2 conditions (+ {SHIFT_PX}px shift):")
    run_real_pages(pages, methods, res, log=log, load=lambda f: ts.real_page(f, real_scale))
    real_s = time.perf_counter() - t0

    per_gt = res.per_case.get("gt", {})
    sources = {c["id"]: c["source"] for c in res.case_info.get("gt", [])}
    agg_gt = aggregate(per_gt, GT_METRICS)
    agg_by_source = {s: aggregate(per_gt, GT_METRICS, lambda cid, s=s: sources.get(cid) == s) for s in sorted(set(sources.values()))}
    agg_real = aggregate(res.per_case.get("real", {}), REAL_METRICS)

    # Pictures.
    t0 = time.perf_counter()
    images = {}
    if not args.no_images:
        contact_info = sorted(
            [c for c in res.case_info.get("gt", []) if c["id"] in contact_ids], key=lambda c: contact_order.index(c["id"])
        )
        srcs = sorted({c["source"] for c in contact_info})
        footer = "Pictures: " + "; ".join(ATTRIBUTION[s] for s in srcs) + ".\nB/W inputs made by MangaColor's converter (backend/synth.py); hints sampled from the ground truth."
        report.contact_sheet(res.thumbs, contact_info, out / "bench_contact.png", footer=footer)
        images["contact_sheet"] = "bench_contact.png"
        report.plot_de_vs_hints(agg_gt, out / "bench_de_vs_hints.png", len(per_gt))
        images["de_vs_hints"] = "bench_de_vs_hints.png"
        try:
            conv = ts.case(*CONVERTER_PAGE)
            real = ts.real_ink(pages[0]) if pages else None  # full size, whatever --real-scale
            if real is not None:
                caption = (
                    "Left and middle: Pepper&Carrot, episode 4 (held out) by David Revoy, www.peppercarrot.com, CC BY 4.0; "
                    "middle converted to B/W by backend/synth.py.\n"
                    f"Right: Give My Regards to Black Jack by SHUHO SATO, vol. 1 ({pages[0].rsplit('/', 1)[-1]}), "
                    "used under Sato Manga Works' free secondary-use terms (densho810.com/free)."
                )
                report.converter_vs_real(conv.gt, conv.ink, real, out / "bench_converter_vs_real.png", caption)
                images["converter_vs_real"] = "bench_converter_vs_real.png"
        except (DataMissing, FileNotFoundError, OSError) as exc:
            log(f"converter-vs-real picture skipped: {exc}")
    images_s = time.perf_counter() - t0

    wall = time.perf_counter() - t_start
    machine["loadavg_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    model_total = res.model_seconds + (model_info["load_seconds"] + model_info["warmup_seconds"] if model_info else 0.0)
    data = {
        "schema": 1,
        "command": " ".join(["python -m backend bench", *args.argv]),
        "started_utc": started,
        "quick": bool(args.quick),
        "machine": machine,
        "model": model_info,
        "testset": {
            "fingerprint": fingerprint(),
            "cache": str(ts.dir),
            "data_root": str(ts.root),
            "n_cases": len(cases),
            "n_real_pages": len(pages),
            "real_page_scale": real_scale,
            "hint_counts": [0, 16, 64],
            "shift_px": SHIFT_PX,
            "sources": {s: sum(1 for c in cases if c.source == s) for s in SOURCES},
            "attribution": ATTRIBUTION,
        },
        "methods": {m: report.METHOD_LABEL[m] for m in methods},
        "skipped": {"krita": krita_note} if not krita_ok else {},
        "conditions": {"gt": report.gt_conditions(), "real": report.real_conditions()},
        "metrics": {
            "gt": {k: {"description": v[0], "unit": v[1], "better": v[2]} for k, v in GT_METRICS.items()},
            "real": {k: {"description": v[0], "unit": v[1], "better": v[2]} for k, v in REAL_METRICS.items()},
        },
        "notes": [
            "Baselines take no reference image: their +ref rows are copies of the runs without it.",
            "Levin and flat fill without hints (k0) are the page left uncoloured, as 'none'.",
            "hint_adherence is undefined (null) at k0; balloon_preservation is null for pages without balloons.",
            "white_preservation (ground truth) and balloon_preservation (real pages) are the two forms of 'large white areas "
            "still white': on ground-truth cases every large paper region that is white in the truth, on real pages the "
            "balloons only (no truth says which other white areas should stay white).",
            "Real-page balloons are the 53 closed balloons and caption boxes labelled by hand in "
            "backend/bench/balloons_blackjack.json (balloon_source per page); a page without labels falls back to "
            "metrics.balloon_mask, a heuristic that also takes faces, clocks and signs for balloons.",
            "Real pages have no ground truth; their k64 hints are palette dots on paper away from ink and balloons.",
        ],
        "timing": {
            "wall_seconds": wall,
            "testset_seconds": testset_s,
            "gt_cases_seconds": gt_s,
            "real_pages_seconds": real_s,
            "images_seconds": images_s,
            "model_seconds": model_total,
            "baseline_seconds": res.baseline_seconds,
            "wall_excluding_model_seconds": wall - model_total,
        },
        "aggregate": {"gt": agg_gt, "real": agg_real},
        "converter_vs_real": {
            group: {k: _mean([c.get(k) for c in infos]) for k in ("ink_share", "line_share", "tone_share", "gray_share")} | {"n": len(infos)}
            for group, infos in {
                **{f"synthetic {s}": [c for c in res.case_info.get("gt", []) if c["source"] == s] for s in SOURCES},
                "real blackjack": res.case_info.get("real", []),
            }.items()
            if infos
        },
        "ground_truth_palette_fidelity": _mean([c["palette_fidelity_of_gt"] for c in res.case_info.get("gt", [])]),
        "aggregate_by_source": agg_by_source,
        "paired_delta_e": paired(per_gt) if "ours" in methods else {},
        "cases": res.case_info,
        "per_case": res.per_case,
        "images": images,
    }
    report.write_json(data, out / "bench.json")
    (out / "tables.md").write_text(render_markdown(data))
    return data


def render_markdown(data: dict) -> str:
    """The tables as Markdown, for docs/BENCHMARKS.md."""
    methods = list(data["methods"])
    m, t, mach = data["model"], data["timing"], data["machine"]
    head = (
        f"`{data['command']}` — commit {mach['commit']}{' (dirty tree)' if mach['tree_dirty'] else ''}, "
        f"model `{m['model_version'] if m else '-'}` on {m['device'] if m else '-'}, {mach['cpu_count']} CPU ({mach['cpu']}), "
        f"torch {mach['torch']} with {mach['torch_threads']} threads, {data['started_utc']}; "
        f"1-min load average {_load(mach['loadavg_at_start'])} at start, {_load(mach['loadavg_at_end'])} at end.\n"
        f"Wall {t['wall_seconds']:.0f} s, of which model {t['model_seconds']:.0f} s "
        f"(excluding the model: {t['wall_excluding_model_seconds']:.0f} s).\n"
    )
    src = ", ".join(f"{v} {k}" for k, v in data["testset"]["sources"].items() if v)
    parts = [
        head,
        f"**Ground truth** — {data['testset']['n_cases']} held-out cases ({src}); means over cases (± standard error for dE00).\n",
        report.markdown_table(data["aggregate"]["gt"], methods, data["conditions"]["gt"], report.GT_COLUMNS, with_sem="delta_e"),
        f"\nThe ground truth itself scores palette {data.get('ground_truth_palette_fidelity') or float('nan'):.3f} against the reference "
        "(the ceiling of that column), colour/GT 1 and dE00 0.\n",
        _paired_md(data),
        f"\n**Real B/W pages** — {data['testset']['n_real_pages']} Black Jack pages, no ground truth; means over pages.\n",
        report.markdown_table(data["aggregate"]["real"], methods, data["conditions"]["real"], report.REAL_COLUMNS),
    ]
    if data.get("converter_vs_real"):
        parts.append("\n**B/W pages** — share of the page that is ink, line ink, tone ink (small blobs) and mid-gray (0.1–0.9):\n")
        parts.append("| pages | n | ink | line | tone | mid-gray |\n|---|---:|---:|---:|---:|---:|")
        for group, st in data["converter_vs_real"].items():
            parts.append(f"| {group} | {st['n']} | {_pct(st['ink_share']).strip()} | {_pct(st['line_share']).strip()} | "
                         f"{_pct(st['tone_share']).strip()} | {_pct(st['gray_share']).strip()} |")
    for name, why in data["skipped"].items():
        parts.append(f"\n{report.METHOD_LABEL.get(name, name)}: {why}.")
    return "\n".join(parts) + "\n"


def _mean(values: list) -> float | None:
    v = [x for x in values if x is not None and x == x]
    return sum(v) / len(v) if v else None


def _paired_rows(data: dict) -> tuple[list[str], list[list[str]]]:
    pd = data.get("paired_delta_e") or {}
    conds = [c for c in data["conditions"]["gt"] if any(c in v for v in pd.values())]
    rows = []
    for other in [m for m in data["methods"] if m in pd]:
        cells = [report.METHOD_LABEL.get(other, other)]
        for c in conds:
            st = pd[other].get(c)
            cells.append("-" if st is None else f"{st['mean']:+.2f}±{st['sem'] or 0:.2f} ({100 * st['better_share']:.0f}%)")
        rows.append(cells)
    return conds, rows


def _paired_text(data: dict) -> str:
    conds, rows = _paired_rows(data)
    head = ["vs"] + conds
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    fmt = lambda cells: "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cells))  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def _paired_md(data: dict) -> str:
    conds, rows = _paired_rows(data)
    if not rows:
        return ""
    out = ["\nPaired over the same cases: MangaColor's dE00 minus the other method's (negative = MangaColor closer to "
           "the ground truth), mean ± standard error, and in brackets the share of cases where MangaColor is closer.\n",
           "| vs | " + " | ".join(conds) + " |", "|---|" + "---:|" * len(conds)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _pct(v) -> str:
    return f"{100 * v:5.1f}%" if v is not None else "    -"


def _load(v) -> str:
    return f"{v[0]:.1f}" if v else "?"


def render_tables(data: dict) -> str:
    methods = list(data["methods"])
    lines = []
    m = data["model"]
    t = data["timing"]
    lines.append(
        f"MangaColor bench  commit {data['machine']['commit']}{' (dirty)' if data['machine']['tree_dirty'] else ''}  "
        f"model {m['model_version'] if m else '-'} on {m['device'] if m else '-'}  "
        f"{data['machine']['cpu_count']} CPU, torch threads {data['machine']['torch_threads']}, "
        f"load avg at start/end {_load(data['machine']['loadavg_at_start'])}/{_load(data['machine']['loadavg_at_end'])}"
    )
    lines.append(f"\nGround truth: {data['testset']['n_cases']} held-out cases "
                 f"({', '.join(f'{v} {k}' for k, v in data['testset']['sources'].items() if v)}), synthetic B/W by the converter; "
                 "means over cases")
    lines.append(report.table(data["aggregate"]["gt"], methods, data["conditions"]["gt"], report.GT_COLUMNS, with_sem="delta_e"))
    if data.get("ground_truth_palette_fidelity") is not None:
        lines.append(f"(the ground truth itself scores palette {data['ground_truth_palette_fidelity']:.3f} against the reference, "
                     "colour/GT 1, dE00 0)")
    scale = data["testset"]["real_page_scale"]
    if data.get("paired_delta_e"):
        lines.append("\nPaired over the same cases: MangaColor dE00 minus the other method's (negative = MangaColor closer to the "
                     "truth), mean ± standard error, and the share of cases where MangaColor is closer")
        lines.append(_paired_text(data))
    lines.append(f"\nReal B/W pages (Black Jack, no ground truth): {data['testset']['n_real_pages']} pages"
                 f"{f' at {scale:g} scale' if scale != 1 else ''}, shift {data['testset']['shift_px']} px; means over pages")
    lines.append(report.table(data["aggregate"]["real"], methods, data["conditions"]["real"], report.REAL_COLUMNS))
    if data.get("converter_vs_real"):
        lines.append("\nB/W pages, share of the page: ink / line ink / tone ink / mid-gray (0.1-0.9)")
        for group, st in data["converter_vs_real"].items():
            lines.append(f"  {group:<24} {_pct(st['ink_share'])} / {_pct(st['line_share'])} / {_pct(st['tone_share'])} / "
                         f"{_pct(st['gray_share'])}  (n={st['n']})")
    for name, why in data["skipped"].items():
        lines.append(f"\n{report.METHOD_LABEL.get(name, name)}: {why}")
    lines.append(
        f"\nwall {t['wall_seconds']:.1f}s (model {t['model_seconds']:.1f}s, baselines {t['baseline_seconds']:.1f}s, "
        f"test set {t['testset_seconds']:.1f}s; excluding model {t['wall_excluding_model_seconds']:.1f}s); "
        f"memory: {data['machine']['memory_measure']}"
    )
    return "\n".join(lines)


def rerender(path: Path) -> int:
    """Recompute aggregates and paired differences from a saved bench.json and print its tables."""
    import json

    data = json.loads(Path(path).read_text())
    sources = {c["id"]: c["source"] for c in data["cases"].get("gt", [])}
    per_gt = data["per_case"].get("gt", {})
    data["aggregate"] = {"gt": aggregate(per_gt, GT_METRICS), "real": aggregate(data["per_case"].get("real", {}), REAL_METRICS)}
    data["aggregate_by_source"] = {
        s: aggregate(per_gt, GT_METRICS, lambda cid, s=s: sources.get(cid) == s) for s in sorted(set(sources.values()))
    }
    data["paired_delta_e"] = paired(per_gt) if "ours" in data["methods"] else {}
    report.write_json(data, Path(path))
    (Path(path).parent / "tables.md").write_text(render_markdown(data))
    print(render_tables(data))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    args.argv = argv
    if args.from_json is not None:
        return rerender(args.from_json)
    try:
        data = run(args)
    except DataMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, RequestError) as exc:  # missing weights; --device cuda without CUDA
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(render_tables(data))
    print(f"\nwrote {Path(args.out) / 'bench.json'}" + (f" and {', '.join(data['images'].values())}" if data["images"] else ""))
    return 0
