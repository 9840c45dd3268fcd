"""The bench's test set, built deterministically from ../shared/data and cached.

Ground-truth cases: held-out colour pictures (`backend.split.is_held_out`), each turned into a B/W
manga page by the project's converter (`backend.synth.manga_from_color`), with
- hint layers for k in HINT_COUNTS sampled from the ground truth (`backend.hints.sample_hints`),
- a reference: a different view of the same picture (mirrored, cropped, rescaled).
Sources: Openclipart subset (public domain), OpenMoji colour SVGs rendered with cairosvg
(CC BY-SA 4.0), the Pepper&Carrot pages of episode 4 (CC BY 4.0, David Revoy).

Real pages: the B/W Black Jack pages (no ground truth), for ink/balloon preservation, shift
consistency and speed; their hints are dots of a fixed palette placed on paper away from the ink
and outside the balloons, as a colorist would place them.

Everything random is drawn from generators seeded by a hash of the case id, so a build is the
same on every machine; a build is cached under .cache/bench/<fingerprint>/ where the fingerprint
hashes this file, the converter and the hint sampler, so changing any of them rebuilds.
"""

from __future__ import annotations

import functools

import hashlib
import io
import json
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..split import is_held_out
from . import metrics

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_CACHE = REPO_ROOT / ".cache" / "bench"
TESTSET_VERSION = 1

HINT_COUNTS = (0, 16, 64)
REAL_HINT_COUNTS = (0, 64)
CONVERTER_STRENGTH = 1.0  # the converter's full style variation, as in training
OPENMOJI_SIZE = 512  # px, render size of the 72x72 OpenMoji SVGs
MIN_GT_COLOURFULNESS = 15.0  # skip nearly gray pictures (symbols, black squares): nothing to predict
OPENMOJI_TGZ = "openmoji/openmoji-17.0.0.tgz"
OPENCLIPART_DIR = "openclipart_subset"
PEPPERCARROT_DIR = "color_pages/peppercarrot"
BLACKJACK_DIR = "real_bw_manga/blackjack_v01"
SOURCES = ("openclipart", "openmoji", "peppercarrot")  # the current set (unchanged since issue 10)
QUICK_SOURCES = ("openclipart", "openmoji")  # small pictures only, for the quick run
# The extended set (issue 10): pages unlike closed-outline clip art.
NEW_SOURCES = ("comicgen", "dicebear", "peppercarrot_art", "figures")
QUICK_NEW_SOURCES = ("dicebear",)  # 512-px avatars: the quick run's one new-source case
ALL_SOURCES = SOURCES + NEW_SOURCES
SET_OF = {**{s: "current" for s in SOURCES}, **{s: "extended" for s in NEW_SOURCES}}
COMICGEN_PAIRS = "comicgen/pairs"
COMICGEN_RECOLORED = "comicgen/color_recolored"
DICEBEAR_DIR = "dicebear"
DICEBEAR_STYLES = ("adventurer", "micah", "openPeeps")  # the colour styles (croodles, lorelei, notionists are line-only or doodles)
PEPPERCARROT_ART_DIR = "color_pages/peppercarrot_art"
PEPPERCARROT_ART_VIEWS = ("full", "crop1", "crop2", "crop3")
FIGURES_OPENCLIPART = 10  # figures from the END of the openclipart order (the current set takes from its start)
QUICK_REAL_PAGE = "black_jack_v01_pdf009.jpg"

ATTRIBUTION = {
    "openclipart": "Openclipart (public domain), via Debian openclipart-png",
    "openmoji": "OpenMoji – the open-source emoji and icon project, CC BY-SA 4.0",
    "peppercarrot": "Pepper&Carrot by David Revoy, www.peppercarrot.com, CC BY 4.0",
    "comicgen": "comicgen characters (CC0 1.0) via comicgen, Gramener",
    "dicebear": "DiceBear avatars via DiceBear",
    "peppercarrot_art": "Pepper&Carrot artwork by David Revoy, www.peppercarrot.com, CC BY 4.0",
    "figures": "comicgen characters (CC0 1.0) and Openclipart (public domain)",
    "blackjack": "Give My Regards to Black Jack (ブラックジャックによろしく) by SHUHO SATO (佐藤秀峰), "
    "Sato Manga Works free secondary-use terms, densho810.com/free",
}

