"""Training data: source listing, a one-off page cache, and cheap per-step sampling.

1. `list_sources(root)` finds colour pictures under a data folder (recursively), real line-art /
   colour pairs (OpenMoji black/color SVGs from the npm .tgz, comicgen pairs/line + pairs/color),
   and honours the fixed split (`split.is_held_out`): held-out files are never trained on.
2. `build_cache(sources, cache_dir)` turns each source once into a synthetic manga *page* exactly
   as the pipeline would see it: the colour picture at a random page resolution, synthetic ink
   (`synth.py`), `structure.analyse_page` at the pipeline's working size (768 long side, so large
   pages are downsampled and small ones kept), the region maps of `build_inputs`, the ground
   truth at the working resolution, and where a user could put a hint. One uint8 .npy per page
   (memory-mapped at training time) plus reference histograms in an index.
3. `Sampler.batch(n, crop)` draws training samples cheaply: a random crop (biased to content),
   a flip, simulated hints (schedule of `hints.hint_count`), hints propagated over line-enclosed
   regions as `build_inputs` does, a simulated reference (histogram or palette of the same
   picture, cropped/scaled, sometimes blended with another, sometimes none) and, rarely, a
   blurred colouring draft.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from . import color
from .hints import COLOURFUL_SATURATION, hint_candidates, hint_count, sample_hints
from .model import GLOBAL_SIZE
from .split import is_held_out
from .structure import analyse_page, clean_paper, page_regions, paper_seed, region_maps, spread_hints, split_line_and_tone
from .synth import manga_from_color, manga_from_pair

CACHE_VERSION = "v2"  # v2: region maps of gap-closed regions (structure.page_regions)
WORKING_SIZE = 768  # the pipeline's default working long side
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
# Folders that are not colour training pictures: real B/W manga, model files, line-art halves of
# pairs (used with their colour half), B/W-only avatar styles.
SKIP_PARTS = {"real_bw_manga", "weights", "lorelei", "notionists"}
# Planes of a cached page (uint8 HxWxC).
P_INK, P_LINE, P_TONE, P_GT, P_FILL, P_CAND, P_AREA, P_BORDER = 0, 1, 2, 3, 6, 9, 10, 11
N_PLANES = 12
# How often each group of sources is drawn (normalised over the groups present).
GROUP_WEIGHTS = {"openmoji": 0.25, "dicebear": 0.15, "openclipart": 0.25, "comicgen": 0.15, "peppercarrot": 0.15, "other": 0.05}
SKIN_TONES = ("1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF")


def default_data_root() -> Path:
    for cand in (Path("/work/shared/data"), Path(__file__).resolve().parents[2] / "shared" / "data"):
        if cand.is_dir():
            return cand
    return Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@dataclass(frozen=True)
class Source:
    group: str
    key: str  # unique, stable name
    color: str  # path of the colour picture (or tgz member "tgz::member")
    line: str | None = None  # path of the line art of a pair


def _group_of(rel: str) -> str:
    for g in ("openmoji", "dicebear", "openclipart", "comicgen", "peppercarrot"):
        if g in rel:
            return g
    return "other"


def list_sources(root: str | Path, held_out: bool = False, openmoji_limit: int | None = None) -> list[Source]:
    """Every usable colour picture under `root`, on the training side of the split (or the held-out side)."""
    root = Path(root)
    out: list[Source] = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in IMAGE_EXT or not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        parts = set(rel.split("/"))
        if parts & SKIP_PARTS or "/pairs/line/" in f"/{rel}":
            continue
        if is_held_out(path, root) != held_out:
            continue
        line = None
        if "/pairs/color/" in f"/{rel}":
            cand = Path(str(path).replace("/pairs/color/", "/pairs/line/"))
            line = str(cand) if cand.exists() else None
        out.append(Source(_group_of(rel), rel, str(path), line))
    for tgz in sorted(root.rglob("openmoji*.tgz")):
        with tarfile.open(tgz) as tf:
            names = sorted(n for n in tf.getnames() if n.startswith("package/color/svg/") and n.endswith(".svg"))
        count = 0
        for name in names:
            stem = Path(name).stem
            if any(t in stem for t in SKIN_TONES):
                continue
            pseudo = tgz.parent / "color" / f"{stem}.svg"  # split.py hashes openmoji by stem
            if is_held_out(pseudo, root) != held_out:
                continue
            black = name.replace("/color/", "/black/")
            out.append(Source("openmoji", f"openmoji/{stem}", f"{tgz}::{name}", f"{tgz}::{black}"))
            count += 1
            if openmoji_limit is not None and count >= openmoji_limit:
                break
    return out


# ----------------------------------------------------------------------------- loading pictures

_tar_cache: dict[str, dict[str, bytes]] = {}


def _tgz_member(spec: str) -> bytes:
    tgz, member = spec.split("::", 1)
    if tgz not in _tar_cache:
        with tarfile.open(tgz) as tf:
            _tar_cache[tgz] = {
                m.name: tf.extractfile(m).read()  # type: ignore[union-attr]
                for m in tf.getmembers()
                if m.isfile() and m.name.endswith(".svg") and "/svg/" in m.name
            }
    return _tar_cache[tgz][member]


def _on_white(img: Image.Image) -> np.ndarray:
    rgba = np.asarray(img.convert("RGBA")).astype(np.float32) / 255.0
    return rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:])


def render_svg(svg: bytes, size: int) -> np.ndarray:
    import cairosvg

    png = cairosvg.svg2png(bytestring=svg, output_width=size, output_height=size)
    return _on_white(Image.open(io.BytesIO(png)))


def load_picture(spec: str, size: int | None = None) -> np.ndarray:
    """float32 HxWx3 on white; `size` is the render size of SVGs."""
    if "::" in spec:
        return render_svg(_tgz_member(spec), size or 512)
    with Image.open(spec) as im:
        return _on_white(im)


def _resize(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = img.shape[:2]
    if (h, w) == tuple(shape):
        return img
    interp = cv2.INTER_AREA if shape[0] < h else cv2.INTER_CUBIC
    return np.clip(cv2.resize(img, (shape[1], shape[0]), interpolation=interp), 0.0, 1.0)


def is_colourful(rgb: np.ndarray) -> bool:
    sat = rgb.max(-1) - rgb.min(-1)
    return float((sat > COLOURFUL_SATURATION).mean()) > 0.01


# ----------------------------------------------------------------------------- page cache


def make_page(src: Source, rng: np.random.Generator, variant: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
    """(ink at page resolution, colour ground truth at page resolution), or None if unusable."""
    if src.group == "openmoji":
        size = int(rng.integers(256, 1025))
        rgb = load_picture(src.color, size)
        line = load_picture(src.line, size) if src.line else None
    else:
        rgb = load_picture(src.color)
        line = load_picture(src.line) if src.line else None
        h, w = rgb.shape[:2]
        if max(h, w) > 2400 or (variant > 0 and max(h, w) > 1200 and rng.random() < 0.5):
            # A random window of a big painting (a panel-sized part of the art).
            ch = int(min(h, rng.uniform(0.35, 1.0) * h))
            cw = int(min(w, rng.uniform(0.35, 1.0) * w))
            y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            rgb = rgb[y0 : y0 + ch, x0 : x0 + cw]
            line = line[y0 : y0 + ch, x0 : x0 + cw] if line is not None else None
        n = max(rgb.shape[:2])
        scale = 1.0 if rng.random() < 0.5 else float(np.exp(rng.uniform(np.log(0.6), np.log(2.5))))
        target = float(np.clip(n * scale, 256, 2400))
        shape = (max(8, int(round(rgb.shape[0] * target / n))), max(8, int(round(rgb.shape[1] * target / n))))
        rgb = _resize(rgb, shape)
        line = _resize(line, shape) if line is not None else None
    if not is_colourful(rgb):
        return None
    if line is not None and rng.random() < 0.85:
        ink = manga_from_pair(line, rgb, rng)
    else:
        ink = manga_from_color(rgb, rng)
    return ink, rgb.astype(np.float32)


def _fill_under_lines(gt: np.ndarray, line: np.ndarray, max_dist: float = 3.0) -> np.ndarray:
    """Ground truth with thin line pixels replaced by the nearest non-line colour (the colour layer
    under an outline is the colour of the region, not of the outline)."""
    if not line.any() or line.all():
        return gt.copy()
    dist, nearest = cv2.distanceTransformWithLabels(line.astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(~line)
    table = np.zeros((len(ys) + 1, 3), np.float32)
    table[1:] = gt[ys, xs]
    filled = table[nearest]
    out = gt.copy()
    sel = line & (dist <= max_dist)
    out[sel] = filled[sel]
    return out


def page_planes(ink: np.ndarray, gt: np.ndarray, working_size: int = WORKING_SIZE) -> np.ndarray:
    """Full-resolution ink + ground truth -> the cached uint8 planes at the working resolution."""
    line_full, tone_full = split_line_and_tone(ink)
    page = analyse_page(ink, working_size, (line_full, tone_full))
    shape = page.shape
    gt_w = _resize(gt, shape).astype(np.float32)
    fill = _fill_under_lines(gt_w, page.line)
    area, border = region_maps(*page_regions(page.line))
    # Hint candidates at full resolution (between tone dots), marked on the working pixels they fall in.
    cand_full, weight_full = hint_candidates(gt, ink)
    cand = cv2.resize(cand_full.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA) > 0.2
    colourful = cv2.resize((weight_full > 1).astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA) > 0.5
    cand_code = np.where(cand, np.where(colourful, 2, 1), 0)
    planes = np.zeros(shape + (N_PLANES,), np.uint8)

    def q(x: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(x, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)

    planes[..., P_INK] = q(page.ink)
    planes[..., P_LINE] = page.line.astype(np.uint8) * 255
    planes[..., P_TONE] = q(page.tone)
    planes[..., P_GT : P_GT + 3] = q(gt_w)
    planes[..., P_FILL : P_FILL + 3] = q(fill)
    planes[..., P_CAND] = cand_code.astype(np.uint8)
    planes[..., P_AREA] = q(area)
    planes[..., P_BORDER] = q(border)
    return planes


def reference_hists(gt: np.ndarray, rng: np.random.Generator, n: int = 4) -> np.ndarray:
    """n simulated references of a picture as 216-bin histograms: the whole picture, then crops
    (40-100 % a side) at a smaller scale, as a user's reference of the same character would be."""
    out = [color.histogram216(gt)]
    h, w = gt.shape[:2]
    for _ in range(n - 1):
        ch, cw = max(8, int(h * rng.uniform(0.4, 1.0))), max(8, int(w * rng.uniform(0.4, 1.0)))
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        crop = gt[y0 : y0 + ch, x0 : x0 + cw]
        s = rng.uniform(0.3, 1.0)
        crop = cv2.resize(crop, (max(4, int(cw * s)), max(4, int(ch * s))), interpolation=cv2.INTER_AREA)
        out.append(color.histogram216(crop))
    return np.stack(out).astype(np.float32)


