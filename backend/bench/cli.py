"""`python -m backend bench [--quick] [--out DIR] [--cases N] [--device D] [--weights PATH]`."""

from __future__ import annotations

import argparse
import json
import datetime as _dt
import os
import signal
import sys
import threading
import time
from pathlib import Path

from ..request import RequestError
from . import report
from .data import (
    ALL_SOURCES,
    ATTRIBUTION,
    NEW_SOURCES,
    QUICK_NEW_SOURCES,
    QUICK_SOURCES,
    SET_OF,
    SOURCES,
    DataMissing,
    TestSet,
    fingerprint,
    fingerprint_extended,
)
from .runner import (
    GT_METRICS,
    METHOD_ORDER,
    REAL_METRICS,
    SHIFT_PX,
    KritaResults,
    Results,
    aggregate,
    bars_summary,
    compare_runs,
    krita_prepass,
    machine_info,
    make_ours,
    paired,
    run_gt_cases,
    run_real_pages,
    _baseline,
)

DEFAULT_CASES = 72  # the current set (openclipart, openmoji, peppercarrot), unchanged since issue 10
DEFAULT_NEW_CASES = 67  # the extended set: 19 comicgen pairs, 8 Pepper&Carrot art views, 20 figures, 20 dicebear avatars
QUICK_CASES = 2
QUICK_NEW_CASES = 1
KRITA_MODES = ("auto", "build", "off")
KRITA_CHUNK_DESC = "about 60 Mpx of pages"
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
    p.add_argument("--cases", type=int, default=None,
                   help=f"ground-truth cases of the current set: openclipart, openmoji, peppercarrot (default {DEFAULT_CASES}, quick {QUICK_CASES})")
    p.add_argument("--new-cases", type=int, default=None,
                   help="ground-truth cases of the extended set (issue 10): comicgen line art, dicebear avatars, Pepper&Carrot "
                   f"art, figures on white paper (default {DEFAULT_NEW_CASES}, quick {QUICK_NEW_CASES}; 0 = none)")
    p.add_argument("--sources", default=None,
                   help="comma-separated ground-truth sources to draw from (default all): " + ",".join(ALL_SOURCES))
    p.add_argument("--krita", choices=KRITA_MODES, default=None,
                   help="Krita's Colorize Mask baseline (method krita): auto = use the Krita 5.2.9 chroot if it is there, else skip "
                   "with a note; build = build the chroot first if missing; off. Default auto, off with --quick or with a --methods "
                   "list that does not name krita")
    p.add_argument("--compare", type=Path, default=None, metavar="JSON",
                   help="an earlier bench.json: report MangaColor's dE00 and white kept then and now on the cases with identical inputs")
    p.add_argument("--real-pages", type=int, default=None, help="number of real Black Jack pages (default all 12, quick 1)")
    p.add_argument("--real-scale", type=float, default=None, help=f"scale of the real pages (default 1, quick {QUICK_REAL_SCALE})")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="device for the model")
    p.add_argument("--weights", type=Path, default=None, help="model weights (default: the shipped weights)")
    p.add_argument("--data", type=Path, default=None, help="data root (default ../shared/data from the repo root)")
    p.add_argument("--cache", type=Path, default=None, help="test-set cache (default .cache/bench/)")
    p.add_argument("--methods", default=None, help="comma-separated subset of: " + ",".join(METHOD_ORDER + ("krita",)))
    p.add_argument("--no-images", action="store_true", help="skip the contact sheet and pictures")
    p.add_argument("--quiet", action="store_true", help="print only the tables")
    p.add_argument("--speed", action="store_true",
                   help="time the round trip through a real server instead (sample page and a 6000x8500 page, PNG and frames "
                   "transports, first runs and hints-only re-runs, peak server memory, the page paper's generator); writes speed.json")
    p.add_argument("--speed-runs", type=int, default=5, help="runs per measurement with --speed (median reported; default 5)")
    p.add_argument("--variants", action="store_true",
                   help="issue 13's measurements instead (drafts and variants; python -m backend bench --variants --help); "
                   "writes variants.json")
    p.add_argument("--panel-colour", action="store_true",
                   help="measure per-panel references and a palette across a chapter instead (issue 12; "
                   "python -m backend bench --panel-colour --help for its own options); writes panel_colour.json")
    p.add_argument("--from-json", type=Path, default=None, metavar="JSON",
                   help="run nothing: recompute the aggregates of a saved bench.json, print its tables and write tables.md next to it")
    args = p.parse_args(argv)
    if args.real_scale is not None and not 0.1 <= args.real_scale <= 1.0:
        p.error("--real-scale must be between 0.1 and 1")
    if args.cases is not None and args.cases < 0 or args.new_cases is not None and args.new_cases < 0:
        p.error("--cases and --new-cases must be at least 0")
    if args.cases == 0 and args.new_cases == 0:
        p.error("--cases 0 and --new-cases 0: no ground-truth case left")
    methods_given = args.methods is not None
    args.methods = args.methods or ",".join(METHOD_ORDER)
    unknown = set(args.methods.split(",")) - set(METHOD_ORDER) - {"krita"}
    if unknown:
        p.error(f"unknown method(s) {', '.join(sorted(unknown))}; known: {', '.join(METHOD_ORDER + ('krita',))}")
    if args.sources is not None:
        unknown = set(args.sources.split(",")) - set(ALL_SOURCES)
        if unknown:
            p.error(f"unknown source(s) {', '.join(sorted(unknown))}; known: {', '.join(ALL_SOURCES)}")
    if args.krita is None:
        if methods_given:
            args.krita = "auto" if "krita" in args.methods.split(",") else "off"
        else:
            args.krita = "off" if args.quick else "auto"
    return args


