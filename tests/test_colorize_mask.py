"""Krita's Colorize Mask baseline (backend/bench/colorize_mask.py): the parts that need no Krita (hints grouped
into key strokes, the paper stroke on the border, the files handed to Krita and read back), and one real run
in the Krita 5.2 chroot, skipped with the reason where the chroot is absent (it is never built by the tests:
`python -m backend.bench.colorize_mask --build`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from backend.bench import baselines
from backend.bench import colorize_mask as cm


def _hints(h: int, w: int, dots: list[tuple[int, int, tuple[int, int, int], int]]) -> np.ndarray:
    layer = np.zeros((h, w, 4), np.uint8)
    for y, x, rgb, a in dots:
        layer[y, x] = (*rgb, a)
    return layer


def _pixels(stroke: cm.KeyStroke) -> set[tuple[int, int]]:
    ys, xs = np.nonzero(stroke.alpha)
    return {(int(y) + stroke.y, int(x) + stroke.x) for y, x in zip(ys, xs)}


def test_border_mask_is_a_frame_of_the_given_width():
    m = cm.border_mask(10, 12, 3)
    assert m[:3].all() and m[-3:].all() and m[:, :3].all() and m[:, -3:].all()
    assert not m[3:-3, 3:-3].any()
    assert m.sum() == 10 * 12 - 4 * 6
    assert cm.border_mask(4, 4, 9).all()  # wider than the page: the whole page, no error


def test_one_key_stroke_per_distinct_colour_plus_the_white_border():
    red, blue = (255, 0, 0), (0, 0, 255)
    hints = _hints(20, 30, [(5, 5, red, 255), (6, 7, red, 40), (7, 6, red, 255), (10, 20, blue, 255), (12, 22, blue, 255),
                            (15, 15, (9, 9, 9), 0)])
    strokes = cm.key_strokes(hints, border_px=2)
    assert [s.rgb for s in strokes] == [(255, 255, 255), red, blue]  # white first, then most pixels; alpha 0 ignored
    white, r, b = strokes
    assert _pixels(white) == {(int(y), int(x)) for y, x in zip(*np.nonzero(cm.border_mask(20, 30, 2)))}
    assert (white.x, white.y, white.width, white.height) == (0, 0, 30, 20)
    assert _pixels(r) == {(5, 5), (6, 7), (7, 6)}  # any alpha > 0 counts, with its RGB
    assert (r.x, r.y, r.width, r.height) == (5, 5, 3, 3)
    assert _pixels(b) == {(10, 20), (12, 22)} and b.pixels == 2
    assert set(np.unique(r.alpha)) == {0, 255}


def test_white_hints_join_the_paper_stroke_and_coloured_hints_on_the_border_stay_theirs():
    green = (0, 200, 0)
    hints = _hints(16, 16, [(8, 8, (255, 255, 255), 255), (0, 5, green, 255), (1, 5, green, 255)])
    strokes = {s.rgb: s for s in cm.key_strokes(hints, border_px=2)}
    assert set(strokes) == {(255, 255, 255), green}
    white = _pixels(strokes[(255, 255, 255)])
    assert (8, 8) in white and (0, 0) in white
    assert (0, 5) not in white and (1, 5) not in white
    assert _pixels(strokes[green]) == {(0, 5), (1, 5)}


def test_no_border_stroke_when_asked_and_no_strokes_without_hints():
    assert cm.key_strokes(np.zeros((8, 8, 4), np.uint8), border_px=0) == []
    only = cm.key_strokes(np.zeros((8, 8, 4), np.uint8))
    assert [s.rgb for s in only] == [(255, 255, 255)]


def test_sixty_four_colours_give_sixty_five_strokes():
    rng = np.random.default_rng(1)
    colours = {tuple(int(v) for v in rng.integers(0, 255, 3)) for _ in range(200)}
    colours = sorted(c for c in colours if c != (255, 255, 255))[:64]
    hints = np.zeros((64, 64, 4), np.uint8)
    for i, c in enumerate(colours):
        hints[8 + (i // 8) * 6, 8 + (i % 8) * 6] = (*c, 255)
    strokes = cm.key_strokes(hints)
    assert len(strokes) == 65
    assert {s.rgb for s in strokes[1:]} == set(colours)


def test_key_strokes_rejects_wrong_hint_arrays():
    with pytest.raises(ValueError):
        cm.key_strokes(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError):
        cm.key_strokes(np.zeros((8, 8, 4), np.float32))


def test_patches_cover_the_stroke_exactly_without_overlap():
    hints = _hints(150, 140, [(70, 70, (1, 2, 3), 255)])
    white = cm.key_strokes(hints, border_px=3)[0]
    patches = cm.stroke_patches(white, tile=32)
    plane = np.zeros((150, 140), np.int32)
    for x, y, w, h, data in patches:
        a = np.frombuffer(data, np.uint8).reshape(h, w)
        plane[y : y + h, x : x + w] += 1  # counts coverage: overlap would give 2
        assert set(np.unique(a)) <= {0, 255}
    assert plane.max() == 1
    covered = plane.astype(bool)
    assert covered[cm.border_mask(150, 140, 3)].all()
    assert not covered[40:110, 40:100].any()  # empty interior tiles are left out
    rebuilt = np.zeros((150, 140), np.uint8)
    for x, y, w, h, data in patches:
        rebuilt[y : y + h, x : x + w] = np.frombuffer(data, np.uint8).reshape(h, w)
    assert np.array_equal(rebuilt > 0, cm.border_mask(150, 140, 3))


def test_write_job_inputs_manifest_and_files(tmp_path: Path):
    import cv2

    ink = np.ones((40, 50), np.float32)
    ink[10:30, 20] = 0.0
    ink[5, 5] = 0.5
    hints = _hints(40, 50, [(15, 10, (200, 10, 10), 255), (15, 35, (10, 10, 200), 255)])
    entry = cm.write_job_inputs(cm.MaskJob("case/k2", ink, hints), tmp_path / "job0000")
    assert entry["id"] == "case/k2" and entry["dir"] == "job0000"
    assert (entry["width"], entry["height"]) == (50, 40)
    page = cv2.imread(str(tmp_path / "job0000" / "ink.png"), cv2.IMREAD_UNCHANGED)
    assert page.dtype == np.uint8 and page.shape == (40, 50)
    assert page[5, 5] == 128 and page[20, 20] == 0 and page[0, 0] == 255
    assert [s["rgb"] for s in entry["strokes"]] == [[255, 255, 255], [10, 10, 200], [200, 10, 10]]  # ties: by colour
    for s in entry["strokes"]:
        data = (tmp_path / "job0000" / s["file"]).read_bytes()
        assert sum(p[2] * p[3] for p in s["patches"]) == len(data)
        got = set()
        for x, y, w, h, off in s["patches"]:
            a = np.frombuffer(data[off : off + w * h], np.uint8).reshape(h, w)
            got |= {(int(yy) + y, int(xx) + x) for yy, xx in zip(*np.nonzero(a))}
        assert len(got) == s["pixels"]
    json.dumps(entry)  # the manifest is JSON
    with pytest.raises(ValueError):
        cm.write_job_inputs(cm.MaskJob("bad", ink, hints[:10]), tmp_path / "bad")


def _write_result(job_dir: Path, rgba: np.ndarray, composite: np.ndarray | None = None) -> None:
    h, w = rgba.shape[:2]
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / "colour.bgra").write_bytes(np.ascontiguousarray(rgba[..., [2, 1, 0, 3]]).tobytes())
    if composite is not None:
        bgra = np.concatenate([composite[..., ::-1], np.full((h, w, 1), 255, np.uint8)], 2)
        (job_dir / "composite.bgra").write_bytes(np.ascontiguousarray(bgra).tobytes())
    (job_dir / "result.json").write_text(json.dumps({"id": "x", "width": w, "height": h, "seconds_total": 0.5}))


def test_read_result_bgra_unfilled_is_white_and_composite_is_multiply(tmp_path: Path):
    h, w = 4, 6
    ink = np.ones((h, w), np.float32)
    ink[:, 2] = 0.0
    ink[0, 0] = 0.5
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[:, :3] = (200, 100, 50, 255)
    rgba[:, 3:] = (0, 0, 0, 0)  # left unfilled by the lazy brush
    rgba[3, 5] = (0, 0, 255, 128)  # half covered: blended over white paper
    expected_colour = np.ones((h, w, 3), np.float32)
    expected_colour[:, :3] = np.array([200, 100, 50]) / 255.0
    expected_colour[3, 5] = (127 / 255.0, 127 / 255.0, 1.0)
    krita = baselines.compose(expected_colour, ink)
    _write_result(tmp_path / "j", rgba, krita)
    colour, comp, info = cm.read_result(tmp_path / "j", ink)
    assert colour.dtype == np.float32 and colour.shape == (h, w, 3)
    assert np.allclose(colour, expected_colour, atol=1 / 255)
    assert comp.dtype == np.uint8 and np.array_equal(comp, baselines.compose(colour, ink))
    assert comp[0, 2].tolist() == [0, 0, 0] and comp[1, 4].tolist() == [255, 255, 255]
    assert info["unfilled_fraction"] == pytest.approx(11 / 24)
    assert info["krita_composite_max_diff"] <= 1


def test_read_result_missing_failed_and_wrong_size(tmp_path: Path):
    ink = np.ones((4, 6), np.float32)
    with pytest.raises(FileNotFoundError):
        cm.read_result(tmp_path / "none", ink)
    (tmp_path / "err").mkdir()
    (tmp_path / "err" / "error.txt").write_text("Traceback ...\nRuntimeError: boom\n")
    with pytest.raises(RuntimeError, match="boom"):
        cm.read_result(tmp_path / "err", ink)
    _write_result(tmp_path / "small", np.zeros((3, 6, 4), np.uint8))
    with pytest.raises(RuntimeError, match="size"):
        cm.read_result(tmp_path / "small", ink)


def test_status_without_a_chroot(tmp_path: Path):
    ok, note = cm.status(tmp_path / "nothing")
    assert not ok and "--build" in note
    (tmp_path / "half").mkdir()
    ok, note = cm.status(tmp_path / "half")
    assert not ok and "incomplete" in note


def test_status_reads_the_krita_version(tmp_path: Path):
    root = tmp_path / "root"
    for p in ("usr/bin/kritarunner", "usr/bin/Xvfb"):
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        (root / p).write_text("")
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / cm.COMPLETE_MARKER).write_text("{}")
    status = "Package: krita\nStatus: install ok installed\nVersion: 1:{v}+dfsg-1\n\nPackage: xvfb\nStatus: install ok installed\nVersion: 2:21\n"
    (root / "var/lib/dpkg/status").write_text(status.format(v="5.1.5"))
    ok, note = cm.status(root)
    assert not ok and "5.1.5" in note
    (root / "var/lib/dpkg/status").write_text(status.format(v="5.2.9"))
    ok, note = cm.status(root)
    assert ("5.2.9" in note) and (ok or "root" in note)


def test_run_without_a_chroot_raises_unavailable(tmp_path: Path):
    job = cm.synthetic_circles(32)
    with pytest.raises(cm.KritaUnavailable):
        cm.run_colorize_mask([job], root=tmp_path / "nothing")
    assert cm.run_colorize_mask([], root=tmp_path / "nothing") == {}


def test_build_refuses_to_remove_a_folder_with_mounts(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(cm, "_mounts_under", lambda p: [str(p) + "/dev"])
    (tmp_path / "x").mkdir()
    with pytest.raises(cm.KritaUnavailable, match="mounted"):
        cm._safe_rmtree(tmp_path / "x")
    assert (tmp_path / "x").exists()


def test_synthetic_circles_check_catches_wrong_colours():
    job = cm.synthetic_circles(64)
    h, w = job.ink.shape
    assert cm.check_circles(job, np.ones((h, w, 3), np.float32))  # all white: both circles wrong
    good = np.ones((h, w, 3), np.float32)
    yy, xx = np.mgrid[:h, :w]
    r = 64 // 3
    good[(yy - h // 2) ** 2 + (xx - 32) ** 2 < r**2] = (1, 0, 0)
    good[(yy - h // 2) ** 2 + (xx - 96) ** 2 < r**2] = (0, 0, 1)
    assert cm.check_circles(job, good) == []


# --- the real thing ------------------------------------------------------------------------------------

_OK, _WHY = cm.status()


@pytest.mark.skipif(not _OK, reason=f"Krita 5.2 chroot unavailable: {_WHY}")
def test_krita_colorize_mask_two_circles_and_many_colours():
    circles = cm.synthetic_circles(128)
    many = cm.synthetic_page(256, 320, 64, seed=3)
    empty = cm.MaskJob("no-hints", circles.ink, np.zeros_like(circles.hints))
    logs: list[str] = []
    res = cm.run_colorize_mask([circles, many, empty], log=logs.append)
    assert set(res) == {circles.id, many.id, empty.id}, logs
    colour, comp = res[circles.id]
    assert colour.dtype == np.float32 and colour.shape == circles.ink.shape + (3,)
    assert comp.dtype == np.uint8 and np.array_equal(comp, baselines.compose(colour, circles.ink))
    assert cm.check_circles(circles, colour) == []
    info = cm.last_run_info[circles.id]
    assert info["krita_composite_max_diff"] <= 1  # Krita's own Multiply display agrees with colour x ink
    assert info["settings"]["useEdgeDetection"] is False and info["settings"]["transparencyIndex"] == -1
    # 64 colours: every key stroke colour is used by the fill, and most hint pixels keep their colour
    c64 = np.round(res[many.id][0] * 255).astype(int)
    sel = many.hints[..., 3] > 0
    assert np.mean(np.all(c64[sel] == many.hints[..., :3][sel], axis=1)) > 0.7
    assert len(np.unique(c64.reshape(-1, 3), axis=0)) >= 60
    # only the paper stroke: all white
    assert np.allclose(res[empty.id][0], 1.0)