def _page_name(src: Source, variant: int) -> str:
    digest = hashlib.sha1(src.key.encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(src.key).stem)[:40]
    return f"{src.group}__{stem}__{digest}__v{variant}"


def _build_one(args: tuple[Source, int, str, int]) -> str | None:
    src, variant, cache_dir, seed = args
    name = _page_name(src, variant)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    out = Path(cache_dir) / f"{name}.npy"
    if out.exists() and (Path(cache_dir) / f"{name}.hist.npy").exists():
        return name
    rng = np.random.default_rng([seed, int(hashlib.sha1(name.encode()).hexdigest()[:8], 16)])
    try:
        made = make_page(src, rng, variant)
    except Exception as exc:  # a broken picture must not stop a long cache build
        print(f"skip {src.key}: {exc.__class__.__name__}: {exc}", flush=True)
        return None
    if made is None:
        return None
    ink, gt = made
    planes = page_planes(ink, gt)
    hists = reference_hists(planes[..., P_GT : P_GT + 3], rng)
    tmp = out.with_suffix(".tmp.npy")
    np.save(Path(cache_dir) / f"{name}.hist.npy", hists)
    np.save(tmp, planes)
    os.replace(tmp, out)
    return name


def variants_for(src: Source) -> int:
    """Big paintings are few: draw several pages (crops, scales, styles) from each."""
    return 6 if src.group == "peppercarrot" else 1