def _krita_module():
    """backend/bench/colorize_mask.py, or None and why (it is written alongside this bench)."""
    try:
        from . import colorize_mask
    except ImportError as exc:
        return None, f"skipped: the Colorize Mask driver (backend/bench/colorize_mask.py) is not available: {exc}"
    return colorize_mask, ""


def krita_setup(mode: str, log=print):
    """(driver module or None, note): whether Krita's Colorize Mask runs in this bench, and why not."""
    if mode == "off":
        return None, "skipped: off (--krita off; the default with --quick or with a --methods list without krita)"
    cm, why = _krita_module()
    if cm is None:
        return None, why
    try:
        ok, note = cm.status()
        if not ok and mode == "build":
            log(f"Krita Colorize Mask: {note}; building the chroot (--krita build)")
            cm.build_chroot(log=log)
            ok, note = cm.status()
    except Exception as exc:  # noqa: BLE001 - KritaUnavailable and anything else: skip the method, not the bench
        return None, f"skipped: {type(exc).__name__}: {exc}"
    if not ok:
        hint = "" if mode == "build" else " (--krita build builds it)"
        return None, f"skipped: {note}{hint}"
    return cm, note


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
    n_new = args.new_cases if args.new_cases is not None else (QUICK_NEW_CASES if args.quick else DEFAULT_NEW_CASES)
    chosen = args.sources.split(",") if args.sources else None
    cur_sources = tuple(s for s in (QUICK_SOURCES if args.quick else SOURCES) if chosen is None or s in chosen)
    if args.quick and chosen is not None:
        cur_sources = tuple(s for s in SOURCES if s in chosen)
    new_sources = tuple(s for s in (QUICK_NEW_SOURCES if args.quick and chosen is None else NEW_SOURCES) if chosen is None or s in chosen)
    n_real = args.real_pages if args.real_pages is not None else (QUICK_REAL_PAGES if args.quick else None)
    wanted = [m for m in METHOD_ORDER if m in args.methods.split(",")]

    # Test set (built once, then read from the cache).
    t0 = time.perf_counter()
    ts = TestSet(args.data, args.cache, log=log)
    cases = ts.select(n_cases, cur_sources) if cur_sources else []
    cases += ts.select(n_new, new_sources) if new_sources and n_new else []
    if not cases:
        raise DataMissing(f"no ground-truth case: none of {', '.join(cur_sources + new_sources) or 'the sources'} has held-out pictures")
    real_scale = args.real_scale if args.real_scale is not None else (QUICK_REAL_SCALE if args.quick else 1.0)
    pages = ts.real_page_files(n_real, quick=args.quick)
    testset_s = time.perf_counter() - t0
    counts = {s: sum(1 for c in cases if c.source == s) for s in ALL_SOURCES}
    log(f"test set {ts.dir.name} + {ts.ext_dir.name}: {len(cases)} ground-truth cases "
        f"({', '.join(f'{v} {k}' for k, v in counts.items() if v)}), {len(pages)} real pages ({testset_s:.1f}s)")
    n_cur = sum(1 for c in cases if c.set == "current")
    if n_cur < n_cases and cur_sources or len(cases) - n_cur < n_new and new_sources:
        log(f"note: only {n_cur} + {len(cases) - n_cur} of the {n_cases} + {n_new} asked-for cases (current + extended) exist")

    methods = {}
    model_info = None
    if "ours" in wanted:
        ours, model_info = make_ours(args.device, args.weights, log=log)
        methods["ours"] = ours
    for m in wanted:
        if m != "ours":
            methods[m] = _baseline(m)
    cm, krita_note = krita_setup(args.krita, log=log)
    log(f"Krita Colorize Mask: {krita_note}")

    contact_order = [c.id for c in cases if c.source == "openclipart"][:4] + [c.id for c in cases if c.source == "peppercarrot"][:2]
    contact_order += [c.id for c in cases if c.id not in contact_order and c.set == "current"]
    contact_ids = set(contact_order[:CONTACT_ROWS])
    contact_current = set(contact_ids)
    # The extended set's own sheet: the first cases of each new source, figures and comicgen twice.
    ext_order: list[str] = []
    for s, n in (("comicgen", 2), ("figures", 2), ("dicebear", 1), ("peppercarrot_art", 1)):
        ext_order += [c.id for c in cases if c.source == s][:n]
    contact_ids |= set(ext_order)

    res = Results()
    krita: KritaResults | None = None
    krita_s = 0.0
    if cm is not None:
        t0 = time.perf_counter()
        log(f"Krita Colorize Mask on {len(cases)} cases x k16, k64 (one session per {KRITA_CHUNK_DESC}):")
        # A SIGTERM during the Krita session unwinds (the driver stops Krita and unmounts the chroot's /proc and /dev).
        previous = signal.signal(signal.SIGTERM, _exit_on_term) if threading.current_thread() is threading.main_thread() else None
        try:
            krita = krita_prepass(cases, cm.run_colorize_mask, lambda jid, ink, hints: cm.MaskJob(id=jid, ink=ink, hints=hints),
                                  log=log, load=ts.load, job_info=getattr(cm, "last_run_info", None))
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        krita_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    log(f"ground-truth cases x {len(methods) + (krita is not None)} methods x 6 conditions:")
    run_gt_cases(cases, methods, res, contact_ids, log=log, load=ts.load, krita=krita)
    gt_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    log(f"real pages x {len(methods)} methods x 2 conditions (+ {SHIFT_PX}px shift):")
    run_real_pages(pages, methods, res, log=log, load=lambda f: ts.real_page(f, real_scale))
    real_s = time.perf_counter() - t0

    per_gt = res.per_case.get("gt", {})
    agg_gt, agg_by_source, agg_by_set = _aggregates(per_gt, res.case_info.get("gt", []))
    agg_real = aggregate(res.per_case.get("real", {}), REAL_METRICS)
    methods_run = {m: report.METHOD_LABEL[m] for m in methods}
    if krita is not None and any("krita" in row for row in per_gt.values()):
        methods_run["krita"] = report.METHOD_LABEL["krita"]
    skipped = {}
    if "krita" not in methods_run:
        skipped["krita"] = krita_note if cm is None else "skipped: no case got a result from the Colorize Mask"
    krita_cases = res.skipped_cases.get("krita", {})

    # Pictures.
    t0 = time.perf_counter()
    images = {}
    if not args.no_images:
        contact_info = sorted(
            [c for c in res.case_info.get("gt", []) if c["id"] in contact_current], key=lambda c: contact_order.index(c["id"])
        )
        srcs = sorted({c["source"] for c in contact_info})
        footer = "Pictures: " + "; ".join(ATTRIBUTION[s] for s in srcs) + ".\nB/W inputs made by MangaColor's converter (backend/synth.py); hints sampled from the ground truth."
        report.contact_sheet(res.thumbs, contact_info, out / "bench_contact.png", footer=footer)
        images["contact_sheet"] = "bench_contact.png"
        ext_info = sorted([c for c in res.case_info.get("gt", []) if c["id"] in ext_order], key=lambda c: ext_order.index(c["id"]))
        if ext_info:
            credits = sorted({c["attribution"] for c in ext_info})
            footer = ("Pictures: " + "; ".join(credits) + ".\nB/W inputs: the real line art (comicgen), fills turned white, or "
                      "MangaColor's converter (backend/synth.py); colorist hints sampled from the ground truth.")
            report.contact_sheet(res.thumbs, ext_info, out / "bench_contact_extended.png", footer=footer)
            images["contact_sheet_extended"] = "bench_contact_extended.png"
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

    compare = None
    if args.compare is not None:
        import json

        compare = compare_runs(per_gt, res.case_info.get("gt", []), json.loads(Path(args.compare).read_text()))
        compare["file"] = str(args.compare)
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
            "fingerprint_extended": fingerprint_extended(),
            "cache": str(ts.dir),
            "cache_extended": str(ts.ext_dir),
            "data_root": str(ts.root),
            "n_cases": len(cases),
            "n_real_pages": len(pages),
            "real_page_scale": real_scale,
            "hint_counts": [0, 16, 64],
            "shift_px": SHIFT_PX,
            "sources": {s: sum(1 for c in cases if c.source == s) for s in ALL_SOURCES},
            "sets": {st: sum(1 for c in cases if c.set == st) for st in ("current", "extended")},
            "set_of_source": SET_OF,
            "ink_kinds": _count(c["ink_kind"] for c in res.case_info.get("gt", [])),
            "attribution": ATTRIBUTION,
        },
        "methods": methods_run,
        "skipped": skipped,
        "skipped_cases": {"krita": krita_cases} if krita_cases else {},
        "krita": None if krita is None else {
            "note": krita_note, "mode": args.krita, "sessions": krita.sessions, "seconds": krita_s,
            "jobs_ok": len(krita.composites), "jobs_missing": len(krita.missing),
            "seconds_meaning": "a job's seconds: its own time inside Krita where the driver reports it (seconds_total), else "
                               "its session's wall time shared equally among the session's jobs; cpu_seconds: the session's "
                               "child-process CPU time shared equally (start-up included); peak_mb is not measured (another process)",
        },
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
            "The current set (openclipart, openmoji, peppercarrot) has sample_hints dots on converter pages; the extended set "
            "(comicgen, dicebear, peppercarrot_art, figures) has colorist hints (1-px dots, 2-5 px squares, 4-16 px strokes, "
            "about 10 % on the white background) on real line art, fills turned white, or converter pages.",
            "Krita's Colorize Mask (krita) runs on ground-truth cases only; at k0 it is the page uncoloured, its +ref rows "
            "copy the rows without.",
        ],
        "timing": {
            "wall_seconds": wall,
            "testset_seconds": testset_s,
            "gt_cases_seconds": gt_s,
            "real_pages_seconds": real_s,
            "images_seconds": images_s,
            "krita_seconds": krita_s,
            "model_seconds": model_total,
            "baseline_seconds": res.baseline_seconds,
            "wall_excluding_model_seconds": wall - model_total,
        },
        "aggregate": {"gt": agg_gt, "real": agg_real},
        "converter_vs_real": {
            group: {k: _mean([c.get(k) for c in infos]) for k in ("ink_share", "line_share", "tone_share", "gray_share")} | {"n": len(infos)}
            for group, infos in {
                **{f"{'real line art' if s == 'comicgen' else 'synthetic'} {s}": [c for c in res.case_info.get("gt", []) if c["source"] == s]
                   for s in ALL_SOURCES},
                "real blackjack": res.case_info.get("real", []),
            }.items()
            if infos
        },
        "ground_truth_palette_fidelity": _mean([c["palette_fidelity_of_gt"] for c in res.case_info.get("gt", [])]),
        "aggregate_by_source": agg_by_source,
        "aggregate_by_set": agg_by_set,
        "bars": bars_summary(per_gt, {c["id"]: c.get("set", "current") for c in res.case_info.get("gt", [])}) if "ours" in methods else {},
        "compare": compare,
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
    bars = _bars_lines(data)
    parts = [head]
    if bars:
        parts += ["**Issue 10's bars** (MangaColor):\n", "```", *bars, "```\n"]
    parts += [
        f"**Ground truth** — {data['testset']['n_cases']} held-out cases ({src}); means over cases (± standard error for dE00).\n",
        report.markdown_table(data["aggregate"]["gt"], methods, data["conditions"]["gt"], report.GT_COLUMNS, with_sem="delta_e"),
        f"\nThe ground truth itself scores palette {data.get('ground_truth_palette_fidelity') or float('nan'):.3f} against the reference "
        "(the ceiling of that column), colour/GT 1 and dE00 0.\n",
        _paired_md(data),
        "\n**Per set and source** — means over cases; white min and ink min are the lowest over the six conditions.\n",
        _group_md(data),
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
    for name, cases in (data.get("skipped_cases") or {}).items():
        parts.append(f"\n{report.METHOD_LABEL.get(name, name)}: {len(cases)} case(s) without results, left out of its rows: "
                     + "; ".join(f"{k} ({v})" for k, v in list(cases.items())[:10]) + ("; ..." if len(cases) > 10 else "") + ".")
    return "\n".join(parts) + "\n"


def _exit_on_term(signum, frame):
    raise SystemExit(128 + signum)


def _aggregates(per_gt: dict, case_info: list[dict]) -> tuple[dict, dict, dict]:
    """(over all cases, per source, per set) aggregates of the ground-truth cases."""
    sources = {c["id"]: c["source"] for c in case_info}
    sets = {c["id"]: c.get("set", SET_OF.get(c["source"], "current")) for c in case_info}
    agg = aggregate(per_gt, GT_METRICS)
    by_source = {s: aggregate(per_gt, GT_METRICS, lambda cid, s=s: sources.get(cid) == s) for s in ALL_SOURCES if s in sources.values()}
    by_set = {st: aggregate(per_gt, GT_METRICS, lambda cid, st=st: sets.get(cid) == st) for st in ("current", "extended") if st in sets.values()}
    return agg, by_source, by_set


def _count(items) -> dict:
    out: dict = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


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


def _group_rows(data: dict) -> tuple[list[str], list[list[str]]]:
    """Per set and per source, per method: n, dE00 at k0/k16/k64, the lowest white kept over the six
    conditions, hint dE at k16/k64, ink (lowest)."""
    head = ["cases", "method", "n", "dE k0", "dE k16", "dE k64", "white min", "hint dE k16", "hint dE k64", "ink min"]
    groups = [(f"set: {k}", v) for k, v in (data.get("aggregate_by_set") or {}).items()]
    groups += [(k, v) for k, v in (data.get("aggregate_by_source") or {}).items()]
    rows = []
    for label, agg in groups:
        for m in data["methods"]:
            conds = agg.get(m)
            if not conds:
                continue
            get = lambda c, k: (conds.get(c, {}).get(k) or {}).get("mean")  # noqa: E731
            whites = [get(c, "white_preservation") for c in conds if get(c, "white_preservation") is not None]
            inks = [get(c, "ink_preservation") for c in conds if get(c, "ink_preservation") is not None]
            n = max((conds.get(c, {}).get("delta_e") or {}).get("n", 0) for c in conds)
            rows.append([label, report.METHOD_LABEL.get(m, m), str(n), report._fmt(get("k0", "delta_e")), report._fmt(get("k16", "delta_e")),
                         report._fmt(get("k64", "delta_e")), report._fmt(min(whites) if whites else None, 3),
                         report._fmt(get("k16", "hint_adherence")), report._fmt(get("k64", "hint_adherence")),
                         report._fmt(min(inks) if inks else None, 3)])
    return head, rows


def _group_text(data: dict) -> str:
    head, rows = _group_rows(data)
    return report.text_table(head, rows) if rows else ""


def _group_md(data: dict) -> str:
    head, rows = _group_rows(data)
    if not rows:
        return ""
    out = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])


