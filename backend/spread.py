"""Where each hint's colour goes at the working resolution, before the network sees it.

A user dots a colour inside a shape and expects it to fill the shape up to the ink, as a bucket
fill with "close gaps" would, without leaking through the small gaps drawn outlines always have,
and with the page around the figures left as paper. The spread is one of the network's input
planes (`inputs.build_inputs`), and the paper it finds stays white after the network
(`pipeline.colorize`). Training spreads the hints of every sample with the same code
(`sampler.example_inputs`), on a window of a page.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import cv2
import numpy as np
from scipy import ndimage
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from .structure import Regions, region_maps

if TYPE_CHECKING:
    from .structure import PageStructure


# Clean paper: working-resolution ink lighter than this, with no tone, is blank paper.
PAPER_INK = 0.92
PAPER_TONE = 0.02
# Gaps in the ink narrower than twice this share of the working resolution's long side are
# closed (about 6 px at 768 px, 15 px on a 2000-px page): open outlines of hands, hair, sleeves.
GAP_HALF_WIDTH_SHARE = 0.004
MIN_GAP_HALF_WIDTH = 2.0


@dataclass
class HintSpread:
    """Where each hint's colour reaches at the working resolution, and what stays paper."""

    rgb: np.ndarray  # float32 HxWx3, the colour of the hint that reached the pixel (0 elsewhere)
    mask: np.ndarray  # bool HxW, reached by a hint
    paper: np.ndarray  # bool HxW, won by the paper seed: stays paper unless a hint is painted there
    regions: Regions  # the gap-closed regions (`page_regions` of a whole page)


def clean_paper(ink: np.ndarray, tone: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Blank paper at the working resolution: light, no screentone, not a line."""
    return (ink > PAPER_INK) & (tone < PAPER_TONE) & ~line


def paper_seed(paper: np.ndarray, edges: tuple[bool, bool, bool, bool] = (True, True, True, True)) -> np.ndarray:
    """The automatic paper seed: clean paper on the page border (top, bottom, left, right; a
    training crop passes False for its edges that lie inside the page)."""
    seed = np.zeros_like(paper)
    for on, sl in zip(edges, (np.s_[0, :], np.s_[-1, :], np.s_[:, 0], np.s_[:, -1])):
        if on:
            seed[sl] = paper[sl]
    return seed


def gap_half_width(shape: tuple[int, int]) -> float:
    return max(MIN_GAP_HALF_WIDTH, GAP_HALF_WIDTH_SHARE * max(shape))


# Passages wider than this share of the page's long side (half-width) all count as open space.
OPEN_WIDTH_SHARE = 0.1
# The paper seed sits only where the blank paper at the border is at least this many gap
# half-widths wide (margins, gutters, backgrounds), not between hatching strokes.
SEED_WIDTH_GAPS = 2
# An unhinted region is paper only if it is a large part of the page (margins and gutters, the
# background around figures), not a fold of a shirt that bleeds off the page edge.
PAPER_MIN_SHARE = 0.02
# ...and meets the page border along at least this share of the page's perimeter.
PAPER_MIN_SEED_SHARE = 0.02
# Two claims whose common border is narrower than this share of the narrower side's width met
# at a neck (a gap in an outline, the mouth of a sleeve), not in open space.
NECK_RATIO = 0.5


def _distance_to_walls(free: np.ndarray) -> np.ndarray:
    """Distance of each free pixel to the nearest wall or the page border."""
    padded = np.pad(free.astype(np.uint8), 1, constant_values=0)
    return cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]


def local_width(free: np.ndarray, cap: float, dist: np.ndarray | None = None) -> np.ndarray:
    """Half-width of the widest passage through each free pixel, capped: the radius of the
    largest disc inside the free area that covers the pixel (local thickness). A pixel beside
    the outline of a wide face is wide; a pixel in a gap of the outline is narrow. The page
    border counts as a wall: a line that stops just short of the page edge leaves a gap.
    `dist` is `_distance_to_walls(free)` if the caller has it."""
    dist = _distance_to_walls(free) if dist is None else dist
    width = np.where(free, np.minimum(dist, 1.0), 0.0).astype(np.float32)
    radius = 1.0
    while radius < cap:
        radius = min(cap, radius * 1.5)
        r = int(np.ceil(radius))
        centres = (dist >= radius).astype(np.uint8)
        if not centres.any():
            break
        covered = cv2.dilate(centres, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))) > 0
        width[covered & free] = radius
    return width


@dataclass
class SpreadPrep:
    """What `spread_hints` needs of a page that the hints do not change: the walls, the distance to
    them, the open paper seed, the gap-closed regions and which of them the seed opens onto.
    Computed once per page and reused when the same ink comes back with other hints
    (`page_cache`): nothing here is changed by a spread."""

    line: np.ndarray
    free: np.ndarray
    gap: float
    page_shape: tuple[int, int]
    to_walls: np.ndarray
    seed: np.ndarray  # the open paper seed
    regions: Regions
    seeded: np.ndarray  # bool[n]: regions open to the paper seed (label 0 included as counted)
    large: np.ndarray  # bool[n]: regions large enough to be paper

    @cached_property
    def dist(self) -> np.ndarray:
        return np.minimum(self.to_walls, max(self.gap, OPEN_WIDTH_SHARE * max(self.page_shape)))

    @cached_property
    def boxes(self) -> list:
        return ndimage.find_objects(self.regions.labels)

    def release_lobes(self, paper: np.ndarray) -> np.ndarray:
        """`_release_lobes(paper, dist, seed, gap)`, remembered for the last few paper masks: hints moved
        inside their regions usually leave the paper as it was, and this is the spread's costliest
        step (a grayscale reconstruction of the whole page)."""
        key = hashlib.sha256(np.packbits(paper)).hexdigest() + str(paper.shape)
        memo = self.__dict__.setdefault("_lobes", {})
        if key not in memo:
            while len(memo) >= 2:
                memo.pop(next(iter(memo)))
            memo[key] = _release_lobes(paper, self.dist, self.seed, self.gap).copy()
        return memo[key].copy()

    @cached_property
    def region_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """`structure.region_maps(regions)`: the network's region planes (shared: read only)."""
        return region_maps(self.regions)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.line, self.free, self.to_walls, self.seed, self.regions.labels)) * 2