def build_cache(
    sources: list[Source], cache_dir: str | Path, workers: int = 1, seed: int = 0, extra_variants: int = 0, progress: bool = True
) -> list[str]:
    """Make every missing page; returns the page names now in the cache for these sources."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tasks = [(s, v, str(cache_dir), seed) for s in sources for v in range(variants_for(s) + extra_variants)]
    # Interleave groups so a partial cache is already varied.
    order = np.random.default_rng(seed).permutation(len(tasks))
    tasks = [tasks[i] for i in order]
    names: list[str] = []
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    bar = tqdm(total=len(tasks), desc="page cache", disable=not progress or tqdm is None) if tqdm else None
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            for name in pool.imap_unordered(_build_one, tasks, chunksize=4):
                if name:
                    names.append(name)
                if bar:
                    bar.update()
    else:
        for t in tasks:
            name = _build_one(t)
            if name:
                names.append(name)
            if bar:
                bar.update()
    if bar:
        bar.close()
    return sorted(names)


def cached_pages(cache_dir: str | Path) -> list[str]:
    return sorted(p.name[: -len(".npy")] for p in Path(cache_dir).glob("*__v*.npy") if not p.name.endswith((".hist.npy", ".tmp.npy")))


# ----------------------------------------------------------------------------- per-step sampling


def paste_balloon(win: np.ndarray, page_pixels: int, rng: np.random.Generator) -> None:
    """Draw a speech balloon with lettering into a window of cached planes (in place).

    Synthetic sources have few balloons; real pages have many, and their paper must stay white.
    The balloon is an inked ellipse, white inside with glyph-like strokes (as lettering looks at the
    working resolution: small dark strokes, most of them walls), ground truth white.
    """
    H, W = win.shape[:2]
    if H < 48 or W < 48:
        return
    a = rng.uniform(14.0, min(70.0, W / 2.5))
    b = float(np.clip(a * rng.uniform(0.6, 1.5), 10.0, H / 2.5))
    cy, cx = rng.uniform(b + 2, H - b - 2), rng.uniform(a + 2, W - a - 2)
    centre, axes = (int(round(cx)), int(round(cy))), (int(round(a)), int(round(b)))
    filled = np.zeros((H, W), np.uint8)
    cv2.ellipse(filled, centre, axes, 0, 0, 360, 1, -1)
    outline = np.zeros((H, W), np.uint8)
    cv2.ellipse(outline, centre, axes, 0, 0, 360, 1, int(rng.integers(1, 3)))
    filled, outline = filled > 0, outline > 0
    inner = cv2.erode((filled & ~outline).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    glyph_ink = np.ones((H, W), np.float32)
    g = int(rng.integers(3, 6))  # glyph size in working px
    vertical = rng.random() < 0.5
    ys, xs = np.nonzero(inner)
    if len(ys):
        y_lo, y_hi, x_lo, x_hi = ys.min(), ys.max(), xs.min(), xs.max()
        step = g + int(rng.integers(1, 3))
        for yy in range(y_lo, y_hi - g, step if not vertical else g + 1):
            for xx in range(x_lo, x_hi - g, g + 1 if not vertical else step):
                if rng.random() < 0.25 or not inner[yy : yy + g, xx : xx + g].all():
                    continue
                for _ in range(int(rng.integers(1, 4))):
                    p0 = (xx + int(rng.integers(0, g)), yy + int(rng.integers(0, g)))
                    p1 = (xx + int(rng.integers(0, g)), yy + int(rng.integers(0, g)))
                    cv2.line(glyph_ink, p0, p1, float(rng.uniform(0.0, 0.45)), 1)
    glyph = glyph_ink < 0.99
    walls = outline | (glyph & (rng.random((H, W)) < 0.7))
    inside = filled & ~outline
    ink = np.where(outline, 0.0, np.where(inside, glyph_ink, win[..., P_INK] / 255.0))
    win[..., P_INK] = np.clip(ink * 255 + 0.5, 0, 255).astype(np.uint8)
    win[..., P_LINE] = np.where(filled, walls * 255, win[..., P_LINE]).astype(np.uint8)
    win[..., P_TONE][filled] = 0
    for c in range(3):
        win[..., P_GT + c][inside] = 255
        win[..., P_GT + c][outline] = 0
        win[..., P_FILL + c][filled] = 255
    cand = inside & ~(cv2.dilate(glyph.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)
    win[..., P_CAND][filled] = 0
    win[..., P_CAND][cand] = 1
    # Region maps of the balloon's own regions (it is enclosed: no border contact).
    n, labels = cv2.connectedComponents((inside & ~walls).astype(np.uint8), connectivity=4)
    area = np.bincount(labels.ravel(), minlength=n).astype(np.float64)
    share = 1.0 + np.log(np.maximum(area, 1.0) / page_pixels) / np.log(page_pixels)
    share[0] = 0.0
    win[..., P_AREA][filled] = np.clip(share[labels][filled] * 255 + 0.5, 0, 255).astype(np.uint8)
    win[..., P_BORDER][filled] = 0


def hue_matrix(degrees: float) -> np.ndarray:
    """3x3 RGB matrix rotating hue by `degrees` about the gray axis in YIQ (luma kept)."""
    yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)
    t = np.radians(degrees)
    rot = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]], np.float32)
    return (np.linalg.inv(yiq) @ rot @ yiq).astype(np.float32)


def recolour(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return np.clip(rgb @ matrix.T, 0.0, 1.0).astype(np.float32)


@dataclass
class Batch:
    x: np.ndarray  # B x 17 x H x W network input
    g: np.ndarray  # B x 218 global vector
    target: np.ndarray  # B x 3 x H x W sRGB ground truth (colour under thin lines filled in)
    weight: np.ndarray  # B x 1 x H x W per-pixel loss weight
    hint: np.ndarray  # B x 1 x H x W hint mask (1 = user hint pixel)
    prop: np.ndarray  # B x 1 x H x W propagated hint mask


WHITE_TARGET = 0.94  # a target (and ink) lighter than this in every channel is white paper
GAP_BREAKS_PER_LINE_PX = 1 / 250  # breaks in the line art, per line pixel of the window


def break_lines(ink: np.ndarray, line: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Line art with gaps, as drawn outlines often have (hands, hair, sleeves): erase small
    discs (1-3 px radius at the working resolution) at random points of the lines."""
    ys, xs = np.nonzero(line)
    n = rng.binomial(len(ys), GAP_BREAKS_PER_LINE_PX) if len(ys) else 0
    if n == 0:
        return ink, line
    ink, line = ink.copy(), line.astype(np.uint8)
    paper = float(np.percentile(ink, 95))
    gaps = np.zeros_like(line)
    for i in rng.choice(len(ys), size=n, replace=False):
        cv2.circle(gaps, (int(xs[i]), int(ys[i])), int(rng.integers(1, 4)), 1, -1)
    ink[gaps > 0] = paper
    return ink, (line > 0) & (gaps == 0)


