"""The bench's outputs: the terminal table, the JSON, the contact sheet, the dE-vs-hints plot and
the converter-vs-real picture (PIL only, no plotting library)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .runner import GT_CONDITIONS, METHOD_LABEL, REAL_CONDITIONS, cond_name

_FONT_PATHS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "DejaVuSans.ttf")


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for p in _FONT_PATHS:
        try:
            return ImageFont.truetype(p, size)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def clean_json(obj):
    """NaN/inf -> None, numpy scalars -> Python, so the JSON is strict."""
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def write_json(report: dict, path: Path) -> None:
    path.write_text(json.dumps(clean_json(report), indent=1, ensure_ascii=False, allow_nan=False))


# ----------------------------------------------------------------------------- table


def _fmt(v, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.{digits}f}"


GT_COLUMNS = [
    ("delta_e", "dE00 v GT", 2),
    ("hint_adherence", "hint dE", 2),
    ("colourfulness_ratio", "colour/GT", 2),
    ("palette_fidelity", "palette", 3),
    ("ink_preservation", "ink", 3),
    ("white_preservation", "white kept", 3),
    ("seconds", "s/page", 3),
    ("peak_mb", "peak MiB", 0),
    ("delta_mb", "+MiB", 0),
]
REAL_COLUMNS = [
    ("ink_preservation", "ink", 3),
    ("balloon_preservation", "balloon", 3),
    ("shift_consistency", "shift dE", 2),
    ("seconds", "s/page", 2),
    ("cpu_seconds", "CPU s", 2),
    ("peak_mb", "peak MiB", 0),
    ("delta_mb", "+MiB", 0),
]


def table(agg: dict, methods: list[str], conditions: list[str], columns: list, with_sem: str | None = None) -> str:
    head = ["method", "condition"] + [c[1] for c in columns]
    rows = []
    for m in methods:
        for cond in conditions:
            vals = agg.get(m, {}).get(cond)
            if vals is None:
                continue
            cells = [METHOD_LABEL.get(m, m), cond]
            for key, _, digits in columns:
                st = vals.get(key, {})
                cell = _fmt(st.get("mean"), digits)
                if key == with_sem and st.get("sem") is not None:
                    cell += f"±{st['sem']:.{digits}f}"
                cells.append(cell)
            rows.append(cells)
    return text_table(head, rows)


def text_table(head: list[str], rows: list[list[str]]) -> str:
    """Aligned plain-text table: the first two columns left-aligned, the rest right-aligned, a
    blank line where the first column changes."""
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    line = lambda cells: "  ".join(c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(cells))  # noqa: E731
    out = [line(head), line(["-" * w for w in widths])]
    prev = None
    for r in rows:
        if prev is not None and r[0] != prev:
            out.append("")
        out.append(line(r))
        prev = r[0]
    return "\n".join(out)


def markdown_table(agg: dict, methods: list[str], conditions: list[str], columns: list, with_sem: str | None = None) -> str:
    head = ["method", "condition"] + [c[1] for c in columns]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * len(columns)) + "|"]
    for m in methods:
        for cond in conditions:
            vals = agg.get(m, {}).get(cond)
            if vals is None:
                continue
            cells = [METHOD_LABEL.get(m, m), cond]
            for key, _, digits in columns:
                st = vals.get(key, {})
                cell = _fmt(st.get("mean"), digits)
                if key == with_sem and st.get("sem") is not None:
                    cell += f" ± {st['sem']:.{digits}f}"
                cells.append(cell)
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def gt_conditions() -> list[str]:
    return [cond_name(k, r) for k, r in GT_CONDITIONS]


def real_conditions() -> list[str]:
    return [cond_name(k, r) for k, r in REAL_CONDITIONS]


# ----------------------------------------------------------------------------- pictures


def _fit(img: np.ndarray, w: int, h: int) -> Image.Image:
    """Image scaled to fit w x h (area filter), centred on white."""
    ih, iw = img.shape[:2]
    s = min(w / iw, h / ih)
    nw, nh = max(1, int(round(iw * s))), max(1, int(round(ih * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_NEAREST
    small = cv2.resize(np.ascontiguousarray(img), (nw, nh), interpolation=interp)
    cell = Image.new("RGB", (w, h), "white")
    cell.paste(Image.fromarray(small), ((w - nw) // 2, (h - nh) // 2))
    return cell


CONTACT_COLUMNS = [
    ("ink", "B/W input"),
    ("hints", "hints (k=16)"),
    ("ours", "MangaColor"),
    ("ours+ref", "MangaColor + ref"),
    ("levin", "Levin 2004"),
    ("flatfill", "flat fill"),
    ("krita", "Krita Colorize Mask"),
    ("gt", "ground truth"),
    ("ref", "reference"),
]


def contact_sheet(thumbs: dict, case_info: list[dict], path: Path, cell: int = 240, footer: str = "") -> None:
    ids = [c["id"] for c in case_info if c["id"] in thumbs]
    if not ids:
        return
    cols = [c for c in CONTACT_COLUMNS if any(c[0] in thumbs[i] for i in ids)]
    pad, head, label_w = 6, 30, 0
    foot = 22 * (footer.count("\n") + 1) + 10 if footer else 0
    W = pad + len(cols) * (cell + pad)
    H = head + len(ids) * (cell + pad + 18) + foot
    sheet = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(sheet)
    f, fs = font(15), font(12)
    for j, (_, title) in enumerate(cols):
        d.text((pad + j * (cell + pad) + 4, 8), title, fill="black", font=f)
    y = head
    for cid in ids:
        d.text((pad + 2, y), cid, fill=(90, 90, 90), font=fs)
        y += 16
        for j, (key, _) in enumerate(cols):
            x = pad + j * (cell + pad) + label_w
            img = thumbs[cid].get(key)
            if img is not None:
                sheet.paste(_fit(img, cell, cell), (x, y))
            d.rectangle([x - 1, y - 1, x + cell, y + cell], outline=(200, 200, 200))
        y += cell + pad + 2
    if footer:
        d.multiline_text((pad, y + 4), footer, fill=(60, 60, 60), font=fs, spacing=8)
    sheet.save(path, optimize=True)


PLOT_STYLE = {
    "ours": ((31, 100, 200), False),
    "ours+ref": ((31, 100, 200), True),
    "levin": ((230, 120, 20), False),
    "flatfill": ((40, 150, 60), False),
    "none": ((120, 120, 120), False),
    "krita": ((170, 40, 160), False),
}


def _dashed(d: ImageDraw.ImageDraw, p0, p1, fill, width: int, dash: int = 9) -> None:
    (x0, y0), (x1, y1) = p0, p1
    n = max(1, int(math.hypot(x1 - x0, y1 - y0) // dash))
    for i in range(0, n, 2):
        a, b = i / n, min(1.0, (i + 1) / n)
        d.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a), (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)], fill=fill, width=width)


def plot_de_vs_hints(agg: dict, path: Path, n_cases: int, title_extra: str = "") -> None:
    ks = sorted({int(c.split("+")[0][1:]) for m in agg.values() for c in m})
    series = {}
    for m in ("ours", "levin", "flatfill", "krita", "none"):
        if m not in agg:
            continue
        for ref in (False, True):
            if ref and m != "ours":
                continue
            pts = []
            for k in ks:
                st = agg[m].get(cond_name(k, ref), {}).get("delta_e", {})
                if st.get("mean") is not None:
                    pts.append((k, st["mean"], st.get("sem") or 0.0))
            if pts:
                series[m + ("+ref" if ref else "")] = pts
    if not series:
        return
    W, H = 900, 560
    L, R, T, B = 80, 230, 60, 70
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    f, fs, ft = font(15), font(13), font(17)
    ymax = max(v + e for pts in series.values() for _, v, e in pts)
    ymax = max(1.0, math.ceil(ymax * 1.1 / 5) * 5)
    xpos = {k: L + (W - L - R) * (i + 0.5) / len(ks) for i, k in enumerate(ks)}
    ypos = lambda v: T + (H - T - B) * (1 - v / ymax)  # noqa: E731
    d.rectangle([L, T, W - R, H - B], outline="black")
    step = 5 if ymax > 10 else 1
    for v in np.arange(0, ymax + 1e-9, step):
        y = ypos(v)
        d.line([(L, y), (W - R, y)], fill=(230, 230, 230))
        d.line([(L - 5, y), (L, y)], fill="black")
        d.text((L - 10, y), f"{v:g}", fill="black", font=fs, anchor="rm")
    for k, x in xpos.items():
        d.line([(x, H - B), (x, H - B + 5)], fill="black")
        d.text((x, H - B + 10), str(k), fill="black", font=f, anchor="ma")
    d.text(((L + W - R) / 2, H - 28), "number of hints k", fill="black", font=f, anchor="ma")
    ylabel = "mean ΔE2000 vs ground truth (non-ink pixels)"
    lw = int(d.textlength(ylabel, font=fs)) + 4
    lab = Image.new("RGB", (lw, 18), "white")
    ImageDraw.Draw(lab).text((2, 0), ylabel, fill="black", font=fs)
    lab = lab.rotate(90, expand=True)
    img.paste(lab, (14, int((T + H - B) / 2 - lw / 2)))
    title = f"Colour error against number of hints ({n_cases} cases){title_extra}"
    d.text((L, 20), title, fill="black", font=ft)
    for name, pts in series.items():
        col, dashed = PLOT_STYLE.get(name, ((0, 0, 0), False))
        xy = [(xpos[k], ypos(v)) for k, v, _ in pts]
        for a, b in zip(xy, xy[1:]):
            (_dashed if dashed else (lambda dd, p, q, fill, width: dd.line([p, q], fill=fill, width=width)))(d, a, b, fill=col, width=3)
        for (k, v, e), (x, y) in zip(pts, xy):
            if e:
                d.line([(x, ypos(v - e)), (x, ypos(v + e))], fill=col, width=1)
                d.line([(x - 4, ypos(v - e)), (x + 4, ypos(v - e))], fill=col)
                d.line([(x - 4, ypos(v + e)), (x + 4, ypos(v + e))], fill=col)
            d.ellipse([x - 4, y - 4, x + 4, y + 4], fill=col)
    ly = T + 10
    for name in series:
        col, dashed = PLOT_STYLE.get(name, ((0, 0, 0), False))
        x0 = W - R + 20
        if dashed:
            _dashed(d, (x0, ly + 8), (x0 + 36, ly + 8), fill=col, width=3)
        else:
            d.line([(x0, ly + 8), (x0 + 36, ly + 8)], fill=col, width=3)
        label = METHOD_LABEL.get(name.replace("+ref", ""), name) + (" + reference" if name.endswith("+ref") else "")
        d.text((x0 + 44, ly), label, fill="black", font=fs)
        ly += 24
    d.text((W - R + 20, ly + 10), "bars: ± 1 standard error", fill=(90, 90, 90), font=fs)
    img.save(path, optimize=True)


def converter_vs_real(colour: np.ndarray, synthetic_ink: np.ndarray, real_ink: np.ndarray, path: Path,
                      caption: str, height: int = 760, crop: int = 360) -> None:
    """Colour page | the converter's B/W version | a real B/W page; below, 1:1 crops of both B/W pages."""
    def to_rgb(ink):
        g = np.clip(ink * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, -1)

    panels = [colour, to_rgb(synthetic_ink), to_rgb(real_ink)]
    titles = ["colour original (held out)", "converter output (synthetic B/W)", "real B/W manga page"]
    scaled = []
    for p in panels:
        s = height / p.shape[0]
        scaled.append(cv2.resize(np.ascontiguousarray(p), (int(round(p.shape[1] * s)), height), interpolation=cv2.INTER_AREA))

    def centre_crop(img, fy=0.35, fx=0.45):
        h, w = img.shape[:2]
        y0 = int(min(max(0, h * fy - crop / 2), h - crop))
        x0 = int(min(max(0, w * fx - crop / 2), w - crop))
        return img[y0 : y0 + crop, x0 : x0 + crop]

    crops = [centre_crop(to_rgb(synthetic_ink)), centre_crop(to_rgb(real_ink), 0.62, 0.35)]
    pad, head = 10, 30
    W = pad + sum(s.shape[1] + pad for s in scaled)
    cap_h = 20 * (caption.count("\n") + 1) + 10
    H = head + height + pad + head + crop + pad + cap_h
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    f, fs = font(15), font(12)
    x = pad
    for s, t in zip(scaled, titles):
        d.text((x, 8), t, fill="black", font=f)
        img.paste(Image.fromarray(s), (x, head))
        x += s.shape[1] + pad
    y = head + height + pad
    x = pad
    for c, t in zip(crops, ["converter output, 1:1 pixels", "real page, 1:1 pixels"]):
        d.text((x, y + 6), t, fill="black", font=f)
        img.paste(Image.fromarray(np.ascontiguousarray(c)), (x, y + head))
        x += crop + 3 * pad
    d.multiline_text((pad, y + head + crop + pad), caption, fill=(60, 60, 60), font=fs, spacing=6)
    img.save(path, optimize=True)