def prepare_spread(line: np.ndarray, seed: np.ndarray, page_shape: tuple[int, int] | None = None) -> SpreadPrep:
    """The hint-independent part of `spread_hints` (same arguments, less the hints)."""
    h, w = line.shape
    page_shape = page_shape or (h, w)
    free = ~line
    gap = gap_half_width(page_shape)
    to_walls = _distance_to_walls(free)
    # Only open paper seeds: a margin is wide; blank strips between hatching strokes are not.
    seed = seed & free & (local_width(free, SEED_WIDTH_GAPS * gap, to_walls) >= SEED_WIDTH_GAPS * gap)
    regions = Regions(*gap_closed_regions(line, gap, to_walls))  # = page_regions(line) for a whole page
    labels, n_regions = regions.labels, regions.n
    # A region is open to the paper when it meets the page border along a real stretch, not where
    # the tip of a tuft of hair touches the edge.
    min_seed = PAPER_MIN_SEED_SHARE * 2 * (page_shape[0] + page_shape[1])
    seeded = np.bincount(labels[seed], minlength=n_regions) >= max(1.0, min_seed)
    large = regions.area >= PAPER_MIN_SHARE * page_shape[0] * page_shape[1]
    return SpreadPrep(line, free, gap, page_shape, to_walls, seed, regions, seeded, large)