class Sampler:
    """Cheap random training samples from a page cache (memory-mapped)."""

    def __init__(
        self,
        cache_dir: str | Path,
        rng: np.random.Generator,
        names: list[str] | None = None,
        p_reference: float = 0.6,
        p_palette: float = 0.3,
        p_draft: float = 0.12,
        p_recolour: float = 0.4,
        p_balloon: float = 0.0,
        ink_weight: float = 0.15,
        p_gaps: float = 0.0,
        white_weight: float = 1.0,
    ):
        self.cache_dir = Path(cache_dir)
        self.names = names if names is not None else cached_pages(cache_dir)
        if not self.names:
            raise ValueError(f"no cached pages in {cache_dir}")
        self.rng = rng
        self.p_reference, self.p_palette, self.p_draft, self.ink_weight = p_reference, p_palette, p_draft, ink_weight
        self.p_recolour, self.p_balloon = p_recolour, p_balloon
        self.p_gaps, self.white_weight = p_gaps, white_weight
        self._set_weights()
        self._pages: dict[str, np.ndarray] = {}
        self.hists = {n: np.load(self.cache_dir / f"{n}.hist.npy") for n in self.names}

    def refresh(self) -> int:
        """Pick up pages added to the cache since (a cache still being built by another process)."""
        names = cached_pages(self.cache_dir)
        new = [n for n in names if n not in self.hists]
        for n in new:
            try:
                self.hists[n] = np.load(self.cache_dir / f"{n}.hist.npy")
            except (OSError, ValueError):
                continue
        if new:
            self.names = [n for n in names if n in self.hists]
            self._set_weights()
        return len(new)

    def _set_weights(self) -> None:
        groups = [n.split("__", 1)[0] for n in self.names]
        present = sorted(set(groups))
        gw = {g: GROUP_WEIGHTS.get(g, GROUP_WEIGHTS["other"]) for g in present}
        total = sum(gw.values())
        count = {g: groups.count(g) for g in present}
        self.p = np.array([gw[g] / total / count[g] for g in groups])
        self.p /= self.p.sum()

    def page(self, name: str) -> np.ndarray:
        if name not in self._pages:
            self._pages[name] = np.load(self.cache_dir / f"{name}.npy", mmap_mode="r")
        return self._pages[name]

    def _crop_origin(self, planes: np.ndarray, crop: int) -> tuple[int, int]:
        h, w = planes.shape[:2]
        rng = self.rng
        if rng.random() < 0.75:
            # Centre on a random piece of the drawing (coloured or inked), not on the margin.
            gt = planes[::4, ::4, P_GT : P_GT + 3]
            ys, xs = np.nonzero(gt.min(-1) < 230)
            if len(ys):
                i = int(rng.integers(len(ys)))
                cy, cx = ys[i] * 4, xs[i] * 4
                return int(np.clip(cy - crop // 2, 0, max(0, h - crop))), int(np.clip(cx - crop // 2, 0, max(0, w - crop)))
        return int(rng.integers(0, max(0, h - crop) + 1)), int(rng.integers(0, max(0, w - crop) + 1))

    def reference(self, name: str, hue: np.ndarray | None = None) -> np.ndarray:
        """The global vector: none, or a 216-bin histogram / binary palette of a view of the same
        picture (sometimes blended with another picture's). With `hue` (a colour matrix applied to
        the ground truth), the view is recoloured the same way, so only the reference tells the colours."""
        rng = self.rng
        vec = np.zeros(GLOBAL_SIZE, np.float32)
        if hue is not None:
            page = np.asarray(self.page(name)[::2, ::2, P_GT : P_GT + 3], np.float32) / 255.0
            hist = reference_hists(recolour(page, hue), rng, n=2)[int(rng.integers(2))]
        else:
            hists = self.hists[name]
            hist = hists[int(rng.integers(len(hists)))]
        if rng.random() < 0.2:  # a blend of two references (Comicolorization's blending)
            other = self.names[int(rng.choice(len(self.names), p=self.p))]
            oh = self.hists[other][int(rng.integers(len(self.hists[other])))]
            wgt = rng.uniform(0.1, 0.4)
            hist = color.blend_histograms([hist, oh], [1.0 - wgt, wgt])
        palette = rng.random() < self.p_palette
        if palette:
            pal = color.palette216(hist)
            vec[: color.HIST_SIZE] = pal / max(pal.sum(), 1.0)
        else:
            vec[: color.HIST_SIZE] = hist
        vec[color.HIST_SIZE] = 1.0
        vec[color.HIST_SIZE + 1] = 1.0 if palette else 0.0
        return vec

    def sample(self, crop: int, margin: int = 48, k: int | None = None, name: str | None = None):
        rng = self.rng
        name = name or self.names[int(rng.choice(len(self.names), p=self.p))]
        planes = self.page(name)
        h, w = planes.shape[:2]
        y0, x0 = self._crop_origin(planes, crop)
        # A window around the crop, so hints just outside it still propagate in (as on a full page).
        wy0, wx0 = max(0, y0 - margin), max(0, x0 - margin)
        wy1, wx1 = min(h, y0 + crop + margin), min(w, x0 + crop + margin)
        win = np.array(planes[wy0:wy1, wx0:wx1], dtype=np.uint8)
        if rng.random() < self.p_balloon:
            for _ in range(int(rng.integers(1, 3))):
                paste_balloon(win, h * w, rng)
        # Pad pages smaller than the crop with paper (part of the big border region).
        ch, cw = min(crop, h), min(crop, w)
        ink = win[..., P_INK].astype(np.float32) / 255.0
        line = win[..., P_LINE] > 0
        gt = win[..., P_GT : P_GT + 3].astype(np.float32) / 255.0
        fill = win[..., P_FILL : P_FILL + 3].astype(np.float32) / 255.0
        # With a reference, sometimes recolour the whole picture (hue rotation keeping luma): the
        # ink cannot tell the new colours, only the reference (and hints) can, so the network learns to read it.
        with_ref = rng.random() < self.p_reference
        hue = hue_matrix(rng.uniform(40.0, 320.0)) if with_ref and rng.random() < self.p_recolour else None
        if hue is not None:
            gt, fill = recolour(gt, hue), recolour(fill, hue)
        cand_code = win[..., P_CAND]
        cand = (cand_code > 0, np.where(cand_code == 2, 4.0, 1.0).astype(np.float32))
        n_hints = hint_count(rng) if k is None else k
        # Hint density is per page in the schedule; a window sees its share of them.
        if k is None and n_hints > 0:
            share = (win.shape[0] * win.shape[1]) / float(h * w)
            n_hints = int(rng.binomial(n_hints, min(1.0, share * rng.uniform(1.0, 3.0)))) if share < 1 else n_hints
        layer = sample_hints(gt, ink, n_hints, rng, strokes=rng.random() < 0.3, candidates=cand, sizes=(1, 1, 1, 2))
        hint_mask = layer[..., 3] > 0
        hint_rgb = layer[..., :3].astype(np.float32) / 255.0
        if rng.random() < self.p_gaps:
            ink, line = break_lines(ink, line, rng)
        # Hints spread exactly as the pipeline spreads them, the paper seed on the window's edges
        # that are the page's edges.
        tone = win[..., P_TONE].astype(np.float32) / 255.0
        edges = (wy0 == 0, wy1 == h, wx0 == 0, wx1 == w)
        seed = paper_seed(clean_paper(ink, tone, line), edges)
        spread = spread_hints(line, hint_rgb, hint_mask, seed, page_shape=(h, w))
        prop_rgb, prop_mask = spread.rgb, spread.mask
        # Cut the crop out of the window.
        oy, ox = y0 - wy0, x0 - wx0
        sl = (slice(oy, oy + ch), slice(ox, ox + cw))
        x = np.zeros((17, crop, crop), np.float32)
        x[0] = 1.0
        x[4] = 1.0
        x[3] = 1.0
        tgt = np.ones((3, crop, crop), np.float32)
        x[0, :ch, :cw] = ink[sl]
        x[1, :ch, :cw] = line[sl]
        x[2, :ch, :cw] = win[sl + (P_TONE,)] / 255.0
        x[3, :ch, :cw] = win[sl + (P_AREA,)] / 255.0
        x[4, :ch, :cw] = win[sl + (P_BORDER,)] / 255.0
        x[5:8, :ch, :cw] = np.moveaxis(hint_rgb[sl] * hint_mask[sl][..., None], -1, 0)
        x[8, :ch, :cw] = hint_mask[sl]
        x[9:12, :ch, :cw] = np.moveaxis(prop_rgb[sl], -1, 0)
        x[12, :ch, :cw] = prop_mask[sl]
        tgt[:, :ch, :cw] = np.moveaxis(fill[sl], -1, 0)
        if rng.random() < self.p_draft:
            sigma = rng.uniform(6.0, 20.0)
            draft = cv2.GaussianBlur(np.moveaxis(tgt, 0, -1), (0, 0), sigma)
            x[13:16] = np.moveaxis(draft, -1, 0)
            x[16] = 1.0
        weight = np.where(x[0] < 0.5, self.ink_weight, 1.0).astype(np.float32)
        # The truth's white paper must stay white: weigh it more where the page is blank there.
        white = (tgt.min(0) > WHITE_TARGET) & (x[0] > WHITE_TARGET)
        weight = np.where(white, weight * self.white_weight, weight)[None].astype(np.float32)
        if rng.random() < 0.5:  # horizontal flip
            x, tgt, weight = x[..., ::-1], tgt[..., ::-1], weight[..., ::-1]
        g = self.reference(name, hue) if with_ref else np.zeros(GLOBAL_SIZE, np.float32)
        return np.ascontiguousarray(x), g, np.ascontiguousarray(tgt), np.ascontiguousarray(weight)

    def batch(self, n: int, crop: int) -> Batch:
        xs, gs, ts, ws = zip(*(self.sample(crop) for _ in range(n)))
        x = np.stack(xs)
        return Batch(x=x, g=np.stack(gs), target=np.stack(ts), weight=np.stack(ws), hint=x[:, 8:9].copy(), prop=x[:, 12:13].copy())


def main(argv: list[str] | None = None) -> int:
    """`python -m backend.data --data DIR --cache DIR [--workers N]`: build the page cache."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m backend.data", description=main.__doc__)
    ap.add_argument("--data", default=str(default_data_root()))
    ap.add_argument("--cache", default=str(Path(__file__).resolve().parents[1] / ".cache" / f"pages-{CACHE_VERSION}"))
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="at most this many sources (a quick cache)")
    ap.add_argument("--openmoji-limit", type=int, default=None)
    ap.add_argument("--extra-variants", type=int, default=0)
    args = ap.parse_args(argv)
    sources = list_sources(args.data, openmoji_limit=args.openmoji_limit)
    if args.limit:
        order = np.random.default_rng(args.seed).permutation(len(sources))[: args.limit]
        sources = [sources[i] for i in sorted(order)]
    names = build_cache(sources, args.cache, workers=args.workers, seed=args.seed, extra_variants=args.extra_variants)
    print(json.dumps({"sources": len(sources), "pages": len(names), "cache": args.cache}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
