"""Classical structure of a B/W page, computed before the network sees it.

A small network trained on little data should not have to learn what classical image analysis
gives for free, so the colorizer is fed:
- which ink is *line* (long connected strokes that enclose regions) and which is *tone*
  (screentone dots and specks, small connected blobs);
- the regions enclosed by lines, their size and whether they touch the page border (paper);
- each hint propagated over its line-enclosed region ("fill up to the next ink line").
All functions work on numpy arrays; images are float32 in [0, 1] with 1 = white paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
from scipy import ndimage
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

INK_LEVEL = 0.5  # ink pixels are darker than this
# An ink blob smaller than this many pixels (at a 2000-px page height) is tone or a speck, not a line.
TONE_BLOB_AREA_AT_2000 = 24
# A working-resolution pixel is a wall between regions when this share of it is line ink.
LINE_COVERAGE_WALL = 0.2


@dataclass
class PageStructure:
    """What the colorizer needs of the ink, at its working resolution."""

    ink: np.ndarray  # float32 HxW, area-averaged ink
    line: np.ndarray  # bool HxW, walls between regions
    tone: np.ndarray  # float32 HxW, local density of tone ink (screentone, hatching specks)

    @property
    def shape(self) -> tuple[int, int]:
        return self.ink.shape  # type: ignore[return-value]


def ink_mask(ink: np.ndarray) -> np.ndarray:
    return ink < INK_LEVEL


# Full-resolution pages reach 64 Mpx, where one float32 plane costs 256 MB: full-size work runs
# in bands of about this many pixels (a few MB of temporaries) or in place on compact dtypes.
BAND_PIXELS = 1 << 20

Checkpoint = Callable[[], None]  # called between bands; raises to stop (the pipeline's cancel)


def band_rows(width: int, multiple: int = 1) -> int:
    """Rows per band for a page `width` pixels wide (a multiple of `multiple`)."""
    rows = max(1, BAND_PIXELS // max(width, 1))
    return max(multiple, rows // multiple * multiple)


def split_line_and_tone(ink: np.ndarray, checkpoint: Checkpoint | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split dark pixels of a full-resolution page into line ink and tone ink by blob size."""
    dark = np.ascontiguousarray(ink_mask(ink))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(dark.view(np.uint8), connectivity=8)
    if checkpoint is not None:
        checkpoint()
    min_area = max(4, int(round(TONE_BLOB_AREA_AT_2000 * (max(ink.shape) / 2000.0) ** 2)))
    is_line = stats[:, cv2.CC_STAT_AREA] >= min_area
    is_line[0] = False  # background label
    line = is_line[labels]
    del labels  # int32, 256 MB at 64 Mpx
    tone = np.greater(dark, line, out=dark)  # dark & ~line, in place
    return line, tone


def working_shape(shape: tuple[int, int], long_side: int) -> tuple[int, int]:
    h, w = shape
    scale = min(1.0, long_side / max(h, w))
    return max(1, int(round(h * scale))), max(1, int(round(w * scale)))


