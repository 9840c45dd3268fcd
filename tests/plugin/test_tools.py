"""The hint-layer helper and the export of hints to Krita 5.2's Colorize Mask, on the mock Krita."""

import pytest

import mock_krita
from helpers import BLUE, RED, make_page, names
from krita_mangacolor import roles, tools
from krita_mangacolor.errors import UserError


def test_new_hint_layer_above_the_ink_active_with_a_hint_brush(krita):
    doc, ink, _ = make_page(krita, hints=False)
    doc.add_layer("Text")  # a layer above the ink: the hints go directly above the ink, beneath it
    root = doc.rootNode()
    view = krita.activeWindow().activeView()
    r = tools.new_hint_layer(krita, mock_krita)
    assert r.created and r.layer_name == "Hints"
    assert names(root) == ["Background", "Ink", "Hints", "Text"]
    assert doc.activeNode().name() == "Hints"
    assert view.preset == "b) Basic-5 Size" and view.brush_size == 3.0 and view.opacity == 1.0 and view.blending == "normal"
    assert view.fg.rgb == tools.HINT_COLOR  # black is useless as a hint colour
    assert "Hint layer 'Hints' created above 'Ink'" in r.message
    # again: found, not created twice; a colourful foreground colour is kept
    view.fg = mock_krita.ManagedColor.fromQColor(__import__("krita_mangacolor.qt", fromlist=["QColor"]).QColor(20, 200, 60))
    doc.setActiveNode(ink)
    r = tools.new_hint_layer(krita, mock_krita)
    assert not r.created and names(root).count("Hints") == 1 and doc.activeNode().name() == "Hints"
    assert view.fg.rgb == (20, 200, 60)


def test_new_hint_layer_in_a_gray_document_is_rgb(krita):
    doc, ink, _ = make_page(krita, model="GRAYA", hints=False)
    tools.new_hint_layer(krita, mock_krita)
    hints = doc.nodeByName("Hints")
    assert hints.colorModel() == "RGBA"


def test_new_hint_layer_uses_the_chosen_ink(krita):
    doc, ink, _ = make_page(krita, hints=False)
    pencils = doc.add_layer("Pencils")
    roles.set_choice(doc, "ink", roles.Choice.layer(pencils))
    doc.add_layer("Top")
    tools.new_hint_layer(krita, mock_krita)
    assert names(doc.rootNode()) == ["Background", "Ink", "Pencils", "Hints", "Top"]


def test_no_document(krita):
    with pytest.raises(UserError, match="No document"):
        tools.new_hint_layer(krita, mock_krita)


def test_hint_strokes_group_pixels_by_colour():
    w, h = 6, 4
    px = bytearray(w * h * 4)

    def put(x, y, bgra):
        px[(y * w + x) * 4 : (y * w + x) * 4 + 4] = bytes(bgra)

    put(1, 1, RED)
    put(2, 1, RED)
    put(5, 3, RED)
    put(0, 3, BLUE)
    put(4, 0, (0, 255, 0, 60))  # faint: not a hint
    strokes, left_out = tools.hint_strokes(bytes(px), w, h)
    assert left_out == 0 and [s.rgb for s in strokes] == [(255, 0, 0), (0, 0, 255)]
    red = strokes[0]
    assert (red.x, red.y, red.width, red.height, red.pixels) == (1, 1, 5, 3, 3)
    assert red.alpha[0] == 255 and red.alpha[1] == 255 and red.alpha[-1] == 255 and red.alpha.count(255) == 3
    strokes, left_out = tools.hint_strokes(bytes(px), w, h, max_colors=1)
    assert len(strokes) == 1 and left_out == 1


def test_colorize_mask_needs_krita_5_2(krita):
    make_page(krita)
    ok, why = tools.colorize_mask_support(mock_krita, krita)
    assert not ok and "Needs Krita 5.2 or newer" in why and "5.1.5" in why
    with pytest.raises(UserError, match="Needs Krita 5.2"):
        tools.export_to_colorize_mask(krita, mock_krita)


def test_hints_exported_to_a_colorize_mask(krita):
    mock_krita.enable_colorize_mask(True)
    doc, ink, hint = make_page(krita)  # red dot at (5,5) 2x2, blue at (20,15) 2x2
    assert tools.colorize_mask_support(mock_krita, krita) == (True, "")
    before = bytes(ink.pixelData(0, 0, 40, 30))
    r = tools.export_to_colorize_mask(krita, mock_krita)
    assert r.colors == 2 and r.left_out == 0 and "2 hint colours" in r.message
    masks = ink.childNodes()
    assert len(masks) == 1 and masks[0].type() == "colorizemask" and masks[0].name() == tools.COLORIZE_MASK_NAME
    mask = masks[0]
    colors = mask.keyStrokesColors()
    assert sorted(c.rgb for c in colors) == [(0, 0, 255), (255, 0, 0)]
    red = next(c for c in colors if c.rgb == (255, 0, 0))
    data = mask.keyStrokePixelData(red, 0, 0, 40, 30)
    assert data[5 * 40 + 5] == 255 and data[6 * 40 + 6] == 255 and data.count(255) == 4
    assert bytes(ink.pixelData(0, 0, 40, 30)) == before  # the ink itself is untouched
    assert mask._d.edit_key_strokes and doc.activeNode().name() == tools.COLORIZE_MASK_NAME


def test_export_without_hints(krita):
    mock_krita.enable_colorize_mask(True)
    make_page(krita, hints=False)
    with pytest.raises(UserError, match="No hint layer"):
        tools.export_to_colorize_mask(krita, mock_krita)


def test_version_parsing():
    class App:
        def __init__(self, v):
            self.v = v

        def version(self):
            return self.v

    assert tools.krita_version(App("5.2.0-prealpha")) == (5, 2, 0)
    assert tools.krita_version(App("5.1.5")) == (5, 1, 5)
    assert tools.krita_version(App("garbage")) == (0,)
