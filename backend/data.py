"""Training data: source listing and a one-off page cache.

1. `list_sources(root)` finds colour pictures under a data folder (recursively), real line-art /
   colour pairs (OpenMoji black/color SVGs from the npm .tgz, comicgen pairs/line + pairs/color),
   and honours the fixed split (`split.is_held_out`): held-out files are never trained on.
2. `build_cache(sources, cache_dir)` turns each source once into a synthetic manga *page* exactly
   as the pipeline would see it: the colour picture at a random page resolution, synthetic ink
   (`synth.py`), `structure.analyse_page` at the pipeline's working size (768 long side, so large
   pages are downsampled and small ones kept), the region maps the pipeline's inputs hold
   (`inputs.page_inputs`), the ground truth at the working resolution, and where a user could
   put a hint. One uint8 .npy per page (memory-mapped at training time) plus reference
   histograms in an index.
Every training step then draws cheap samples from the cache: `sampler.py`.
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
from .hints import COLOURFUL_SATURATION, hint_candidates
from .split import is_held_out
from .spread import page_regions
from .structure import analyse_page, region_maps, split_line_and_tone
from .synth import manga_from_color, manga_from_pair

CACHE_VERSION = "v2"  # v2: region maps of gap-closed regions (spread.page_regions)
WORKING_SIZE = 768  # the pipeline's default working long side
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
# Folders that are not colour training pictures: real B/W manga, model files, line-art halves of
# pairs (used with their colour half), B/W-only avatar styles.
SKIP_PARTS = {"real_bw_manga", "weights", "lorelei", "notionists"}
# Planes of a cached page (uint8 HxWxC): values in [0, 1] as `to_uint8`, the line as 0/255, the
# hint candidates as 0 (none), 1 (a candidate), 2 (a colourful one).
P_INK, P_LINE, P_TONE, P_GT, P_FILL, P_CAND, P_AREA, P_BORDER = 0, 1, 2, 3, 6, 9, 10, 11
N_PLANES = 12
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
    area, border = region_maps(page_regions(page.line))
    # Hint candidates at full resolution (between tone dots), marked on the working pixels they fall in.
    cand_full, weight_full = hint_candidates(gt, ink)
    cand = cv2.resize(cand_full.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA) > 0.2
    colourful = cv2.resize((weight_full > 1).astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA) > 0.5
    cand_code = np.where(cand, np.where(colourful, 2, 1), 0)
    planes = np.zeros(shape + (N_PLANES,), np.uint8)
    planes[..., P_INK] = to_uint8(page.ink)
    planes[..., P_LINE] = page.line.astype(np.uint8) * 255
    planes[..., P_TONE] = to_uint8(page.tone)
    planes[..., P_GT : P_GT + 3] = to_uint8(gt_w)
    planes[..., P_FILL : P_FILL + 3] = to_uint8(fill)
    planes[..., P_CAND] = cand_code.astype(np.uint8)
    planes[..., P_AREA] = to_uint8(area)
    planes[..., P_BORDER] = to_uint8(border)
    return planes


def to_uint8(x: np.ndarray) -> np.ndarray:
    """A plane in [0, 1] as the cache stores it."""
    return np.clip(np.asarray(x, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def from_uint8(x: np.ndarray) -> np.ndarray:
    """A cached plane back in [0, 1] (float32)."""
    return x.astype(np.float32) / 255.0


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
