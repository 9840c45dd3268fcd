"""`python -m backend bench --panel-colour`: issue 12's two measurements on synthetic pages.

1. Per-panel references. A page of two framed panels, each holding a different character (held-out
   DiceBear avatars, `data.extended_candidates`), converted to B/W manga by the project's converter
   (`synth.manga_from_color`). Each character's reference is a different view of its picture (mirrored,
   cropped, rescaled: `data.reference_view`, as the bench's references). Conditions: each panel given
   its own character's reference (`panels`), one blended reference for the whole page (both references
   on the page, no panels), no reference. Measured per panel, inside its frame: palette fidelity
   (`metrics.palette_fidelity`, 216-bin histogram intersection of the output with a reference) to its
   own character's reference and to the other's. The ground truth (the colour page multiplied by its
   ink, what a perfect colorization shows) is scored the same way: the ceiling of the measure.

2. Palette library across a chapter. One character drawn on N pages, in the left or right panel, at
   different scales and positions, next to a different character on every page. Page 1 is colorized
   with 16 colorist hints (`hints.colorist_hints`); a palette is saved from a selection of page 1's
   colour layer (the character's pixels: `palettes.palette_from_image(..., mask)`, what the plugin's
   "save palette from selection" sends). Pages 2..N are colorized without hints: without a palette,
   with that palette on the character's panel, on the whole page, and (for comparison) with a
   palette saved from the character's reference picture on its panel. Measured: the character's mean
   colour per page (CIE Lab mean of the colour layer over the character's pixels that are not ink),
   and per part (the picture's main colours, k-means, carried to each page with the placement), and
   the CIEDE2000 between pages: page 1 against each later page, and all pairs.

Everything is drawn from generators seeded by fixed numbers, so a run is the same on every machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .. import color
from ..palettes import palette_from_image
from ..request import ColorizeOptions, ColorizeRequest, ColourSources, PanelInput
from . import metrics
from .data import DataMissing, extended_candidates, extended_view, reference_view, resolve_data_root

SOURCE = "dicebear"
PAGE_H, PAGE_W = 900, 1400
MARGIN, GUTTER, FRAME = 30, 24, 4
FIDELITY_MARGIN = 0.1  # the bar: own reference beats the other's by this much
SCALES = (0.9, 0.6, 0.75, 0.5, 0.8, 0.65)  # the chapter's character on page j (of its panel's short side)
N_PARTS = 4  # main colours of a character (k-means in Lab) for the per-part consistency
SEED = 12


@dataclass
class Character:
    id: str
    picture: np.ndarray  # uint8 RGB on white, as in the data
    figure: np.ndarray  # cropped to what is not white
    parts: np.ndarray  # int32 labels over `figure`: -1 = white or ink-dark, else its main colour


@dataclass
class Page:
    gt: np.ndarray  # uint8 RGB
    ink: np.ndarray  # float32, 1 = paper
    boxes: list[tuple[int, int, int, int]]  # panels (x0, y0, x1, y1), the frame included
    figure: list[np.ndarray] = field(default_factory=list)  # per panel: bool HxW, the character's pixels
    parts: list[np.ndarray] = field(default_factory=list)  # per panel: int32 HxW part labels (-1 elsewhere)


def _parts(figure: np.ndarray) -> np.ndarray:
    lab = color.rgb_to_lab(figure.reshape(-1, 3).astype(np.float64) / 255.0)
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    use = ~((lab[:, 0] > 90) & (chroma < 8)) & (lab[:, 0] > 25)  # not white paper, not outline
    labels = np.full(len(lab), -1, np.int32)
    if use.sum() >= 4 * N_PARTS:
        cv2.setRNGSeed(0)
        criteria = (cv2.TERM_CRITERIA_MAX_ITER + cv2.TERM_CRITERIA_EPS, 30, 0.5)
        _, lab_labels, _ = cv2.kmeans(lab[use].astype(np.float32), N_PARTS, None, criteria, 3, cv2.KMEANS_PP_CENTERS)
        labels[use] = lab_labels.ravel()
    return labels.reshape(figure.shape[:2])


def characters(root: Path, n: int) -> list[Character]:
    """The first `n` held-out characters of the bench's DiceBear order (styles interleaved)."""
    out = []
    for case_id, spec in extended_candidates(root, SOURCE)[:n]:
        img, _ = extended_view(root, SOURCE, spec)
        ys, xs = np.nonzero(img.min(-1) < 240)
        fig = np.ascontiguousarray(img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
        out.append(Character(case_id, img, fig, _parts(fig)))
    if len(out) < n:
        raise DataMissing(f"only {len(out)} held-out {SOURCE} pictures under {root}; {n} needed")
    return out


def panel_boxes() -> list[tuple[int, int, int, int]]:
    half = (PAGE_W - 2 * MARGIN - GUTTER) // 2
    return [(MARGIN, MARGIN, MARGIN + half, PAGE_H - MARGIN), (MARGIN + half + GUTTER, MARGIN, PAGE_W - MARGIN, PAGE_H - MARGIN)]


def polygon(box: tuple[int, int, int, int]) -> list[tuple[int, int]]:
    x0, y0, x1, y1 = box
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def inside(box: tuple[int, int, int, int]) -> tuple[slice, slice]:
    """The panel's picture area, within its frame."""
    x0, y0, x1, y1 = box
    m = FRAME + 2
    return slice(y0 + m, y1 - m), slice(x0 + m, x1 - m)


def build_page(chars: list[tuple[Character, float]], seed: int) -> Page:
    """A white page, two framed panels, character i drawn in panel i at `scale` (of the panel's
    inner short side) at a random spot, then converted to B/W by the training converter."""
    from ..synth import manga_from_color

    rng = np.random.default_rng([SEED, seed])
    gt = np.full((PAGE_H, PAGE_W, 3), 255, np.uint8)
    boxes = panel_boxes()
    page = Page(gt=gt, ink=np.zeros(0, np.float32), boxes=boxes)
    for (char, scale), box in zip(chars, boxes):
        ys, xs = inside(box)
        ih, iw = ys.stop - ys.start, xs.stop - xs.start
        s = scale * min(ih / char.figure.shape[0], iw / char.figure.shape[1])
        size = (max(8, round(char.figure.shape[1] * s)), max(8, round(char.figure.shape[0] * s)))
        fig = cv2.resize(char.figure, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        parts = cv2.resize(char.parts, size, interpolation=cv2.INTER_NEAREST)
        y0 = ys.start + int(rng.integers(0, ih - size[1] + 1))
        x0 = xs.start + int(rng.integers(0, iw - size[0] + 1))
        gt[y0 : y0 + size[1], x0 : x0 + size[0]] = fig
        mask = np.zeros(gt.shape[:2], bool)
        mask[y0 : y0 + size[1], x0 : x0 + size[0]] = fig.min(-1) < 240
        lab = np.full(gt.shape[:2], -1, np.int32)
        lab[y0 : y0 + size[1], x0 : x0 + size[0]] = parts
        page.figure.append(mask)
        page.parts.append(lab)
    for x0, y0, x1, y1 in boxes:
        cv2.rectangle(gt, (x0, y0), (x1 - 1, y1 - 1), (0, 0, 0), FRAME)
    page.ink = np.ascontiguousarray(manga_from_color(gt.astype(np.float32) / 255.0, rng, strength=1.0), np.float32)
    return page


def _coloured(rgb: np.ndarray) -> np.ndarray:
    """Pixels that carry colour: not white paper (L > 90, chroma < 8), not ink (L < 25)."""
    lab = color.rgb_to_lab(rgb.reshape(-1, 3).astype(np.float64) / 255.0)
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    return (~((lab[:, 0] > 90) & (chroma < 8)) & (lab[:, 0] >= 25)).reshape(rgb.shape[:2])


def colour_fidelity(output: np.ndarray, reference: np.ndarray) -> float:
    """`metrics.palette_fidelity` over the pixels that carry colour in both (paper and ink left out
    of each): how well the character's colours match, whatever the share of white around it."""
    a, b = output[..., :3], reference[..., :3]
    ma, mb = _coloured(a), _coloured(b)
    if ma.sum() == 0 or mb.sum() == 0:
        return 0.0
    return color.histogram_intersection(color.histogram216(a, ma), color.histogram216(b, mb))


def colorize_page(model, page: Page, hints=None, references=(), palettes=(), panels=None, options=None):  # type: ignore[no-untyped-def]
    from ..pipeline import colorize

    req = ColorizeRequest(ink=page.ink, hints=hints, references=list(references), palettes=list(palettes), panels=panels,
                          options=options or ColorizeOptions())
    return colorize(req, model=model)


# ----------------------------------------------------------------------------- 1. per-panel references


def per_panel(root: Path, model, pairs: int = 6, hint_counts: tuple[int, ...] = (0, 16), log=print) -> dict:  # type: ignore[no-untyped-def]
    from ..hints import colorist_hints

    chars = characters(root, 2 * pairs)
    rows = []
    for p in range(pairs):
        a, b = chars[2 * p], chars[2 * p + 1]
        page = build_page([(a, 0.85), (b, 0.85)], seed=100 + p)
        refs = [reference_view(c.picture, np.random.default_rng([SEED, 200 + p, i])) for i, c in enumerate((a, b))]
        polys = [polygon(box) for box in page.boxes]
        for k in hint_counts:
            hints = colorist_hints(page.gt, page.ink, k, np.random.default_rng([SEED, 300 + p, k])) if k else None
            conditions = {
                "per-panel": dict(panels=[PanelInput(polys[i], ColourSources((refs[i],))) for i in range(2)]),
                "per-panel, dominant 0.25": dict(panels=[PanelInput(polys[i], ColourSources((refs[i],))) for i in range(2)],
                                                 options=ColorizeOptions(dominant_scale=0.25)),
                "blended": dict(references=refs),
                "blended, same panels": dict(references=refs, panels=[PanelInput(polys[i]) for i in range(2)]),
                "none": {},
            }
            truth = np.clip(page.gt.astype(np.float32) * page.ink[..., None] + 0.5, 0, 255).astype(np.uint8)
            for name, kw in {**conditions, "ground truth": None}.items():
                t0 = time.perf_counter()
                out = truth if kw is None else colorize_page(model, page, hints, **kw).composite
                for i in range(2):
                    crop = out[inside(page.boxes[i])]
                    own, other = metrics.palette_fidelity(crop, refs[i]), metrics.palette_fidelity(crop, refs[1 - i])
                    c_own, c_other = colour_fidelity(crop, refs[i]), colour_fidelity(crop, refs[1 - i])
                    rows.append({"pair": p, "panel": i, "character": (a, b)[i].id, "other": (a, b)[1 - i].id, "hints": k,
                                 "condition": name, "own": round(own, 4), "other_fid": round(other, 4), "margin": round(own - other, 4),
                                 "colour_own": round(c_own, 4), "colour_other": round(c_other, 4), "colour_margin": round(c_own - c_other, 4)})
                log(f"  pair {p} ({a.id} | {b.id}) {k:2d} hints {name:9s}: "
                    + ", ".join(f"panel {r['panel'] + 1} own {r['own']:.3f} other {r['other_fid']:.3f}" for r in rows[-2:])
                    + f"  [{time.perf_counter() - t0:.1f}s]")
    return {"pairs": pairs, "rows": rows, "summary": per_panel_summary(rows)}


def per_panel_summary(rows: list[dict]) -> list[dict]:
    out = []
    for k in sorted({r["hints"] for r in rows}):
        blended = {(r["pair"], r["panel"]): r["own"] for r in rows if r["hints"] == k and r["condition"] == "blended"}
        blended_p = {(r["pair"], r["panel"]): r["own"] for r in rows if r["hints"] == k and r["condition"] == "blended, same panels"}
        truth_ok = {(r["pair"], r["panel"]) for r in rows if r["hints"] == k and r["condition"] == "ground truth" and r["margin"] >= FIDELITY_MARGIN}
        for name in ("per-panel", "per-panel, dominant 0.25", "blended", "blended, same panels", "none", "ground truth"):
            sel = [r for r in rows if r["hints"] == k and r["condition"] == name]
            if not sel:
                continue
            margins = [r["margin"] for r in sel]
            entry = {
                "hints": k, "condition": name, "panels": len(sel),
                "own": round(float(np.mean([r["own"] for r in sel])), 4),
                "other": round(float(np.mean([r["other_fid"] for r in sel])), 4),
                "margin_mean": round(float(np.mean(margins)), 4), "margin_min": round(float(np.min(margins)), 4),
                "panels_margin_ok": int(sum(m >= FIDELITY_MARGIN for m in margins)),
                "truth_ok_panels": len(truth_ok),
                "margin_ok_where_truth_ok": int(sum(r["margin"] >= FIDELITY_MARGIN for r in sel if (r["pair"], r["panel"]) in truth_ok)),
                "colour_own": round(float(np.mean([r["colour_own"] for r in sel])), 4),
                "colour_other": round(float(np.mean([r["colour_other"] for r in sel])), 4),
                "colour_margin_ok": int(sum(r["colour_margin"] >= FIDELITY_MARGIN for r in sel)),
            }
            if name.startswith("per-panel") and blended:
                entry["panels_beating_blended"] = int(sum(r["own"] > blended[(r["pair"], r["panel"])] for r in sel))
                entry["gain_over_blended"] = round(float(np.mean([r["own"] - blended[(r["pair"], r["panel"])] for r in sel])), 4)
            if name.startswith("per-panel") and blended_p:
                entry["panels_beating_blended_same_panels"] = int(sum(r["own"] > blended_p[(r["pair"], r["panel"])] for r in sel))
                entry["gain_over_blended_same_panels"] = round(
                    float(np.mean([r["own"] - blended_p[(r["pair"], r["panel"])] for r in sel])), 4)
            out.append(entry)
    return out


# ----------------------------------------------------------------------------- 2. palette across a chapter


def _means(layer: np.ndarray, page: Page, panel: int) -> tuple[np.ndarray, dict[int, tuple[np.ndarray, int]]]:
    """The character's mean Lab over its non-ink pixels, and per part (mean, pixel count)."""
    rgb = layer[..., :3]
    where = page.figure[panel] & (page.ink >= metrics.INK_LEVEL)
    lab = color.rgb_to_lab(rgb[where].astype(np.float64) / 255.0)
    whole = lab.mean(0)
    parts = {}
    labels = page.parts[panel][where]
    for q in range(N_PARTS):
        sel = labels == q
        if sel.sum() >= 30:
            parts[q] = (lab[sel].mean(0), int(sel.sum()))
    return whole, parts


def _de(a: np.ndarray, b: np.ndarray) -> float:
    return float(color.ciede2000(a[None], b[None])[0])


def _consistency(means: list[tuple[np.ndarray, dict]]) -> dict:
    """dE00 between page 1 and each later page, and over all pairs of pages: whole character and per part."""
    def part_de(p: dict, q: dict) -> float:
        common = sorted(set(p) & set(q))
        w = np.array([min(p[c][1], q[c][1]) for c in common], np.float64)
        return float(np.average([_de(p[c][0], q[c][0]) for c in common], weights=w)) if common else float("nan")

    first = [(_de(means[0][0], m[0]), part_de(means[0][1], m[1])) for m in means[1:]]
    pairs = [(_de(a[0], b[0]), part_de(a[1], b[1])) for a, b in itertools.combinations(means, 2)]
    return {
        "vs_page1_whole": round(float(np.mean([f[0] for f in first])), 2),
        "vs_page1_parts": round(float(np.nanmean([f[1] for f in first])), 2),
        "pairwise_whole": round(float(np.mean([p[0] for p in pairs])), 2),
        "pairwise_parts": round(float(np.nanmean([p[1] for p in pairs])), 2),
    }


def chapter(root: Path, model, n_characters: int = 3, pages: int = 4, first_hints: int = 16, offset: int = 12, log=print) -> dict:  # type: ignore[no-untyped-def]
    from ..hints import colorist_hints

    chars = characters(root, offset + n_characters * (pages + 1))
    results = []
    for c in range(n_characters):
        hero = chars[offset + c]
        others = [chars[offset + n_characters + c * pages + j] for j in range(pages)]  # a different neighbour on every page
        built = []
        for j in range(pages):
            side = j % 2
            pair = [(hero, SCALES[j % len(SCALES)]), (others[j], 0.8)]
            page = build_page(pair if side == 0 else pair[::-1], seed=1000 + 10 * c + j)
            built.append((page, side))
        page1, side1 = built[0]
        hints1 = colorist_hints(page1.gt, page1.ink, first_hints, np.random.default_rng([SEED, 400 + c]))
        layer1 = colorize_page(model, page1, hints1).color_layer
        saved = palette_from_image(np.ascontiguousarray(layer1[..., :3]), hero.id, mask=page1.figure[side1], source="selection")
        from_ref = palette_from_image(reference_view(hero.picture, np.random.default_rng([SEED, 500 + c])), hero.id)
        first = _means(layer1, page1, side1)
        conditions = {
            "no palette": lambda page, side: {},
            "palette from page 1, on the character's panel": lambda page, side: dict(
                panels=[PanelInput(polygon(page.boxes[side]), ColourSources(palettes=(saved,)))]),
            "palette from page 1, on the whole page": lambda page, side: dict(palettes=[saved]),
            "palette from the reference, on the character's panel": lambda page, side: dict(
                panels=[PanelInput(polygon(page.boxes[side]), ColourSources(palettes=(from_ref,)))]),
        }
        for name, make in conditions.items():
            t0 = time.perf_counter()
            means = [first] + [_means(colorize_page(model, page, None, **make(page, side)).color_layer, page, side)
                               for page, side in built[1:]]
            res = {"character": hero.id, "condition": name, **_consistency(means)}
            results.append(res)
            log(f"  {hero.id} {name:52s}: dE00 vs page 1 {res['vs_page1_whole']:5.2f} (parts {res['vs_page1_parts']:5.2f}), "
                f"pairwise {res['pairwise_whole']:5.2f} (parts {res['pairwise_parts']:5.2f})  [{time.perf_counter() - t0:.1f}s]")
    summary = []
    for name in dict.fromkeys(r["condition"] for r in results):
        sel = [r for r in results if r["condition"] == name]
        summary.append({"condition": name, **{k: round(float(np.mean([r[k] for r in sel])), 2)
                                              for k in ("vs_page1_whole", "vs_page1_parts", "pairwise_whole", "pairwise_parts")}})
    return {"characters": n_characters, "pages": pages, "first_page_hints": first_hints, "rows": results, "summary": summary}


# ----------------------------------------------------------------------------- report


def markdown(data: dict) -> str:
    lines = []
    if "per_panel" in data:
        pp = data["per_panel"]
        lines += [f"Per-panel references ({pp['pairs']} two-panel pages, {2 * pp['pairs']} panels; palette fidelity inside each panel's frame):", "",
                  "| hints | condition | fidelity to own reference | to the other's | margin mean | margin min | panels with margin >= 0.1 "
                  "| ... of those where the truth has it | per-panel beats blended (no panels / same panels) "
                  "| colours only: own | other | margin >= 0.1 |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in pp["summary"]:
            beat = ""
            if "panels_beating_blended" in s:
                beat = f"{s['panels_beating_blended']}/{s['panels']} ({s['gain_over_blended']:+.3f})"
            if "panels_beating_blended_same_panels" in s:
                beat += f" / {s['panels_beating_blended_same_panels']}/{s['panels']} ({s['gain_over_blended_same_panels']:+.3f})"
            lines.append(f"| {s['hints']} | {s['condition']} | {s['own']:.3f} | {s['other']:.3f} | {s['margin_mean']:+.3f} | "
                         f"{s['margin_min']:+.3f} | {s['panels_margin_ok']}/{s['panels']} | "
                         f"{s['margin_ok_where_truth_ok']}/{s['truth_ok_panels']} | {beat} | "
                         f"{s['colour_own']:.3f} | {s['colour_other']:.3f} | {s['colour_margin_ok']}/{s['panels']} |")
        lines.append("")
    if "chapter" in data:
        ch = data["chapter"]
        lines += [f"Palette across a chapter ({ch['characters']} characters x {ch['pages']} pages; page 1 with "
                  f"{ch['first_page_hints']} hints, pages 2..{ch['pages']} without; dE00 of the character's mean colour):", "",
                  "| condition (pages 2..N) | vs page 1, whole | vs page 1, per part | all pairs, whole | all pairs, per part |",
                  "|---|---|---|---|---|"]
        for s in ch["summary"]:
            lines.append(f"| {s['condition']} | {s['vs_page1_whole']:.2f} | {s['vs_page1_parts']:.2f} | "
                         f"{s['pairwise_whole']:.2f} | {s['pairwise_parts']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m backend bench --panel-colour", description=__doc__.split("\n\n")[0])
    p.add_argument("--panel-colour", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--pairs", type=int, default=6, help="two-panel pages for the per-panel measurement (default 6)")
    p.add_argument("--hints", default="0,16", help="hint counts for the per-panel measurement (default 0,16)")
    p.add_argument("--characters", type=int, default=3, help="characters for the chapter measurement (default 3)")
    p.add_argument("--pages", type=int, default=4, help="pages per chapter (default 4)")
    p.add_argument("--only", choices=("per-panel", "chapter"), default=None)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--out", type=Path, default=Path("bench_out"))
    args = p.parse_args(argv)
    from ..pipeline import get_model

    try:
        root = resolve_data_root(args.data)
        model = get_model(args.device)
        data: dict = {"device": str(model.device), "model": model.version}
        if args.only in (None, "per-panel"):
            print("per-panel references:")
            data["per_panel"] = per_panel(root, model, args.pairs, tuple(int(k) for k in args.hints.split(",")))
        if args.only in (None, "chapter"):
            print("palette across a chapter:")
            data["chapter"] = chapter(root, model, args.characters, args.pages)
    except DataMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "panel_colour.json").write_text(json.dumps(data, indent=1))
    print()
    print(markdown(data))
    print(f"wrote {args.out / 'panel_colour.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
