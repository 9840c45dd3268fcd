"""Hints stay where they are put: gap-closed regions, the paper seed, competition at necks."""

import numpy as np
import cv2

from backend import spread as hint_spread
from backend import structure
from backend.pipeline import colorize
from backend.request import ColorizeOptions, ColorizeRequest

SKIN = (0.95, 0.75, 0.6)
SKY = (0.5, 0.7, 0.95)


def open_face(size: int = 400, gap_degrees: float = 20.0, thickness: int = 3) -> np.ndarray:
    """A figure on white paper: a circle outline (a face) whose outline has a gap at the right."""
    ink = np.ones((size, size), np.float32)
    c = size // 2
    cv2.ellipse(ink, (c, c), (size // 4, size // 4), 0, gap_degrees / 2, 360 - gap_degrees / 2, 0.0, thickness)
    return ink


def spread_of(ink, dots):
    line, tone = structure.split_line_and_tone(ink)
    rgb = np.zeros(ink.shape + (3,), np.float32)
    mask = np.zeros(ink.shape, bool)
    for (y, x), colour in dots:
        mask[y - 1 : y + 2, x - 1 : x + 2] = True
        rgb[y - 1 : y + 2, x - 1 : x + 2] = colour
    page = structure.PageStructure(ink=ink, line=line, tone=np.zeros_like(ink))
    return hint_spread.spread_on_page(page, rgb, mask), line


def test_a_dot_in_an_open_face_colours_the_face_not_the_page():
    ink = open_face(gap_degrees=25)  # a gap about 40 px wide: too wide to close, a neck all the same
    spread, _ = spread_of(ink, [((200, 180), SKIN)])
    inside = np.zeros(ink.shape, bool)
    cv2.circle(inside.view(np.uint8), (200, 200), 90, 1, -1)
    assert spread.mask[inside].mean() > 0.95  # the face
    assert np.allclose(spread.rgb[200, 200], SKIN)
    corners = np.zeros(ink.shape, bool)
    corners[:60, :60] = corners[-60:, -60:] = corners[:60, -60:] = True
    assert not spread.mask[corners].any() and spread.paper[corners].all()  # the page around it
    outside = np.hypot(*np.mgrid[:400, :400] - 200) > 120
    assert spread.mask[outside].mean() < 0.02


def test_small_gaps_are_closed():
    ink = open_face(gap_degrees=3)  # a 5 px gap
    line, _ = structure.split_line_and_tone(ink)
    regions = hint_spread.page_regions(line).labels
    assert regions[200, 200] != regions[10, 10]
    plain, _ = structure.line_regions(line)
    assert plain[200, 200] == plain[10, 10]  # the plain regions leak


def test_a_hint_painted_on_the_background_takes_the_background():
    ink = open_face(gap_degrees=25)
    spread, _ = spread_of(ink, [((200, 180), SKIN), ((30, 30), SKY)])
    assert np.allclose(spread.rgb[380, 380], SKY) and np.allclose(spread.rgb[20, 380], SKY)
    assert not spread.paper.any()
    assert np.allclose(spread.rgb[200, 220], SKIN)  # the face keeps its own hint


def test_hints_never_cross_ink():
    ink = np.ones((200, 300), np.float32)
    cv2.circle(ink, (75, 100), 50, 0.0, 3)
    cv2.circle(ink, (225, 100), 50, 0.0, 3)
    spread, line = spread_of(ink, [((100, 75), SKIN)])
    assert spread.mask[100, 60:90].all()
    assert not spread.mask[:, 160:].any()  # the other closed circle is left to the network
    assert not spread.paper[100, 225]  # and is not paper: it is not open to the page border
    assert not (spread.mask & line).any()


def test_two_hints_in_one_region_part_at_its_neck():
    ink = np.ones((200, 400), np.float32)  # two rooms joined by a narrow door, closed to the page
    cv2.rectangle(ink, (10, 10), (390, 190), 0.0, 3)
    ink[10:85, 198:203] = 0
    ink[115:190, 198:203] = 0
    spread, _ = spread_of(ink, [((100, 40), SKIN), ((100, 390 - 140), SKY)])
    assert np.allclose(spread.rgb[100, 150], SKIN) and np.allclose(spread.rgb[30, 190], SKIN)
    assert np.allclose(spread.rgb[100, 260], SKY) and np.allclose(spread.rgb[30, 215], SKY)


def test_paper_around_a_figure_stays_white_through_the_pipeline():
    ink = open_face(gap_degrees=25)
    hints = np.zeros(ink.shape + (4,), np.uint8)
    hints[198:202, 178:182] = (240, 190, 150, 255)
    out = colorize(ColorizeRequest(ink=ink, hints=hints, references=[], options=ColorizeOptions()))
    layer = out.color_layer[..., :3].astype(int)
    assert (layer[:40, :40] == 255).all() and (layer[-40:, -40:] == 255).all()
    face = layer[170:230, 170:230].reshape(-1, 3).mean(0)
    assert face[0] - face[2] > 30  # skin: warm, not white
