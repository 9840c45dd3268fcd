"""Panel detection (backend.panels): synthetic pages with exact expectations, the JSON panels file,
label maps, reading order, the CLI hooks, and the bar on the 12 real Black Jack pages."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from backend.panels import (
    Panel,
    PanelsError,
    add_cli,
    detect_panels,
    panel_masks,
    panels_from_json,
    panels_to_json,
    reading_order,
    run_cli,
)

H, W = 1000, 700
FIXTURE = Path(__file__).parent / "fixtures" / "panels_blackjack.json"


def _art(page: np.ndarray, poly: np.ndarray, seed: int) -> None:
    """Fill a panel with manga-like content: a grey tone area, strokes and an outlined shape."""
    rng = np.random.RandomState(seed)
    mask = np.zeros(page.shape, np.uint8)
    cv2.fillPoly(mask, [poly.astype(np.int32)], 1)
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    art = np.full(page.shape, 255, np.uint8)
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    cv2.ellipse(art, (cx, cy), (max(5, (x1 - x0) // 4), max(5, (y1 - y0) // 4)), 0, 0, 360, 150, -1)
    cv2.ellipse(art, (cx, cy), (max(5, (x1 - x0) // 4), max(5, (y1 - y0) // 4)), 0, 0, 360, 0, 2)
    for _ in range(12):
        p = (int(rng.randint(x0, x1)), int(rng.randint(y0, y1)))
        q = (int(p[0] + rng.randint(-60, 60)), int(p[1] + rng.randint(-60, 60)))
        cv2.line(art, p, q, 0, 2)
    page[mask > 0] = art[mask > 0]


def _page(panels: list[np.ndarray], frame: bool = True, seed: int = 0) -> np.ndarray:
    page = np.full((H, W), 255, np.uint8)
    for i, p in enumerate(panels):
        _art(page, p, seed + i)
        if frame:
            cv2.polylines(page, [p.astype(np.int32)], True, 0, 3)
    return page


def _rect(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


def _iou(a: list, b: list, shape: tuple[int, int] = (H, W)) -> float:
    ma, mb = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    cv2.fillPoly(ma, [np.array(a, np.int32)], 1)
    cv2.fillPoly(mb, [np.array(b, np.int32)], 1)
    return float((ma & mb).sum() / max(1, (ma | mb).sum()))


def _matches(found: list[Panel], truth: list[np.ndarray], min_iou: float = 0.95, shape=(H, W)) -> None:
    assert len(found) == len(truth), [p.box for p in found]
    for t, p in zip(truth, found):  # truth given in reading order
        assert _iou(p.polygon, t, shape) >= min_iou, (t.tolist(), p.polygon)


GRID = [  # in manga reading order: rows top to bottom, right to left
    _rect(360, 40, 660, 330), _rect(40, 40, 345, 330),
    _rect(40, 345, 660, 600),
    _rect(460, 615, 660, 960), _rect(250, 615, 445, 960), _rect(40, 615, 235, 960),
]


def test_grid_of_rectangles_in_manga_order():
    found = detect_panels(_page(GRID))
    _matches(found, GRID)
    for p in found:
        assert len(p.polygon) == 4 and not p.inset
        xs, ys = zip(*p.polygon)
        assert p.box == (min(xs), min(ys), max(xs), max(ys))


def test_left_to_right_order_and_float_input():
    page = _page(GRID).astype(np.float32) / 255.0
    found = detect_panels(page, order="ltr")
    _matches(found, [GRID[1], GRID[0], GRID[2], GRID[5], GRID[4], GRID[3]])


def test_slanted_gutter_gives_two_quads():
    top = np.array([[40, 40], [660, 40], [660, 420], [40, 500]], float)
    bottom = np.array([[40, 520], [660, 440], [660, 960], [40, 960]], float)
    found = detect_panels(_page([top, bottom]))
    _matches(found, [top, bottom])
    assert all(len(p.polygon) == 4 for p in found)


def test_bleed_panel_runs_to_the_page_edge():
    bleed = _rect(0, 0, W, 480)  # art off the top, left and right edges: no frame there
    lower = [_rect(360, 500, 660, 960), _rect(40, 500, 345, 960)]
    page = _page(lower, seed=3)
    page[0:480] = 170  # a tone background printed off the edges, with a white cloud touching the top
    _art(page, bleed, 7)
    page[0:480][page[0:480] == 255] = 170
    cv2.ellipse(page, (200, 0), (150, 90), 0, 0, 360, 255, -1)
    cv2.ellipse(page, (200, 0), (150, 90), 0, 0, 360, 0, 2)
    cv2.line(page, (0, 480), (W, 480), 0, 3)  # its only frame line, on the gutter side
    found = detect_panels(page)
    _matches(found, [bleed] + lower)
    assert found[0].box[:3] == (0, 0, W)


def test_inset_panel_is_its_own_panel_and_wins_in_the_label_map():
    outer = _rect(40, 40, 660, 960)
    page = _page([outer], seed=5)
    page[60:940, 60:640] = np.where((np.indices((880, 580)).sum(axis=0) // 6) % 2 == 0, 0, 150).astype(np.uint8)
    cv2.rectangle(page, (290, 290), (590, 610), 255, -1)  # the inset's white ring (its own gutter)
    inner = _rect(305, 305, 575, 595)
    page[305:595, 305:575] = 200  # a light tone under the inset's art
    _art(page, inner, 9)
    cv2.rectangle(page, (305, 305), (575, 595), 0, 3)
    found = detect_panels(page)
    assert len(found) == 2
    assert [p.inset for p in found] == [False, True]
    _matches(found, [outer, inner], min_iou=0.93)
    lab = panel_masks(found, page.shape)
    assert lab.dtype == np.int32
    assert lab[450, 440] == 2 and lab[100, 100] == 1 and lab[0, 0] == 0


def test_frameless_art_is_one_panel_over_the_content():
    page = np.full((H, W), 255, np.uint8)
    cv2.ellipse(page, (350, 500), (200, 300), 15, 0, 360, 90, -1)
    cv2.line(page, (120, 200), (600, 820), 0, 4)
    found = detect_panels(page)
    assert len(found) == 1
    x0, y0, x1, y1 = found[0].box
    ys, xs = np.nonzero(page < 200)
    assert abs(x0 - xs.min()) <= 4 and abs(x1 - xs.max() - 1) <= 4
    assert abs(y0 - ys.min()) <= 4 and abs(y1 - ys.max() - 1) <= 4


def test_blank_page_has_no_panels_and_bad_input_is_refused():
    assert detect_panels(np.full((H, W), 255, np.uint8)) == []
    with pytest.raises(ValueError):
        detect_panels(np.zeros((3, 3), np.uint8))
    with pytest.raises(PanelsError):
        detect_panels(np.full((H, W), 255, np.uint8), order="ttb")


def test_resolution_independent():
    page = _page(GRID)
    big = cv2.resize(page, (W * 2, H * 2), interpolation=cv2.INTER_LINEAR)
    found = detect_panels(big)
    _matches(found, [g * 2 for g in GRID], shape=(2 * H, 2 * W))


def test_reading_order_tall_panel_beside_two_stacked():
    tall, top, low = Panel([(400, 0), (700, 0), (700, 500), (400, 500)]), Panel([(0, 0), (390, 0), (390, 240), (0, 240)]), Panel([(0, 260), (390, 260), (390, 500), (0, 500)])
    bottom = Panel([(0, 520), (700, 520), (700, 1000), (0, 1000)])
    assert reading_order([bottom, low, top, tall], "rtl") == [tall, top, low, bottom]
    assert reading_order([bottom, low, top, tall], "ltr") == [top, low, tall, bottom]


def test_json_round_trip():
    found = detect_panels(_page(GRID))
    text = panels_to_json(found, (H, W), order="rtl")
    d = json.loads(text)
    assert d["width"] == W and d["height"] == H and len(d["panels"]) == 6
    back, shape = panels_from_json(text, (H, W))
    assert shape == (H, W)
    assert [p.polygon for p in back] == [p.polygon for p in found]
    assert [p.box for p in back] == [p.box for p in found]


@pytest.mark.parametrize(
    "text, msg",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"height": 10, "panels": []}', "'width'"),
        ('{"width": true, "height": 10, "panels": []}', "'width'"),
        ('{"width": 10, "height": 10}', "'panels' must be a list"),
        ('{"width": 10, "height": 10, "panels": [{"polygon": [[0, 0], [5, 5]]}]}', "at least 3 points"),
        ('{"width": 10, "height": 10, "panels": [{"polygon": [[0, 0], [5, 0], [5, 11]]}]}', "outside the 10x10 page"),
        ('{"width": 10, "height": 10, "panels": [{"polygon": [[0, 0], [5, 0], [-1, 5]]}]}', "outside"),
        ('{"width": 10, "height": 10, "panels": [{"polygon": [[0, 0], ["a", 0], [5, 5]]}]}', "[x, y] numbers"),
        ('{"width": 10, "height": 10, "panels": [{"polygon": [[0, 0], [5, 0], [NaN, 5]]}]}', "outside"),
        ('{"width": 10, "height": 10, "panels": [{"polygon": [[0, 0], [5, 5], [9, 9]]}]}', "no area"),
        ('{"width": 10, "height": 10, "panels": [{"box": [0, 0, 5, 5]}]}', "needs a 'polygon'"),
        ('{"width": 10, "height": 10, "panels": [7]}', "needs a 'polygon'"),
    ],
)
def test_hostile_json_is_refused_with_a_message(text, msg):
    with pytest.raises(PanelsError) as e:
        panels_from_json(text)
    assert msg in str(e.value)
    assert isinstance(e.value, ValueError)


def test_json_for_another_page_size_is_refused():
    text = '{"width": 10, "height": 10, "panels": [{"polygon": [[0, 0], [5, 0], [5, 5]]}]}'
    with pytest.raises(PanelsError, match="10x10 page, but the page is 20x10"):
        panels_from_json(text, (10, 20))


def test_cli_hooks(tmp_path, capsys):
    path = tmp_path / "page.png"
    cv2.imwrite(str(path), _page(GRID))
    parser = argparse.ArgumentParser(prog="python -m backend")
    add_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["panels", str(path), "--json", "--order", "ltr"])
    assert args.func(args) == 0
    d = json.loads(capsys.readouterr().out)
    assert len(d["panels"]) == 6 and d["order"] == "ltr"
    assert run_cli(parser.parse_args(["panels", str(path)])) == 0
    assert "6 panels (rtl)" in capsys.readouterr().out
    assert run_cli(parser.parse_args(["panels", str(tmp_path / "missing.png")])) == 2
    assert "error:" in capsys.readouterr().err


def _bar(pages_dir: Path) -> tuple[int, float, list[str]]:
    from backend.imageio import load_ink

    fx = json.loads(FIXTURE.read_text(encoding="utf-8"))
    equal, ious, rows = 0, [], []
    for name, page in fx["pages"].items():
        img = load_ink(pages_dir / name)
        assert img.shape == (page["height"], page["width"])
        found = detect_panels(img)
        best = [max((_iou(t, p.polygon, img.shape) for p in found), default=0.0) for t in page["panels"]]
        equal += len(found) == len(page["panels"])
        ious += best
        rows.append(f"{name} true {len(page['panels'])} found {len(found)} IoU {np.mean(best):.3f}")
    return equal, float(np.mean(ious)), rows


def test_bar_on_the_12_black_jack_pages(shared_data):
    equal, mean_iou, rows = _bar(shared_data / "real_bw_manga" / "blackjack_v01")
    assert equal >= 10 and mean_iou >= 0.85, "\n".join(rows)