def spread_hints(
    line: np.ndarray,
    hint_rgb: np.ndarray,
    hint_mask: np.ndarray,
    seed: np.ndarray,
    page_shape: tuple[int, int] | None = None,
    prep: SpreadPrep | None = None,
) -> HintSpread:
    """Spread hints up to the ink without flooding the page through gaps in open outlines.

    1. The page is cut into gap-closed regions (`gap_closed_regions`: a bucket fill with "close
       gaps"). A large region the paper seed (wide clean paper at the page border) touches that
       holds no hint is paper (margins, gutters, the background around figures); other regions
       without hints are left to the network.
    2. Inside a region that holds hints, every hint (a connected dot or stroke) and the paper
       seed, if the region reaches it, grow at once over the non-ink pixels, widest passages
       first (marker watershed on the negated distance to the ink, the widest path, akin to
       LazyBrush's min-cut along the ink): two seeds meet where the passage between them is
       narrowest, so a face dotted with skin and the background part at a wide gap in the
       face's outline, and two hints of one region part where the region narrows.
    3. A hint that meets the paper in open space rather than at a neck was painted on that paper
       itself and takes it over (a sky dot colours the sky, a shirt dot the shirt).
    Hints never cross ink. `page_shape` is the whole page's working shape when `line` is a
    window of it (training crops): gap widths and the paper's size are measured against the page.
    `prep`: `prepare_spread(line, seed, page_shape)` if the caller has it (then `seed` is not used).
    """
    if prep is None:
        prep = prepare_spread(line, seed, page_shape)
    h, w = prep.line.shape
    page_shape, free, gap, seed, regions = prep.page_shape, prep.free, prep.gap, prep.seed, prep.regions
    valid = hint_mask & free
    labels, n_regions = regions.labels, regions.n
    seeded = prep.seeded.copy()
    hinted = np.bincount(labels[valid], minlength=n_regions) > 0
    seeded[0] = hinted[0] = False
    paper = (seeded & ~hinted & prep.large)[labels]
    rgb = np.zeros((h, w, 3), np.float32)
    reached = np.zeros((h, w), bool)
    if not hinted.any():
        return HintSpread(rgb=rgb, mask=reached, paper=paper, regions=regions)
    n_hint, hint_ids = cv2.connectedComponents(valid.astype(np.uint8), connectivity=8)
    counts = np.maximum(np.bincount(hint_ids[valid], minlength=n_hint), 1).astype(np.float32)
    colours = np.stack([np.bincount(hint_ids[valid], weights=hint_rgb[valid][:, c], minlength=n_hint) for c in range(3)], -1)
    colours = (colours / counts[:, None]).astype(np.float32)
    paper_id = n_hint  # hints are 1..n_hint-1
    dist = prep.dist
    seeds = np.where(valid, hint_ids, 0).astype(np.int32)
    seeds[seed & seeded[labels] & hinted[labels] & ~valid] = paper_id
    seeds = _grow_seeds_to_their_discs(seeds, dist, free)
    boxes = prep.boxes
    for region in np.flatnonzero(hinted):
        box = boxes[region - 1]
        inside = labels[box] == region
        markers = np.where(inside, seeds[box], 0)
        claim = watershed(-dist[box], markers, mask=inside, connectivity=1).astype(np.int32)
        if (claim == paper_id).any():
            claim = _merge_open_paper(claim, dist[box], paper_id)
        by_hint = inside & (claim > 0) & (claim < paper_id)
        rgb[box][by_hint] = colours[claim[by_hint]]
        reached[box] |= by_hint
        paper[box] |= inside & (claim == paper_id)
    paper = prep.release_lobes(paper)  # = _release_lobes(paper, dist, seed, gap)
    return HintSpread(rgb=rgb, mask=reached, paper=paper, regions=regions)


def spread_on_page(
    page: PageStructure,
    hint_rgb: np.ndarray,
    hint_mask: np.ndarray,
    edges: tuple[bool, bool, bool, bool] = (True, True, True, True),
    page_shape: tuple[int, int] | None = None,
    prep: SpreadPrep | None = None,
) -> HintSpread:
    """`spread_hints` over a page, the paper seed on its clean paper along the page edges. For a
    window of a page (a training crop), `edges` says which of its edges (top, bottom, left, right)
    are the page's and `page_shape` is the whole page's working shape. `prep`:
    `prepare_page_spread(page, edges, page_shape)` if the caller has it (the page cache)."""
    if prep is None:
        prep = prepare_page_spread(page, edges, page_shape)
    return spread_hints(page.line, hint_rgb, hint_mask, prep.seed, page_shape, prep)


