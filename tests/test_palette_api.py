"""Issue 12 at the boundary: panels, palettes and reference weights in the HTTP API and the CLI;
POST /v1/panels and POST /v1/palettes; hostile inputs answered with a clear 4xx or exit code 2."""

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from backend.colour_cli import load_panels, split_reference
from backend.jobs import JobRunner
from backend.palettes import palette_from_image, palette_from_json
from backend.imageio import ImageError
from backend.request import MAX_PANELS, ColorizeResult, RequestError
from backend.server import create_app
from api_images import png_b64

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def two_panel_page(h: int = 200, w: int = 300) -> np.ndarray:
    """Two framed panels side by side on white paper, a little drawing in each."""
    ink = np.full((h, w), 255, np.uint8)
    for x0, x1 in ((10, 140), (160, 290)):
        ink[10:190, x0:x1][[0, -1], :] = 0
        ink[10:190, x0:x1][:, [0, -1]] = 0
        ink[60:120, x0 + 30 : x0 + 100][[0, -1], :] = 0
        ink[60:120, x0 + 30 : x0 + 100][:, [0, -1]] = 0
    return ink


def solid(rgb, size=(32, 32)) -> np.ndarray:
    return np.tile(np.array(rgb, np.uint8), size + (1,))


class Capture:
    """A job runner's `run` that keeps the request instead of colorizing it."""

    def __init__(self):
        self.requests = []

    def __call__(self, request, progress=None, cancelled=None):
        self.requests.append(request)
        h, w = request.ink.shape
        return ColorizeResult(np.zeros((h, w, 4), np.uint8), "test", {}, ink=request.ink)


@pytest.fixture
def capture():
    return Capture()


@pytest.fixture
def client(capture):
    app = create_app(TOKEN, JobRunner(run=capture))
    return TestClient(app, base_url="http://127.0.0.1:8765", client=("127.0.0.1", 50000))


def red_palette_json() -> dict:
    return palette_from_image(solid((200, 40, 40)), "Red").to_json()