def _ok(p) -> str:
    return "n/a" if p is None else ("MET" if p else "not met")


def _bars_lines(data: dict) -> list[str]:
    """Issue 10's bars, one line each, per scope (extended set, all cases, current set)."""
    bars = data.get("bars") or {}
    lines = []
    for scope in ("extended", "all", "current"):
        b = bars.get(scope)
        if not b:
            continue
        lines.append(f"{scope} ({b['n']} cases):")
        for cond in ("k16", "k64"):
            r = b[f"de_vs_krita_{cond}"]
            if r["ratio"] is None:
                lines.append(f"  dE00 {cond}: MangaColor {report._fmt(r['ours'])} vs Krita Colorize Mask: not run -> n/a "
                             f"(bar: <= {r['bar']:.2f} x Krita)")
            else:
                lines.append(f"  dE00 {cond}: MangaColor {r['ours']:.2f} vs Krita Colorize Mask {r['krita']:.2f} on {r['n']} cases: "
                             f"ratio {r['ratio']:.3f} (bar <= {r['bar']:.2f}) -> {_ok(r['pass'])}")
        w = b["white_min"]
        lines.append(f"  white kept, lowest over conditions: {report._fmt(w['value'], 3)} at {w['condition']} "
                     f"(bar >= {w['bar']:.2f}) -> {_ok(w['pass'])}")
        h = b["hint_adherence_max"]
        lines.append(f"  hint adherence, highest over conditions: {report._fmt(h['value'])} at {h['condition']} "
                     f"(bar <= {h['bar']:g}) -> {_ok(h['pass'])}")
        i = b["ink_min"]
        lines.append(f"  ink, lowest over conditions: {report._fmt(i['value'], 4)} (bar 1.0) -> {_ok(i['pass'])}")
        r = b["k0_vs_none"]
        lines.append(f"  dE00 k0: MangaColor {report._fmt(r['ours'])} vs no colour {report._fmt(r['none'])}: ratio "
                     f"{report._fmt(r['ratio'], 3)} (bar <= {r['bar']:.2f}) -> {_ok(r['pass'])}")
    cmp = data.get("compare")
    if cmp:
        lines.append(f"against {cmp['file']} ({cmp['n']} cases with identical inputs; {cmp['differing_inputs']} with changed inputs "
                     "left out), MangaColor then -> now:")
        for scope in ("current", "extended"):
            sc = cmp.get(scope)
            if not sc:
                continue
            cells = []
            for cond, row in sc["conditions"].items():
                d, wp = row["delta_e"], row["white_preservation"]
                cells.append(f"{cond} dE {report._fmt(d['then'])}->{report._fmt(d['now'])} white "
                             f"{report._fmt(wp['then'], 3)}->{report._fmt(wp['now'], 3)}")
            lines.append(f"  {scope} ({sc['n']}): " + "; ".join(cells))
    return lines


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
                 f"({', '.join(f'{v} {k}' for k, v in data['testset']['sources'].items() if v)}); B/W by the converter "
                 "(real line art for comicgen, fills turned white for some dicebear and figures); means over cases")
    lines.append(report.table(data["aggregate"]["gt"], methods, data["conditions"]["gt"], report.GT_COLUMNS, with_sem="delta_e"))
    if data.get("ground_truth_palette_fidelity") is not None:
        lines.append(f"(the ground truth itself scores palette {data['ground_truth_palette_fidelity']:.3f} against the reference, "
                     "colour/GT 1, dE00 0)")
    scale = data["testset"]["real_page_scale"]
    if data.get("paired_delta_e"):
        lines.append("\nPaired over the same cases: MangaColor dE00 minus the other method's (negative = MangaColor closer to the "
                     "truth), mean ± standard error, and the share of cases where MangaColor is closer")
        lines.append(_paired_text(data))
    group = _group_text(data)
    if group:
        lines.append("\nPer set and source: means over cases; white min / ink min = the lowest over the six conditions")
        lines.append(group)
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
    for name, cases in (data.get("skipped_cases") or {}).items():
        lines.append(f"\n{report.METHOD_LABEL.get(name, name)}: {len(cases)} case(s) without results: "
                     + "; ".join(f"{k} ({v})" for k, v in list(cases.items())[:5]) + ("; ..." if len(cases) > 5 else ""))
    bars = _bars_lines(data)
    if bars:
        lines.append("\nIssue 10's bars (MangaColor):")
        lines += bars
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
    per_gt = data["per_case"].get("gt", {})
    info = data["cases"].get("gt", [])
    agg_gt, data["aggregate_by_source"], data["aggregate_by_set"] = _aggregates(per_gt, info)
    data["aggregate"] = {"gt": agg_gt, "real": aggregate(data["per_case"].get("real", {}), REAL_METRICS)}
    data["paired_delta_e"] = paired(per_gt) if "ours" in data["methods"] else {}
    data["bars"] = bars_summary(per_gt, {c["id"]: c.get("set", SET_OF.get(c["source"], "current")) for c in info}) \
        if "ours" in data["methods"] else {}
    report.write_json(data, Path(path))
    (Path(path).parent / "tables.md").write_text(render_markdown(data))
    print(render_tables(data))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--panel-colour" in argv:
        from .panel_colour import main as panel_colour_main

        return panel_colour_main(argv)
    if "--variants" in argv:
        from .variants_bench import main as variants_main

        return variants_main(argv)
    args = parse_args(argv)
    args.argv = argv
    if args.from_json is not None:
        return rerender(args.from_json)
    if args.speed:
        from .speed import run_speed, text_report

        device = "cuda" if args.device == "cuda" else "cpu"
        out = run_speed(device=device, runs=max(1, args.speed_runs), big=not args.quick, big_runs=1 if args.quick else 3)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "speed.json").write_text(json.dumps(out, indent=1))
        print(text_report(out))
        print(f"\nwrote {Path(args.out) / 'speed.json'}")
        return 0
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