def prepare_page_spread(
    page: PageStructure, edges: tuple[bool, bool, bool, bool] = (True, True, True, True),
    page_shape: tuple[int, int] | None = None,
) -> SpreadPrep:
    """The hint-independent part of `spread_on_page`."""
    return prepare_spread(page.line, paper_seed(clean_paper(page.ink, page.tone, page.line), edges), page_shape)


def _release_lobes(paper: np.ndarray, dist: np.ndarray, seed: np.ndarray, gap: float) -> np.ndarray:
    """Paper is what opens widely onto the paper seed. A lobe the paper reaches only through a
    neck (a tuft of hair, a sleeve whose outline has a gap) is part of the drawing: it is given
    back to the network. A lobe is the basin of a local maximum of the width that stands at least
    a gap's width above the neck it is reached through (h-maxima); a uniformly narrow gutter has
    no such maximum of its own and stays with the margin it opens onto."""
    if not paper.any():
        return paper
    width = np.where(paper, dist, 0.0).astype(np.float32)
    peaks = h_maxima(width, gap) > 0
    n, markers = cv2.connectedComponents((peaks & paper).astype(np.uint8), connectivity=8)
    if n <= 2:
        return paper
    lobes = watershed(-width, markers, mask=paper, connectivity=1)
    seeded = np.zeros(n, bool)
    seeded[np.unique(lobes[seed & paper])] = True
    seeded[0] = True  # pixels of no lobe stay as they are
    return paper & seeded[lobes]