# Colours a colorist might pick for hints on a real page (skin, hair, cloth, sky, foliage, ...).
REAL_HINT_PALETTE = np.array(
    [
        [246, 214, 190], [120, 72, 40], [60, 90, 160], [200, 40, 50],
        [90, 150, 80], [150, 200, 235], [240, 200, 80], [170, 120, 190],
    ],
    np.uint8,
)


class DataMissing(FileNotFoundError):
    pass


@dataclass
class Case:
    """One ground-truth case. gt/ref uint8 RGB, ink float32 (1 = paper), hints[k] RGBA uint8."""

    id: str
    source: str
    file: str  # relative to the data root (tgz member for OpenMoji)
    gt: np.ndarray
    ink: np.ndarray
    ref: np.ndarray
    hints: dict[int, np.ndarray] = field(default_factory=dict)
    ink_kind: str = "converter"  # converter | real line art | fills whitened
    hint_style: str = "dots"  # dots (hints.sample_hints) | colorist (hints.colorist_hints)
    credit: str = ""  # per-picture attribution where the source's differs per picture

    @property
    def attribution(self) -> str:
        return self.credit or ATTRIBUTION[self.source]

    @property
    def set(self) -> str:
        return SET_OF.get(self.source, "extended")

    def input_digest(self) -> str:
        """sha1 of what a method sees (ink, hints, reference) and of the truth: two runs scored the same pages iff equal."""
        h = hashlib.sha1()
        for a in (self.gt, self.ink, self.ref, *(self.hints[k] for k in sorted(self.hints))):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]


@dataclass
class CaseRef:
    """A built case in the cache, not loaded."""

    id: str
    source: str
    file: str
    path: Path

    @property
    def set(self) -> str:
        return SET_OF.get(self.source, "extended")


@dataclass
class RealPage:
    id: str
    file: str
    ink: np.ndarray
    balloons: np.ndarray  # bool HxW: hand-labelled balloons where labels exist, else metrics.balloon_mask
    hints: dict[int, np.ndarray] = field(default_factory=dict)
    balloon_source: str = "heuristic"
    attribution: str = ATTRIBUTION["blackjack"]


def seed_of(case_id: str, *salt: int) -> list[int]:
    h = int.from_bytes(hashlib.sha1(case_id.encode("utf-8")).digest()[:8], "little")
    return [h, *salt]


def fingerprint() -> str:
    """Hash of everything that decides a built case: the build code below, its constants, the
    converter and the hint sampler. Other edits to this file (loading, listing) do not rebuild.
    metrics.py is left out on purpose (only its colourfulness enters the build, to reject gray
    pictures): bump TESTSET_VERSION if that changes."""
    import inspect

    here = Path(__file__).resolve()
    parts = [f"v{TESTSET_VERSION}", str(CONVERTER_STRENGTH), str(MIN_GT_COLOURFULNESS), str(OPENMOJI_SIZE), str(HINT_COUNTS)]
    for fn in (build_case, reference_view, load_gt, _on_white, _OpenMojiReader, candidates, _openmoji_names, _hash_order,
               interleave, seed_of):
        parts.append(inspect.getsource(fn))
    parts += [_SKIN_TONE.pattern, _FLAG.pattern]
    p = here.parents[1] / "synth.py"
    parts.append(hashlib.sha1(p.read_bytes()).hexdigest() if p.exists() else "missing")
    parts.append(_sampler_source("sample_hints"))
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def _sampler_source(*names: str) -> str:
    """The source of the hint sampler(s) a build uses, with what they call and hints.py's constants,
    so adding functions to backend/hints.py (which training also imports) rebuilds nothing."""
    import inspect

    from .. import hints

    fns = {"sample_hints": ("sample_hints", "hint_candidates", "_median_colour", "_as_float_rgb"),
           "colorist_hints": ("colorist_hints", "figure_and_background", "hint_candidates", "_median_colour", "_as_float_rgb")}
    parts = []
    for name in names:
        parts += [inspect.getsource(getattr(hints, f)) for f in fns[name]]
    consts = {k: v for k, v in vars(hints).items() if k.isupper() and isinstance(v, (int, float, str, tuple))}
    parts.append(repr(sorted(consts.items())))
    return hashlib.sha1("|".join(parts).encode()).hexdigest()


