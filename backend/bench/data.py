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
SOURCES = ("openclipart", "openmoji", "peppercarrot")
QUICK_SOURCES = ("openclipart", "openmoji")  # small pictures only, for the quick run
QUICK_REAL_PAGE = "black_jack_v01_pdf009.jpg"

ATTRIBUTION = {
    "openclipart": "Openclipart (public domain), via Debian openclipart-png",
    "openmoji": "OpenMoji – the open-source emoji and icon project, CC BY-SA 4.0",
    "peppercarrot": "Pepper&Carrot by David Revoy, www.peppercarrot.com, CC BY 4.0",
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

    @property
    def attribution(self) -> str:
        return ATTRIBUTION[self.source]


@dataclass
class CaseRef:
    """A built case in the cache, not loaded."""

    id: str
    source: str
    file: str
    path: Path


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
    for p in (here.parents[1] / "synth.py", here.parents[1] / "hints.py"):
        parts.append(hashlib.sha1(p.read_bytes()).hexdigest() if p.exists() else "missing")
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
        meta=np.frombuffer(json.dumps({"id": case.id, "source": case.source, "file": case.file}).encode(), np.uint8),
    )
    tmp.replace(path)


def _load(path: Path) -> Case:
    with np.load(path) as z:
        meta = json.loads(bytes(z["meta"]).decode())
        hints = {int(k[5:]): z[k] for k in z.files if k.startswith("hints")}
        return Case(id=meta["id"], source=meta["source"], file=meta["file"], gt=z["gt"], ink=z["ink"], ref=z["ref"], hints=hints)


class TestSet:
    """Builds (or loads from the cache) the ground-truth cases and the real pages."""

    def __init__(self, data: str | Path | None = None, cache: str | Path | None = None, log=print):
        self.root = resolve_data_root(data)
        self.cache = Path(cache) if cache else DEFAULT_CACHE
        self.dir = self.cache / f"testset-{fingerprint()}"
        self.log = log
        self._rejected_path = self.dir / "rejected.json"

    def _rejected(self) -> dict[str, str]:
        if self._rejected_path.exists():
            return json.loads(self._rejected_path.read_text())
        return {}

    def select(self, n: int, sources: tuple[str, ...] = SOURCES) -> list[CaseRef]:
        """The first `n` accepted cases of the sources interleaved round-robin (fixed order),
        built into the cache where missing; only references are returned, load them one at a time."""
        self.dir.mkdir(parents=True, exist_ok=True)
        queues = [candidates(self.root, s) for s in sources]
        if not any(queues):
            raise DataMissing(f"no held-out pictures found under {self.root} for {', '.join(sources)}")
        rejected = self._rejected()
        out: list[CaseRef] = []
        reader = _OpenMojiReader(self.root)
        built = 0

        def accept(case_id: str, file: str) -> CaseRef | None:
            nonlocal built
            if case_id in rejected:
                return None
            source = case_id.split("/", 1)[0]
            path = self.dir / _cache_name(case_id)
            if not path.exists():
                if source != "openmoji":
                    assert is_held_out(self.root / file, self.root), file
                gt = load_gt(self.root, source, file, reader)
                m = metrics.colourfulness(gt)
                if m < MIN_GT_COLOURFULNESS:
                    rejected[case_id] = f"colourfulness {m:.1f} < {MIN_GT_COLOURFULNESS}"
                    self._rejected_path.write_text(json.dumps(rejected, indent=1, sort_keys=True))
                    return None
                _save(build_case(case_id, source, file, gt), path)
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
            self.log(f"built {built} new test case(s) into {self.dir}")
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