def _grow_seeds_to_their_discs(seeds: np.ndarray, dist: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Each seed grown over the free discs that hold it: a pixel joins its nearest seed when the
    widest free disc around the pixel reaches that seed. A dot painted beside an outline then
    starts from the wide area it lies in, not from its narrow spot by the line, and competes
    on equal terms with seeds that sit in the middle of their areas."""
    to_seed, nearest = cv2.distanceTransformWithLabels(
        (seeds == 0).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    ys, xs = np.nonzero(seeds)  # distanceTransformWithLabels numbers the seed pixels in row-major order
    seed_of = np.zeros(len(ys) + 1, np.int32)
    seed_of[1:] = seeds[ys, xs]
    return np.where(free & (to_seed <= dist + 1.0), seed_of[nearest], 0).astype(np.int32)


def _merge_open_paper(claim: np.ndarray, width: np.ndarray, paper_id: int) -> np.ndarray:
    """Give each connected part of the paper's claim to the hint it meets in open space, if any.

    The widest point of the border between two claims says how they met: across a neck (narrow
    next to the width of either side) the paper keeps its part; across a wide border the hint
    was painted in that very paper area. Gaps narrower than the gap-closing width never get
    here: they already split the page into separate regions."""
    n_parts, parts = cv2.connectedComponents((claim == paper_id).astype(np.uint8), connectivity=4)
    n_ids = paper_id + n_parts
    ids = np.where(parts > 0, paper_id + parts, claim)  # paper parts get ids after the hints
    side_width = np.zeros(n_ids, np.float32)
    np.maximum.at(side_width, ids.ravel(), width.ravel())
    keys, border = [], []
    for a, b, wa, wb in (
        (ids[:, :-1], ids[:, 1:], width[:, :-1], width[:, 1:]),
        (ids[:-1, :], ids[1:, :], width[:-1, :], width[1:, :]),
    ):
        touch = (a > 0) & (b > 0) & ((a > paper_id) != (b > paper_id))
        hint, part = np.minimum(a[touch], b[touch]), np.maximum(a[touch], b[touch])
        keys.append(hint.astype(np.int64) * n_ids + part)
        border.append(np.minimum(wa[touch], wb[touch]))
    keys_all, border_all = np.concatenate(keys), np.concatenate(border)
    if keys_all.size == 0:
        return claim
    pair, inverse = np.unique(keys_all, return_inverse=True)
    border_width = np.zeros(len(pair), np.float32)
    np.maximum.at(border_width, inverse, border_all)
    hint_of, part_of = np.divmod(pair, n_ids)
    narrow_side = np.minimum(side_width[hint_of], side_width[part_of])
    is_open = border_width >= NECK_RATIO * narrow_side
    owner = np.arange(n_ids, dtype=np.int64)
    owner[paper_id:] = paper_id
    for i in np.argsort(border_width):  # widest border last: it wins a part met by several hints
        if is_open[i]:
            owner[part_of[i]] = hint_of[i]
    return owner[ids].astype(np.int32)


def gap_closed_regions(line: np.ndarray, half_width: float, dist: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Line-enclosed regions that do not leak through gaps in the ink (trapped-ball segmentation).

    The cores of the regions are the pixels farther than `half_width` from any line: a gap
    narrower than twice that splits them. Each core grows back over the pixels nearer the ink
    (marker watershed on the negated distance, so two cores part at the narrowest point, the
    gap), but never across a line. Pieces too thin for a core of their own (thin closed regions)
    keep their plain label. Walls get label 0. `dist` is `_distance_to_walls(~line)` if the
    caller has it.
    """
    free = ~line
    dist = _distance_to_walls(free) if dist is None else dist
    n_core, cores = cv2.connectedComponents((dist > half_width).astype(np.uint8), connectivity=4)
    labels = watershed(-dist, cores, mask=free, connectivity=1).astype(np.int32) if n_core > 1 else np.zeros(line.shape, np.int32)
    rest = free & (labels == 0)
    if rest.any():
        n_rest, rest_labels = cv2.connectedComponents(rest.astype(np.uint8), connectivity=4)
        labels[rest] = rest_labels[rest] + (n_core - 1)
        return labels, n_core + n_rest - 1
    return labels, max(n_core, 1)


def page_regions(line: np.ndarray) -> Regions:
    """The regions the network is told about (their size, whether they touch the border): the
    gap-closed regions of a whole page at the working resolution, so that a face with an open
    outline is not "the big region touching the border" the background is."""
    return Regions(*gap_closed_regions(line, gap_half_width(line.shape)))


def propagate_hints(labels: np.ndarray, hint_rgb: np.ndarray, hint_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spread every hint over its line-enclosed region: the plain bucket fill (no gap closing, no
    paper seed) of the bench's flat-fill baseline, which `spread_hints` is measured against.

    Inside a region with several hints each pixel takes the nearest hint of its own region;
    regions without hints stay empty (mask 0). Hints on walls (label 0) do not spread.
    """
    h, w = labels.shape
    out_rgb = np.zeros((h, w, 3), np.float32)
    out_mask = np.zeros((h, w), bool)
    valid = hint_mask & (labels > 0)
    if not valid.any():
        return out_rgb, out_mask
    hinted_regions = np.unique(labels[valid])
    # Nearest hint pixel (Euclidean) for every pixel; accepted where it lies in the same region.
    _, nearest = cv2.distanceTransformWithLabels(
        (~valid).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    ys, xs = np.nonzero(valid)  # distanceTransformWithLabels numbers zero pixels in row-major order
    hint_label = np.zeros(len(ys) + 1, np.int32)
    hint_label[1:] = labels[ys, xs]
    hint_color = np.zeros((len(ys) + 1, 3), np.float32)
    hint_color[1:] = hint_rgb[ys, xs]
    same_region = hint_label[nearest] == labels
    # Fallback for pixels whose nearest hint is across a line: the mean hint colour of their region.
    n = int(labels.max()) + 1
    counts = np.bincount(labels[valid], minlength=n).astype(np.float32)
    means = np.stack([np.bincount(labels[valid], weights=hint_rgb[valid][:, c], minlength=n) for c in range(3)], -1)
    means = means / np.maximum(counts, 1.0)[:, None]
    in_hinted = np.isin(labels, hinted_regions) & (labels > 0)
    out_rgb = np.where(same_region[..., None], hint_color[nearest], means[labels]).astype(np.float32)
    out_rgb[~in_hinted] = 0.0
    return out_rgb, in_hinted