def fingerprint_extended() -> str:
    """Like `fingerprint`, for the extended set's builders (its own cache folder: changing them
    leaves the current set's cases alone)."""
    import inspect

    parts = [f"v{TESTSET_VERSION}", str(CONVERTER_STRENGTH), str(MIN_GT_COLOURFULNESS), str(HINT_COUNTS), str(MAX_SIDE)]
    for fn in (build_extended_case, extended_view, reference_view, _on_white, _fills_whitened, _downscale, _figure_page,
               extended_candidates, _hash_order, interleave, seed_of, credit_of, figure_colourfulness):
        parts.append(inspect.getsource(fn))
    p = Path(__file__).resolve().parents[1] / "synth.py"
    parts.append(hashlib.sha1(p.read_bytes()).hexdigest() if p.exists() else "missing")
    parts.append(_sampler_source("colorist_hints"))
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def resolve_data_root(data: str | Path | None) -> Path:
    root = Path(data) if data else Path(os.environ.get("MANGACOLOR_DATA", DEFAULT_DATA))
    if not root.is_dir():
        raise DataMissing(f"bench data not found at {root} (expected ../shared/data next to the repo; set --data)")
    return root


# ----------------------------------------------------------------------------- candidates


def _hash_order(keys: list[str]) -> list[str]:
    return sorted(keys, key=lambda k: hashlib.sha1(("bench-order:" + k).encode()).hexdigest())


_SKIN_TONE = re.compile(r"-1F3F[B-F]")
_FLAG = re.compile(r"^(1F1[E-F][0-9A-F]-1F1[E-F][0-9A-F]|1F3F4-E00|1F3F3)")


def _openmoji_names(root: Path) -> list[str]:
    tgz = root / OPENMOJI_TGZ
    if not tgz.exists():
        return []
    with tarfile.open(tgz) as t:
        names = [m.name for m in t.getmembers() if m.name.startswith("package/color/svg/") and m.name.endswith(".svg")]
    out = []
    for n in names:
        stem = Path(n).stem
        if _SKIN_TONE.search(stem) or _FLAG.match(stem):
            continue  # skin-tone variants repeat a drawing; flags are not drawings
        if is_held_out("openmoji/" + Path(n).name, root):
            out.append(n)
    return out


def candidates(root: Path, source: str) -> list[tuple[str, str]]:
    """Held-out (case id, file) pairs of one source, in the bench's fixed order."""
    if source == "openclipart":
        d = root / OPENCLIPART_DIR
        files = sorted(p for p in d.glob("*.webp")) if d.is_dir() else []
        items = {f"openclipart/{p.stem}": str(p.relative_to(root)) for p in files if is_held_out(p, root)}
    elif source == "openmoji":
        items = {f"openmoji/{Path(n).stem}": n for n in _openmoji_names(root)}
    elif source == "peppercarrot":
        d = root / PEPPERCARROT_DIR
        files = sorted(d.glob("en_episode-*.jp*g")) if d.is_dir() else []
        items = {f"peppercarrot/{p.stem}": str(p.relative_to(root)) for p in files if is_held_out(p, root)}
        return sorted(items.items())  # page order
    else:
        raise ValueError(source)
    return [(k, items[k]) for k in _hash_order(list(items))]


def interleave(lists: list[list[tuple[str, str]]]) -> list[tuple[str, str]]:
    out = []
    i = 0
    while any(i < len(lst) for lst in lists):
        for lst in lists:
            if i < len(lst):
                out.append(lst[i])
        i += 1
    return out


# ----------------------------------------------------------------------------- building


def _on_white(img: Image.Image) -> np.ndarray:
    rgba = np.asarray(img.convert("RGBA")).astype(np.float32) / 255.0
    rgb = rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:])
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