def test_colorize_body_carries_panels_palettes_and_weights(client, capture):
    ink = two_panel_page()
    body = {
        "ink": png_b64(ink),
        "references": [png_b64(solid((40, 60, 200))), png_b64(solid((40, 200, 60)))],
        "reference_weights": [3, 1],
        "palettes": [{**red_palette_json(), "weight": 0.5}],
        "panels": [
            {"polygon": [[10, 10], [140, 10], [140, 190], [10, 190]], "references": [png_b64(solid((220, 200, 40)))],
             "reference_weights": [2.5]},
            {"polygon": [[160, 10], [290, 10], [290, 190], [160, 190]], "box": [160, 10, 290, 190]},
        ],
    }
    r = client.post("/v1/colorize", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    req = capture.requests[-1]
    assert req.reference_weights == [3, 1] and len(req.references) == 2
    assert req.palettes[0].name == "Red" and req.palettes[0].weight == 0.5
    assert len(req.panels) == 2
    own = req.panels[0].colours
    assert own is not None and own.weights == (2.5,) and tuple(own.references[0][0, 0]) == (220, 200, 40)
    assert req.panels[1].colours is None  # the page's colours
    assert req.panels[1].polygon[2] == (290, 190)


def test_panels_auto_is_resolved_to_polygons_at_the_boundary(client, capture):
    r = client.post("/v1/colorize", json={"ink": png_b64(two_panel_page()), "panels": "auto"}, headers=AUTH)
    assert r.status_code == 200, r.text
    panels = capture.requests[-1].panels
    assert len(panels) == 2
    xs = sorted(min(x for x, _ in p.polygon) for p in panels)
    assert xs[0] < 20 and 150 <= xs[1] <= 170


def test_post_panels(client):
    r = client.post("/v1/panels", json={"page": png_b64(two_panel_page()), "order": "ltr"}, headers=AUTH)
    assert r.status_code == 200, r.text
    found = r.json()["panels"]
    assert len(found) == 2 and found[0]["box"][0] < found[1]["box"][0]  # left to right
    assert all(len(p["polygon"]) >= 3 for p in found)
    assert client.post("/v1/panels", json={"page": "%%"}, headers=AUTH).status_code == 400
    assert client.post("/v1/panels", json={"page": png_b64(two_panel_page()), "order": "up"}, headers=AUTH).status_code == 422


def test_post_palettes_from_a_reference_a_selection_and_hints(client):
    img = np.zeros((40, 60, 4), np.uint8)
    img[:, :40] = (200, 40, 40, 255)
    img[:, 40:] = (40, 60, 200, 255)
    r = client.post("/v1/palettes", json={"name": "Hero", "image": png_b64(img), "source": "reference"}, headers=AUTH)
    assert r.status_code == 200, r.text
    pal = palette_from_json(r.json())  # a valid palette file
    assert pal.name == "Hero" and len(pal.swatches) == 2
    sel = img.copy()
    sel[:, :40, 3] = 0  # only the blue part is selected
    r = client.post("/v1/palettes", json={"name": "Coat", "image": png_b64(sel), "source": "selection"}, headers=AUTH)
    pal = palette_from_json(r.json())
    assert pal.source == "selection" and [tuple(s) for s in pal.swatches] == [(40, 60, 200)]
    hints = np.zeros((40, 60, 4), np.uint8)
    hints[5:8, 5:8] = (250, 200, 150, 255)
    r = client.post("/v1/palettes", json={"name": "Skin", "image": png_b64(hints), "source": "hints"}, headers=AUTH)
    assert [s["rgb"] for s in r.json()["swatches"]] == ["#fac896"]
    empty = np.zeros((10, 10, 4), np.uint8)
    r = client.post("/v1/palettes", json={"name": "x", "image": png_b64(empty), "source": "selection"}, headers=AUTH)
    assert r.status_code == 400 and "transparent" in r.json()["error"]
    r = client.post("/v1/palettes", json={"name": "x", "image": png_b64(img), "source": "etc"}, headers=AUTH)
    assert r.status_code == 422


SQUARE = [[10, 10], [140, 10], [140, 190], [10, 190]]


@pytest.mark.parametrize(
    "extra, words",
    [
        ({"panels": [{"polygon": [[0, 0], [5, 5]]}]}, "at least 3 points"),
        ({"panels": [{"polygon": [[0, 0], [500, 0], [0, 100]]}]}, "outside the 300x200 page"),
        ({"panels": [{"polygon": [[0, 0], [10, 10], [20, 20]]}]}, "no area"),
        ({"panels": [{"polygon": SQUARE}] * (MAX_PANELS + 1)}, f"at most {MAX_PANELS}"),
        ({"references": ["REF"], "reference_weights": [0]}, "positive"),
        ({"references": ["REF"], "reference_weights": [1, 2]}, "one per reference"),
        ({"panels": [{"polygon": SQUARE, "references": ["REF"], "reference_weights": [-1]}]}, "panel 1"),
        ({"panels": [{"polygon": SQUARE, "reference_weights": [1]}]}, "without references"),
        ({"palettes": [{"format": "gimp"}]}, "not a MangaColor palette"),
        ({"palettes": [{**red_palette_json(), "histogram": [0.0] * 216}]}, "not all zero"),
        ({"panels": [{"polygon": SQUARE, "palettes": [{**red_palette_json(), "weight": 0}]}]}, "weight"),
        ({"panels": [{"polygon": SQUARE, "references": ["REF"] * 9}]}, "at most 8"),
        ({"panels": [{"polygon": SQUARE, "references": ["REF"] * 8}] * 5}, "at most 32"),
    ],
)
def test_hostile_colour_inputs_are_a_clear_400(client, capture, extra, words):
    ref = png_b64(solid((10, 20, 30)))

    def fill(value):
        if value == "REF":
            return ref
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    r = client.post("/v1/jobs", json={"ink": png_b64(two_panel_page()), **fill(extra)}, headers=AUTH)
    assert r.status_code == 400, r.text
    assert words in r.json()["error"]
    assert not capture.requests


def test_panels_field_shape_is_checked(client):
    r = client.post("/v1/jobs", json={"ink": png_b64(two_panel_page()), "panels": "some"}, headers=AUTH)
    assert r.status_code == 422
    r = client.post("/v1/jobs", json={"ink": png_b64(two_panel_page()), "panels": [{"polygon": SQUARE, "colour": 1}]}, headers=AUTH)
    assert r.status_code == 422


# ----------------------------------------------------------------------------- CLI


def test_reference_weight_is_parsed_only_when_it_is_a_number(tmp_path):
    assert split_reference("hero.png:2") == (Path("hero.png"), 2.0)
    assert split_reference("hero.png") == (Path("hero.png"), None)
    assert split_reference(r"C:\refs\hero.png") == (Path(r"C:\refs\hero.png"), None)
    assert split_reference(r"C:\refs\hero.png:0.5") == (Path(r"C:\refs\hero.png"), 0.5)
    odd = tmp_path / "a:2"
    odd.write_bytes(b"")
    assert split_reference(str(odd)) == (odd, None)  # an existing file wins
    with pytest.raises(Exception, match="positive"):
        split_reference("hero.png:0")


def test_panels_file_with_per_panel_references_and_palettes(tmp_path):
    ink = two_panel_page().astype(np.float32) / 255.0
    Image.fromarray(solid((200, 40, 40))).save(tmp_path / "red.png")
    (tmp_path / "blue.json").write_text(json.dumps(palette_from_image(solid((40, 60, 200)), "Blue").to_json()))
    spec = {"width": 300, "height": 200, "panels": [
        {"polygon": SQUARE, "references": ["red.png"], "reference_weights": [2]},
        {"polygon": [[160, 10], [290, 10], [290, 190]], "palettes": ["blue.json", red_palette_json()]},
        {"polygon": [[0, 0], [300, 0], [300, 5]]},
    ]}
    path = tmp_path / "panels.json"
    path.write_text(json.dumps(spec))
    panels = load_panels(str(path), ink)
    assert panels[0].colours.weights == (2,) and panels[0].colours.references[0].shape == (32, 32, 3)
    assert [p.name for p in panels[1].colours.palettes] == ["Blue", "Red"]
    assert panels[2].colours is None
    for bad, words in (
        ({**spec, "width": 301}, "for a 301x200 page"),
        ({**spec, "panels": [{"polygon": SQUARE, "references": ["missing.png"]}]}, "not found"),
        ({**spec, "panels": [{"polygon": SQUARE, "palettes": ["missing.json"]}]}, "not found"),
        ({**spec, "panels": [{"polygon": SQUARE, "references": ["red.png"], "reference_weights": [0]}]}, "positive"),
    ):
        path.write_text(json.dumps(bad))
        with pytest.raises((RequestError, ImageError), match=words):
            load_panels(str(path), ink)
    with pytest.raises(RequestError, match="not found"):
        load_panels(str(tmp_path / "nope.json"), ink)


def test_palette_save_cli(tmp_path, capsys):
    from backend.__main__ import main

    img = np.zeros((40, 60, 3), np.uint8)
    img[:, :40] = (200, 40, 40)
    img[:, 40:] = (40, 60, 200)
    Image.fromarray(img).save(tmp_path / "page.png")
    mask = np.zeros((40, 60), np.uint8)
    mask[:, 45:] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "coat.json"
    assert main(["palette", "save", "Coat", "--from", str(tmp_path / "page.png"), "--mask", str(tmp_path / "mask.png"), "-o", str(out)]) == 0
    pal = palette_from_json(json.loads(out.read_text()))
    assert pal.source == "selection" and [tuple(s) for s in pal.swatches] == [(40, 60, 200)]
    hints = np.zeros((40, 60, 4), np.uint8)
    hints[1:4, 1:4] = (10, 200, 10, 255)
    Image.fromarray(hints).save(tmp_path / "hints.png")
    assert main(["palette", "save", "Leaf", "--hints", str(tmp_path / "hints.png"), "-o", str(tmp_path / "leaf.json")]) == 0
    assert main(["palette", "save", "X", "--hints", str(tmp_path / "missing.png"), "-o", str(tmp_path / "x.json")]) == 2
    assert "error:" in capsys.readouterr().err


def test_panels_cli(tmp_path, capsys):
    from backend.__main__ import main

    Image.fromarray(two_panel_page()).save(tmp_path / "page.png")
    assert main(["panels", str(tmp_path / "page.png"), "--json", "--order", "ltr"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["width"] == 300 and len(data["panels"]) == 2


def test_frames_body_carries_panel_references_as_blobs(client, capture):
    """The frames transport (issue 15): a panel's references travel as 'panel_reference' blobs named
    by index in panels[i].reference_blobs, and reach the request decoded like JSON references."""
    from krita_mangacolor import frames as plugin_frames

    ink = two_panel_page()
    h, w = ink.shape
    yellow = np.zeros((16, 16, 4), np.uint8)
    yellow[...] = (40, 200, 220, 255)  # BGRA of (220, 200, 40)
    body = plugin_frames.encode(
        {"panels": [{"polygon": SQUARE, "reference_blobs": [1], "reference_weights": [2]},
                    {"polygon": [[160, 10], [290, 10], [290, 190]], "palettes": [red_palette_json()]}]},
        [plugin_frames.Frame("ink", "gray8", w, h, ink.tobytes()),
         plugin_frames.Frame("panel_reference", "bgra8", 16, 16, yellow.tobytes())],
    )
    r = client.post("/v1/jobs", content=body, headers={**AUTH, "Content-Type": "application/x-mangacolor-frames"})
    assert r.status_code == 202, r.text
    for _ in range(100):
        if capture.requests:
            break
        time.sleep(0.05)
    req = capture.requests[-1]
    own = req.panels[0].colours
    assert own.weights == (2,) and tuple(own.references[0][0, 0]) == (220, 200, 40)
    assert req.panels[1].colours.palettes[0].name == "Red" and req.panels[1].colours.references == ()