def resize_area(
    img: np.ndarray, shape: tuple[int, int], block: Callable[[slice, slice], np.ndarray] | None = None,
    checkpoint: Checkpoint | None = None,
) -> np.ndarray:
    """Area-averaged float32 copy of `img` (any dtype) at `shape`, the same bits as
    `cv2.resize(img.astype(np.float32), ..., INTER_AREA)` but without the page-sized float32
    copy: a large page is converted and reduced in bands. `block(rows, cols)`, if given, makes
    the float32 pixels of that part of the page instead of `img[rows, cols]` (`img` then only
    gives the size), so derived images (hint colour x mask) are never built at full size.

    Bands are exact because OpenCV's INTER_AREA is separable: with an integer vertical (or
    horizontal) factor each band of whole output rows (columns) is reduced on its own; otherwise
    the rows are reduced horizontally band by band (a vertical factor of 1 adds nothing) and the
    narrow result vertically."""
    h, w = shape
    big_h, big_w = img.shape[:2]
    if (big_h, big_w) == (h, w):
        return img.astype(np.float32, copy=True) if block is None else np.asarray(block(slice(None), slice(None)), np.float32)
    if block is None:
        block = lambda rows, cols: img[rows, cols].astype(np.float32)  # noqa: E731
    if h > big_h or w > big_w or big_h * big_w <= 2 * BAND_PIXELS:
        return cv2.resize(block(slice(None), slice(None)), (w, h), interpolation=cv2.INTER_AREA)
    tail = img.shape[2:]

    def reduce(part: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        return cv2.resize(part, (size[1], size[0]), interpolation=cv2.INTER_AREA).reshape(size + tail)

    def check() -> None:
        if checkpoint is not None:
            checkpoint()

    out = np.empty((h, w) + tail, np.float32)
    if big_h % h == 0:  # whole output rows per band
        fy = big_h // h
        step = band_rows(big_w, fy)
        for y in range(0, big_h, step):
            y1 = min(y + step, big_h)
            out[y // fy : y1 // fy] = reduce(block(slice(y, y1), slice(None)), ((y1 - y) // fy, w))
            check()
        return out
    if big_w % w == 0:  # whole output columns per band
        fx = big_w // w
        step = band_rows(big_h, fx)
        for x in range(0, big_w, step):
            x1 = min(x + step, big_w)
            out[:, x // fx : x1 // fx] = reduce(block(slice(None), slice(x, x1)), (h, (x1 - x) // fx))
            check()
        return out
    narrow = np.empty((big_h, w) + tail, np.float32)
    step = band_rows(big_w)
    for y in range(0, big_h, step):
        y1 = min(y + step, big_h)
        narrow[y:y1] = reduce(block(slice(y, y1), slice(None)), (y1 - y, w))
        check()
    out[...] = reduce(narrow, (h, w))
    return out


def analyse_page(
    ink: np.ndarray, long_side: int, line_and_tone: tuple[np.ndarray, np.ndarray] | None = None,
    checkpoint: Checkpoint | None = None,
) -> PageStructure:
    """Full-resolution ink -> structure at the working resolution (long side at most `long_side`)."""
    line_full, tone_full = line_and_tone if line_and_tone is not None else split_line_and_tone(ink)
    shape = working_shape(ink.shape, long_side)
    ink_w = resize_area(ink, shape, checkpoint=checkpoint)
    line_w = resize_area(line_full, shape, checkpoint=checkpoint) >= LINE_COVERAGE_WALL  # bool -> float32 band by band
    tone_w = resize_area(tone_full, shape, checkpoint=checkpoint)
    tone_w = cv2.blur(tone_w, (5, 5))
    return PageStructure(ink=ink_w, line=line_w, tone=tone_w)


def line_regions(line: np.ndarray) -> tuple[np.ndarray, int]:
    """Label the regions enclosed by line ink (4-connected); walls get label 0."""
    n, labels = cv2.connectedComponents((~line).astype(np.uint8), connectivity=4)
    return labels.astype(np.int32), int(n)


def labels_touching_border(labels: np.ndarray, n: int) -> np.ndarray:
    """bool[n]: which labels reach the image border (label 0, the walls, never counts)."""
    border = np.zeros(n, bool)
    border[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = True
    border[0] = False
    return border


def enclosed_holes(region: np.ndarray) -> np.ndarray:
    """What a region (bool HxW) encloses: the pixels outside it that cannot reach the image border
    without crossing it (4-connected), e.g. the lettering inside a balloon."""
    outside = np.pad((~region).astype(np.uint8), 1, constant_values=1)
    cv2.floodFill(outside, None, (0, 0), 2)
    return outside[1:-1, 1:-1] == 1


def region_maps(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel log-area share of its region and whether its region touches the border."""
    area = np.bincount(labels.ravel(), minlength=n).astype(np.float32)
    total = float(labels.size)
    log_share = np.log(np.maximum(area, 1.0) / total) / np.log(max(total, 2.0))  # in [-1, 0]; a 1-px page: 0
    log_share = 1.0 + log_share  # 0 for a 1-px region, 1 for the whole page
    border = labels_touching_border(labels, n)
    log_share[0] = 0.0
    return log_share[labels].astype(np.float32), border[labels].astype(np.float32)


def resample_hints(
    hints_rgba: np.ndarray, shape: tuple[int, int], checkpoint: Checkpoint | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Full-resolution RGBA hint layer -> (RGB float, mask bool) at `shape`.

    A 1-px dot must survive downsampling, so colours are averaged over hint pixels only
    (not diluted with the empty layer) and any covered output pixel counts as hinted.
    """
    if hints_rgba.shape[:2] != tuple(shape):
        # Band by band: the float32 RGB of a 64-Mpx hint layer alone would be 768 MB.
        def weight_block(rows: slice, cols: slice) -> np.ndarray:
            return (hints_rgba[rows, cols, 3] > 0).astype(np.float32)

        def summed_block(rows: slice, cols: slice) -> np.ndarray:
            part = hints_rgba[rows, cols]
            rgb = part[..., :3].astype(np.float32) / 255.0
            rgb *= (part[..., 3] > 0).astype(np.float32)[..., None]
            return rgb

        weight = resize_area(hints_rgba[..., 3], shape, weight_block, checkpoint)
        summed = resize_area(hints_rgba[..., :3], shape, summed_block, checkpoint)
        out_mask = weight > 1e-6
        out_rgb = np.where(out_mask[..., None], summed / np.maximum(weight, 1e-6)[..., None], 0.0)
        return out_rgb.astype(np.float32), out_mask
    mask = (hints_rgba[..., 3] > 0).astype(np.float32)
    rgb = hints_rgba[..., :3].astype(np.float32) / 255.0
    return rgb * mask[..., None], mask > 0


def propagate_hints(labels: np.ndarray, hint_rgb: np.ndarray, hint_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spread every hint over its line-enclosed region.

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
    regions: np.ndarray  # int32 HxW, the gap-closed regions (`page_regions` of a whole page)
    n_regions: int


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


def spread_hints(
    line: np.ndarray,
    hint_rgb: np.ndarray,
    hint_mask: np.ndarray,
    seed: np.ndarray,
    page_shape: tuple[int, int] | None = None,
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
    """
    h, w = line.shape
    page_shape = page_shape or (h, w)
    free = ~line
    valid = hint_mask & free
    gap = gap_half_width(page_shape)
    to_walls = _distance_to_walls(free)
    # Only open paper seeds: a margin is wide; blank strips between hatching strokes are not.
    seed = seed & free & (local_width(free, SEED_WIDTH_GAPS * gap, to_walls) >= SEED_WIDTH_GAPS * gap)
    regions, n_regions = gap_closed_regions(line, gap, to_walls)  # = page_regions(line) for a whole page
    # A region is open to the paper when it meets the page border along a real stretch, not where
    # the tip of a tuft of hair touches the edge.
    min_seed = PAPER_MIN_SEED_SHARE * 2 * (page_shape[0] + page_shape[1])
    seeded = np.bincount(regions[seed], minlength=n_regions) >= max(1.0, min_seed)
    hinted = np.bincount(regions[valid], minlength=n_regions) > 0
    seeded[0] = hinted[0] = False
    large = np.bincount(regions.ravel(), minlength=n_regions) >= PAPER_MIN_SHARE * page_shape[0] * page_shape[1]
    paper = (seeded & ~hinted & large)[regions]
    rgb = np.zeros((h, w, 3), np.float32)
    reached = np.zeros((h, w), bool)
    if not hinted.any():
        return HintSpread(rgb=rgb, mask=reached, paper=paper, regions=regions, n_regions=n_regions)
    n_hint, hint_ids = cv2.connectedComponents(valid.astype(np.uint8), connectivity=8)
    counts = np.maximum(np.bincount(hint_ids[valid], minlength=n_hint), 1).astype(np.float32)
    colours = np.stack([np.bincount(hint_ids[valid], weights=hint_rgb[valid][:, c], minlength=n_hint) for c in range(3)], -1)
    colours = (colours / counts[:, None]).astype(np.float32)
    paper_id = n_hint  # hints are 1..n_hint-1
    dist = np.minimum(to_walls, max(gap, OPEN_WIDTH_SHARE * max(page_shape)))
    seeds = np.where(valid, hint_ids, 0).astype(np.int32)
    seeds[seed & seeded[regions] & hinted[regions] & ~valid] = paper_id
    seeds = _grow_seeds_to_their_discs(seeds, dist, free)
    boxes = ndimage.find_objects(regions)
    for region in np.flatnonzero(hinted):
        box = boxes[region - 1]
        inside = regions[box] == region
        markers = np.where(inside, seeds[box], 0)
        claim = watershed(-dist[box], markers, mask=inside, connectivity=1).astype(np.int32)
        if (claim == paper_id).any():
            claim = _merge_open_paper(claim, dist[box], paper_id)
        by_hint = inside & (claim > 0) & (claim < paper_id)
        rgb[box][by_hint] = colours[claim[by_hint]]
        reached[box] |= by_hint
        paper[box] |= inside & (claim == paper_id)
    paper = _release_lobes(paper, dist, seed, gap)
    return HintSpread(rgb=rgb, mask=reached, paper=paper, regions=regions, n_regions=n_regions)


def spread_on_page(page: PageStructure, hint_rgb: np.ndarray, hint_mask: np.ndarray) -> HintSpread:
    """`spread_hints` over a whole page, the paper seed on all four page edges."""
    return spread_hints(page.line, hint_rgb, hint_mask, paper_seed(clean_paper(page.ink, page.tone, page.line)))


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


def page_regions(line: np.ndarray) -> tuple[np.ndarray, int]:
    """The regions the network is told about (their size, whether they touch the border): the
    gap-closed regions of a whole page at the working resolution, so that a face with an open
    outline is not "the big region touching the border" the background is."""
    return gap_closed_regions(line, gap_half_width(line.shape))


N_INPUT_CHANNELS = 17


def build_inputs(
    page: PageStructure,
    hint_rgb: np.ndarray,
    hint_mask: np.ndarray,
    draft_rgb: np.ndarray | None = None,
    draft_mask: np.ndarray | None = None,
    spread: HintSpread | None = None,
) -> np.ndarray:
    """The network's per-pixel input, C x H x W float32, all at the working resolution.

    0 ink | 1 line walls | 2 tone density | 3 region log-area | 4 region touches border (`page_regions`) |
    5-7 hint RGB | 8 hint mask | 9-11 spread hint RGB (`spread_hints`) | 12 spread mask |
    13-15 coloring draft RGB | 16 draft mask
    """
    h, w = page.shape
    if spread is None:
        spread = spread_on_page(page, hint_rgb, hint_mask)
    area, border = region_maps(spread.regions, spread.n_regions)  # = page_regions(page.line)
    prop_rgb, prop_mask = spread.rgb, spread.mask
    if draft_rgb is None or draft_mask is None:
        draft_rgb = np.zeros((h, w, 3), np.float32)
        draft_mask = np.zeros((h, w), bool)
    planes = [
        page.ink[None],
        page.line[None].astype(np.float32),
        page.tone[None],
        area[None],
        border[None],
        np.moveaxis(hint_rgb * hint_mask[..., None], -1, 0),
        hint_mask[None].astype(np.float32),
        np.moveaxis(prop_rgb, -1, 0),
        prop_mask[None].astype(np.float32),
        np.moveaxis(draft_rgb * draft_mask[..., None], -1, 0),
        draft_mask[None].astype(np.float32),
    ]
    out = np.concatenate(planes, axis=0).astype(np.float32)
    assert out.shape[0] == N_INPUT_CHANNELS
    return out


# Lettered regions (speech balloons, caption boxes). Colorists leave them white; a network that
# sees a white region enclosed by a line cannot tell a balloon from a white shirt, but the
# lettering can: many small glyphs of similar size, in a convex white area with no screentone.
BALLOON_MIN_SHARE = 0.0005  # of the page area
BALLOON_MAX_SHARE = 0.08
BALLOON_MIN_GLYPHS = 4  # an emoji face (eyes, mouth) has fewer features of one size than a line of text
BALLOON_MAX_GLYPH_SIDE = 0.3  # a glyph's bounding box side / the region's shorter side
BALLOON_MIN_INK_SHARE = 0.02  # dark lettering ink / balloon area: a few specks are not text
BALLOON_MAX_INK_SHARE = 0.35  # lettering covers a minority of the balloon
BALLOON_MAX_GLYPH_SIZE_CV = 0.35  # standard deviation / mean of the glyph sizes
BALLOON_MAX_TONE_SHARE = 0.02  # screentone inside means a drawn object, not a balloon
BALLOON_MIN_SOLIDITY = 0.85  # filled area / convex hull area: balloons and boxes are convex
BALLOON_PAPER_LEVEL = 0.8


def lettered_regions(ink: np.ndarray, tone: np.ndarray, checkpoint: Checkpoint | None = None) -> np.ndarray:
    """Speech balloons and caption boxes of a full-resolution page: bool HxW, filled (the
    lettering included). Paper regions away from the border that enclose many glyph-sized blobs
    of ink, hold no screentone and are convex. A heuristic; a hint inside a region overrules it.
    `checkpoint` is called before each candidate region (it raises to stop)."""
    h, w = ink.shape
    # Stricter than INK_LEVEL: the gray edge of a thin balloon outline must still close it.
    paper = np.ascontiguousarray(ink > BALLOON_PAPER_LEVEL).view(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(paper, connectivity=4)
    del paper
    if checkpoint is not None:
        checkpoint()
    out = np.zeros((h, w), bool)
    total = float(h * w)
    x0, y0, bw0, bh0, area0 = (stats[:, c] for c in range(5))
    candidates = np.flatnonzero(
        (area0 >= BALLOON_MIN_SHARE * total) & (area0 <= BALLOON_MAX_SHARE * total)
        & (x0 > 0) & (y0 > 0) & (x0 + bw0 < w) & (y0 + bh0 < h)
    )  # fmt: skip
    for i in candidates[candidates > 0]:
        if checkpoint is not None:
            checkpoint()
        x, y, bw, bh = int(x0[i]), int(y0[i]), int(bw0[i]), int(bh0[i])
        comp = labels[y : y + bh, x : x + bw] == i
        holes = enclosed_holes(comp)  # glyphs and their counters
        filled = comp | holes
        filled_area = float(filled.sum())
        letter_ink = float((ink[y : y + bh, x : x + bw][holes] < INK_LEVEL).sum()) / filled_area
        if not BALLOON_MIN_INK_SHARE <= letter_ink <= BALLOON_MAX_INK_SHARE:
            continue
        if tone[y : y + bh, x : x + bw][holes].sum() > BALLOON_MAX_TONE_SHARE * filled_area:
            continue
        # The glyphs: the larger enclosed blobs (kana, kanji, letters; not dots and dakuten) are
        # many, small next to the balloon, and of one size. Eyes, folds and hatching are not.
        _, _, hole_stats, _ = cv2.connectedComponentsWithStats(holes.astype(np.uint8), connectivity=8)
        side = np.maximum(hole_stats[1:, cv2.CC_STAT_WIDTH], hole_stats[1:, cv2.CC_STAT_HEIGHT]).astype(np.float64)
        if side.size < BALLOON_MIN_GLYPHS:
            continue
        glyph_side = side[side >= 0.5 * np.percentile(side, 90)]
        if glyph_side.size < BALLOON_MIN_GLYPHS or glyph_side.std() > BALLOON_MAX_GLYPH_SIZE_CV * glyph_side.mean():
            continue
        if glyph_side.max() > BALLOON_MAX_GLYPH_SIDE * min(bw, bh):
            continue
        contours, _ = cv2.findContours(filled.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        hull_area = cv2.contourArea(cv2.convexHull(np.concatenate(contours)))
        if filled_area < BALLOON_MIN_SOLIDITY * hull_area:
            continue
        out[y : y + bh, x : x + bw] |= filled
    return out