class _OpenMojiReader:
    def __init__(self, root: Path):
        self.path = root / OPENMOJI_TGZ
        self._tar: tarfile.TarFile | None = None

    def render(self, member: str) -> np.ndarray:
        import cairosvg

        if self._tar is None:
            self._tar = tarfile.open(self.path)
        svg = self._tar.extractfile(member).read()  # type: ignore[union-attr]
        png = cairosvg.svg2png(bytestring=svg, output_width=OPENMOJI_SIZE, output_height=OPENMOJI_SIZE)
        return _on_white(Image.open(io.BytesIO(png)))

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()


def load_gt(root: Path, source: str, file: str, openmoji: _OpenMojiReader | None) -> np.ndarray:
    if source == "openmoji":
        assert openmoji is not None
        return openmoji.render(file)
    return _on_white(Image.open(root / file))


def reference_view(gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A different view of the same picture: mirrored, cropped to 70-90 % a side, rescaled to 50-80 %."""
    img = gt[:, ::-1]
    h, w = img.shape[:2]
    fh, fw = rng.uniform(0.7, 0.9, 2)
    ch, cw = max(8, int(h * fh)), max(8, int(w * fw))
    y0 = int(rng.integers(0, h - ch + 1))
    x0 = int(rng.integers(0, w - cw + 1))
    crop = img[y0 : y0 + ch, x0 : x0 + cw]
    s = float(rng.uniform(0.5, 0.8))
    size = (max(8, int(round(cw * s))), max(8, int(round(ch * s))))
    return np.ascontiguousarray(cv2.resize(np.ascontiguousarray(crop), size, interpolation=cv2.INTER_AREA))


def build_case(case_id: str, source: str, file: str, gt: np.ndarray) -> Case:
    from ..hints import sample_hints
    from ..synth import manga_from_color

    rgb = gt.astype(np.float32) / 255.0
    ink = manga_from_color(rgb, np.random.default_rng(seed_of(case_id, 1)), strength=CONVERTER_STRENGTH)
    ink = np.ascontiguousarray(ink, dtype=np.float32)
    ref = reference_view(gt, np.random.default_rng(seed_of(case_id, 2)))
    hints = {}
    for k in HINT_COUNTS:
        if k > 0:
            hints[k] = sample_hints(gt, ink, k, np.random.default_rng(seed_of(case_id, 3, k)))
    return Case(id=case_id, source=source, file=file, gt=gt, ink=ink, ref=ref, hints=hints)


# ----------------------------------------------------------------------------- the extended set (issue 10)

MAX_SIDE = 1200  # px: larger pictures are downscaled (area filter) so a page's long side is at most this
FILL_INK_RAMP = (0.20, 0.40)  # value (max of R, G, B): darker is ink, lighter is paper, linear between (anti-aliased edges)
FIGURE_PAGE_HEIGHT = 1200  # px, the white page a figure is placed on
FIGURE_HEIGHT = (0.30, 0.50)  # of the page height
FIGURE_PAGE_ASPECT = (0.70, 1.00)  # width / height of that page
MIN_OUTLINE_SHARE = 0.03  # share of a figure's pixels that are dark: enough for its own lines ("fills whitened")

COMICGEN_ARTISTS = {
    "dee": "Ramya Mylavarapu", "dey": "Ramya Mylavarapu", "priya": "Ramya Mylavarapu", "ethan": "Devarani B",
    "aryan": "Swetha Mylavarapu", "bill": "Renel McCullum", "sophie": "Shawf Designs",
}
DICEBEAR_CREDIT = {
    "adventurer": '"Adventurer" by Lisa Wischofsky, via DiceBear, CC BY 4.0',
    "micah": '"Avatar Illustration System" by Micah Lanier, via DiceBear, CC BY 4.0',
    "openPeeps": '"Open Peeps" by Pablo Stanley, via DiceBear, CC0 1.0',
}


def credit_of(source: str, file: str) -> str:
    """Attribution of one picture of the extended set (SOURCES.md): per character, per avatar style."""
    stem = Path(file.split("#", 1)[0]).stem
    if "comicgen/" in file:
        who = re.sub(r"nuov[ao]$", "", stem.split("_", 1)[0])
        return f"comicgen character {who.capitalize()} by {COMICGEN_ARTISTS.get(who, 'the comicgen artists')}, CC0 1.0 (via comicgen, Gramener)"
    if source == "dicebear":
        return DICEBEAR_CREDIT.get(Path(file).parent.name, ATTRIBUTION["dicebear"])
    if "openclipart" in file:
        return ATTRIBUTION["openclipart"]
    return ATTRIBUTION[source]


def extended_candidates(root: Path, source: str) -> list[tuple[str, str]]:
    """Held-out (case id, spec) pairs of one extended source, in the bench's fixed order. A spec is a
    file relative to the data root, with '#view' for the views of one painted picture."""
    def held(d: str, pattern: str) -> list[Path]:
        folder = root / d
        return [p for p in sorted(folder.glob(pattern)) if is_held_out(p, root)] if folder.is_dir() else []

    if source == "comicgen":
        # Held out as training holds out a pair: by the colour picture's path (backend/data.py).
        items = {f"comicgen/{p.stem}": str(p.relative_to(root)) for p in held(f"{COMICGEN_PAIRS}/color", "*.png")
                 if (root / COMICGEN_PAIRS / "line" / p.name).exists()}
        return [(k, items[k]) for k in _hash_order(list(items))]
    if source == "dicebear":
        per_style = []
        for style in DICEBEAR_STYLES:
            items = {f"dicebear/{p.stem}": str(p.relative_to(root)) for p in held(f"{DICEBEAR_DIR}/{style}", "*.png")}
            per_style.append([(k, items[k]) for k in _hash_order(list(items))])
        return interleave(per_style)
    if source == "peppercarrot_art":
        files = [p for p in held(PEPPERCARROT_ART_DIR, "*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")]
        per_file = [[(f"peppercarrot_art/{p.stem}/{v}", f"{p.relative_to(root)}#{v}") for v in PEPPERCARROT_ART_VIEWS] for p in files]
        return interleave(per_file)
    if source == "figures":
        pairs = root / COMICGEN_PAIRS / "color"
        # A recoloured character whose drawing is a training pair is left out (its lines were trained on).
        recol = [p for p in held(COMICGEN_RECOLORED, "*.png")
                 if not ((pairs / p.name).exists() and not is_held_out(pairs / p.name, root))]
        a = {f"figures/comicgen_{p.stem}": str(p.relative_to(root)) for p in recol}
        tail = candidates(root, "openclipart")[::-1][:FIGURES_OPENCLIPART]
        b = {f"figures/openclipart_{Path(f).stem}": f for _, f in tail}
        return interleave([[(k, a[k]) for k in _hash_order(list(a))], [(k, b[k]) for k in _hash_order(list(b))]])
    raise ValueError(source)


def _downscale(img: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    h, w = img.shape[:2]
    s = max_side / max(h, w)
    if s >= 1:
        return img
    return np.ascontiguousarray(cv2.resize(np.ascontiguousarray(img), (max(1, round(w * s)), max(1, round(h * s))),
                                           interpolation=cv2.INTER_AREA))


def _fills_whitened(gt: np.ndarray) -> np.ndarray:
    """Line art from a flat-coloured picture with outlines: every non-dark fill turned white (black
    hair and other solid blacks stay black, as in inked manga); float32 ink, 1 = paper."""
    value = gt.max(-1).astype(np.float32) / 255.0  # a saturated red or navy fill is not dark; black and dark brown are
    lo, hi = FILL_INK_RAMP
    return np.clip((value - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def extended_view(root: Path, source: str, spec: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(the picture, its real line art or None) before placement: a held-out file, or a view of one."""
    file, _, view = spec.partition("#")
    img = _on_white(Image.open(root / file))
    line = None
    if source == "comicgen":
        lp = root / COMICGEN_PAIRS / "line" / Path(file).name
        line = np.asarray(Image.open(lp).convert("L"))
        if line.shape != img.shape[:2]:
            raise ValueError(f"{lp}: line art {line.shape} and colour {img.shape[:2]} differ in size")
    if view and view != "full":
        rng = np.random.default_rng(seed_of(spec, 6))
        h, w = img.shape[:2]
        fh, fw = rng.uniform(0.45, 0.70, 2)
        ch, cw = int(h * fh), int(w * fw)
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        img = img[y0 : y0 + ch, x0 : x0 + cw]
    return img, line


def _figure_page(fig: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The figure (cropped to what is not white) placed small on a larger white page: figure height
    30-50 % of a 1200-px page, width/height 0.7-1, at a random spot."""
    nonwhite = fig.min(-1) < 240
    ys, xs = np.nonzero(nonwhite)
    if ys.size == 0:
        raise ValueError("blank figure")
    fig = fig[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    H = FIGURE_PAGE_HEIGHT
    W = int(round(H * rng.uniform(*FIGURE_PAGE_ASPECT)))
    fh = rng.uniform(*FIGURE_HEIGHT) * H
    s = min(fh / fig.shape[0], 0.8 * W / fig.shape[1])
    size = (max(8, round(fig.shape[1] * s)), max(8, round(fig.shape[0] * s)))
    small = cv2.resize(np.ascontiguousarray(fig), size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    page = np.full((H, W, 3), 255, np.uint8)
    y0 = int(rng.integers(0, H - size[1] + 1))
    x0 = int(rng.integers(0, W - size[0] + 1))
    page[y0 : y0 + size[1], x0 : x0 + size[0]] = small
    return page


def figure_colourfulness(img: np.ndarray) -> float:
    """Colourfulness of what is not white paper: the extended set's pictures are mostly white page
    (a whole-page measure would reject a figure for the paper around it)."""
    mask = img.min(-1) < 240
    if mask.sum() < 64:
        return 0.0
    return metrics.colourfulness(img, mask)


def build_extended_case(case_id: str, source: str, spec: str, img: np.ndarray, line: np.ndarray | None) -> Case:
    """One case of the extended set from its picture (and real line art): the page, the ink (real
    line art as it is; fills whitened; or the converter, drawn per case), colorist hints, a reference."""
    from ..hints import colorist_hints
    from ..synth import manga_from_color

    if source == "figures":
        gt = _figure_page(img, np.random.default_rng(seed_of(case_id, 7)))
    else:
        gt = img
    gt = _downscale(gt)
    if line is not None:
        ink = _downscale(line).astype(np.float32) / 255.0
        kind = "real line art"
    else:
        kind = "converter"
        if source in ("dicebear", "figures"):
            dark = gt.max(-1) < 0.3 * 255  # outlines and solid blacks
            figure = gt.min(-1) < 240
            can = dark.sum() >= MIN_OUTLINE_SHARE * max(1, figure.sum())
            if can and np.random.default_rng(seed_of(case_id, 5)).random() < 0.5:
                kind = "fills whitened"
        if kind == "fills whitened":
            ink = _fills_whitened(gt)
        else:
            rgb = gt.astype(np.float32) / 255.0
            ink = manga_from_color(rgb, np.random.default_rng(seed_of(case_id, 1)), strength=CONVERTER_STRENGTH)
    ink = np.ascontiguousarray(ink, dtype=np.float32)
    ref = reference_view(gt, np.random.default_rng(seed_of(case_id, 2)))
    hints = {k: colorist_hints(gt, ink, k, np.random.default_rng(seed_of(case_id, 3, k))) for k in HINT_COUNTS if k > 0}
    return Case(id=case_id, source=source, file=spec, gt=gt, ink=ink, ref=ref, hints=hints, ink_kind=kind,
                hint_style="colorist", credit=credit_of(source, spec))


def _cache_name(case_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", case_id.replace("/", "__")) + ".npz"


def _save(case: Case, path: Path) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp,
        gt=case.gt,
        ink=case.ink,
        ref=case.ref,
        **{f"hints{k}": v for k, v in case.hints.items()},
        meta=np.frombuffer(json.dumps({"id": case.id, "source": case.source, "file": case.file, "ink_kind": case.ink_kind,
                                       "hint_style": case.hint_style, "credit": case.credit}).encode(), np.uint8),
    )
    tmp.replace(path)


def _load(path: Path) -> Case:
    with np.load(path) as z:
        meta = json.loads(bytes(z["meta"]).decode())
        hints = {int(k[5:]): z[k] for k in z.files if k.startswith("hints")}
        return Case(id=meta["id"], source=meta["source"], file=meta["file"], gt=z["gt"], ink=z["ink"], ref=z["ref"], hints=hints,
                    ink_kind=meta.get("ink_kind", "converter"), hint_style=meta.get("hint_style", "dots"),
                    credit=meta.get("credit", ""))


class TestSet:
    """Builds (or loads from the cache) the ground-truth cases and the real pages."""

    def __init__(self, data: str | Path | None = None, cache: str | Path | None = None, log=print):
        self.root = resolve_data_root(data)
        self.cache = Path(cache) if cache else DEFAULT_CACHE
        self.dir = self.cache / f"testset-{fingerprint()}"
        self.ext_dir = self.cache / f"testset-ext-{fingerprint_extended()}"
        self.log = log
        self._rejected_path = self.dir / "rejected.json"

    def _rejected(self, folder: Path | None = None) -> dict[str, str]:
        path = (folder or self.dir) / "rejected.json"
        if path.exists():
            return json.loads(path.read_text())
        return {}

    def select(self, n: int, sources: tuple[str, ...] = SOURCES) -> list[CaseRef]:
        """The first `n` accepted cases of the sources interleaved round-robin (fixed order),
        built into the cache where missing; only references are returned, load them one at a time.
        Sources are those of the current set (SOURCES) or of the extended set (NEW_SOURCES), not both."""
        if n <= 0:
            return []
        extended = any(s in NEW_SOURCES for s in sources)
        if extended and not all(s in NEW_SOURCES for s in sources):
            raise ValueError("select() takes sources of one set; call it once per set")
        folder = self.ext_dir if extended else self.dir
        folder.mkdir(parents=True, exist_ok=True)
        rejected_path = folder / "rejected.json"
        queues = [(extended_candidates if extended else candidates)(self.root, s) for s in sources]
        if not any(queues):
            raise DataMissing(f"no held-out pictures found under {self.root} for {', '.join(sources)}")
        rejected = self._rejected(folder)
        out: list[CaseRef] = []
        reader = _OpenMojiReader(self.root)
        built = 0

        def accept(case_id: str, file: str) -> CaseRef | None:
            nonlocal built
            if case_id in rejected:
                return None
            source = case_id.split("/", 1)[0]
            path = folder / _cache_name(case_id)
            if not path.exists():
                if source != "openmoji":
                    assert is_held_out(self.root / file.split("#", 1)[0], self.root), file
                if extended:
                    try:
                        img, line = extended_view(self.root, source, file)
                    except (OSError, ValueError) as exc:
                        rejected[case_id] = f"unreadable: {exc}"
                        rejected_path.write_text(json.dumps(rejected, indent=1, sort_keys=True))
                        return None
                else:
                    gt = load_gt(self.root, source, file, reader)
                    img = gt
                m = figure_colourfulness(img) if extended else metrics.colourfulness(img)
                if m < MIN_GT_COLOURFULNESS:
                    rejected[case_id] = f"colourfulness {m:.1f} < {MIN_GT_COLOURFULNESS}"
                    rejected_path.write_text(json.dumps(rejected, indent=1, sort_keys=True))
                    return None
                case = build_extended_case(case_id, source, file, img, line) if extended else build_case(case_id, source, file, gt)
                _save(case, path)
                built += 1
            return CaseRef(id=case_id, source=source, file=file, path=path)

        # Round-robin over the sources; a rejected picture gives its turn to the next of the same source.
        iters = [iter(q) for q in queues]
        try:
            while len(out) < n and iters:
                for it in list(iters):
                    if len(out) >= n:
                        break
                    for case_id, file in it:
                        ref = accept(case_id, file)
                        if ref is not None:
                            out.append(ref)
                            break
                    else:
                        iters.remove(it)
        finally:
            reader.close()
        if built:
            self.log(f"built {built} new test case(s) into {folder}")
        return out

    @staticmethod
    def load(ref: CaseRef) -> Case:
        return _load(ref.path)

    def cases(self, n: int, sources: tuple[str, ...] = SOURCES) -> list[Case]:
        """`select` and load them all (small sets and tests)."""
        return [self.load(r) for r in self.select(n, sources)]

    def case(self, case_id: str, file: str) -> Case:
        """One case by id (built and cached like the others)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / _cache_name(case_id)
        if path.exists():
            return _load(path)
        source = case_id.split("/", 1)[0]
        reader = _OpenMojiReader(self.root)
        try:
            gt = load_gt(self.root, source, file, reader)
        finally:
            reader.close()
        case = build_case(case_id, source, file, gt)
        _save(case, path)
        return case

    def real_ink(self, file: str) -> np.ndarray:
        return np.asarray(Image.open(self.root / file).convert("L"), dtype=np.float32) / 255.0

    def real_page_files(self, n: int | None = None, quick: bool = False) -> list[str]:
        d = self.root / BLACKJACK_DIR
        files = sorted(d.glob("*.jpg")) if d.is_dir() else []
        if quick:
            files = [p for p in files if p.name == QUICK_REAL_PAGE] or files[:1]
        if n is not None:
            files = files[:n]
        return [str(p.relative_to(self.root)) for p in files]

    def real_page(self, file: str, scale: float = 1.0) -> RealPage:
        """A real B/W page with its balloon mask and palette hints (deterministic; cheap, not cached)."""
        ink = self.real_ink(file)
        if scale != 1.0:
            size = (max(16, round(ink.shape[1] * scale)), max(16, round(ink.shape[0] * scale)))
            ink = np.clip(cv2.resize(ink, size, interpolation=cv2.INTER_AREA), 0.0, 1.0)
        heuristic = metrics.balloon_mask(ink)
        seeds = labelled_balloon_seeds().get(Path(file).name)
        if seeds is not None:
            balloons = metrics.balloons_from_seeds(ink, [(x * scale, y * scale) for x, y in seeds])
        else:
            balloons = heuristic
        page_id = f"blackjack/{Path(file).stem}"
        avoid = balloons | heuristic  # hints go on neither, as a colorist would not dot a balloon
        hints = {
            k: palette_hints(ink, avoid, k, np.random.default_rng(seed_of(page_id, 4, k))) for k in REAL_HINT_COUNTS if k > 0
        }
        return RealPage(id=page_id, file=file, ink=ink, balloons=balloons, hints=hints,
                        balloon_source="hand-labelled" if seeds is not None else "heuristic")

    def real_pages(self, n: int | None = None, quick: bool = False, scale: float = 1.0) -> list[RealPage]:
        return [self.real_page(f, scale) for f in self.real_page_files(n, quick)]


BALLOON_LABELS = Path(__file__).with_name("balloons_blackjack.json")


@functools.lru_cache(maxsize=1)
def labelled_balloon_seeds() -> dict[str, list[tuple[float, float]]]:
    """Hand-labelled balloons of the Black Jack pages: file name -> seed points (see the JSON's _about)."""
    if not BALLOON_LABELS.exists():
        return {}
    return {k: [tuple(p) for p in v] for k, v in json.loads(BALLOON_LABELS.read_text())["pages"].items()}


def palette_hints(ink: np.ndarray, avoid: np.ndarray, k: int, rng: np.random.Generator, size: int = 3) -> np.ndarray:
    """k square dots of palette colours on paper at least 3 px from ink and outside `avoid`."""
    h, w = ink.shape
    layer = np.zeros((h, w, 4), np.uint8)
    paper = (ink > 0.75).astype(np.uint8)
    clear = cv2.erode(paper, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)), borderType=cv2.BORDER_REPLICATE) > 0
    clear &= ~avoid
    idx = np.flatnonzero(clear.ravel())
    if idx.size == 0 or k <= 0:
        return layer
    chosen = rng.choice(idx, size=min(k, idx.size), replace=False)
    cols = REAL_HINT_PALETTE[rng.integers(0, len(REAL_HINT_PALETTE), len(chosen))]
    r = size // 2
    for flat, c in zip(chosen, cols):
        y, x = divmod(int(flat), w)
        layer[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1, :3] = c
        layer[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1, 3] = 255
    return layer
