"""Layer finding, inputs, placement and the result layer, on the mock Krita."""

import base64
import io

import pytest
from PIL import Image

from helpers import BLUE, RED, apply, collect_inputs, fill, make_page, names, snapshot
from krita_mangacolor import layers, pixels
from krita_mangacolor.errors import UserError
from krita_mangacolor.geometry import Rect, work_region
from krita_mangacolor.result_layer import Placement, Sibling, plan_placement


def png(text):
    return Image.open(io.BytesIO(base64.b64decode(text)))


def color_result(w, h, bgra=(60, 120, 180, 255)):
    return bytes(bgra) * (w * h)


# --- pure decisions ---


def test_plan_placement():
    P, L, O = "paintlayer", Sibling("Paper", "paintlayer", "normal"), Sibling("MangaColor", "paintlayer", "normal")
    OM = Sibling("MangaColor", "paintlayer", "multiply")
    ink = Sibling("Ink", P, "normal")
    assert plan_placement([L, ink], 1) == Placement("beneath", anchor=0)
    # re-run: the old result beneath the ink goes first, the new one is anchored on the layer below it
    assert plan_placement([L, O, ink], 2) == Placement("replace", anchor=0, old=1)
    # ...unless the old result is the lowest child: then the new one is added above it first
    assert plan_placement([O, ink], 1) == Placement("replace", anchor=None, old=0)
    # the ink is the lowest layer: the result goes above it and multiplies
    assert plan_placement([ink, L], 0) == Placement("above", anchor=0)
    assert plan_placement([ink], 0).result_multiplies
    assert plan_placement([ink, OM, L], 0) == Placement("replace_above", anchor=0, old=1)
    assert plan_placement([ink, O], 0) == Placement("above", anchor=0)  # a normal layer above is the user's
    # a group (or a renamed layer) named like ours is not ours
    assert plan_placement([Sibling("MangaColor", "grouplayer", "normal"), ink], 1) == Placement("beneath", anchor=0)
    # an own layer elsewhere in the stack is not replaced: another ink may own it
    assert plan_placement([O, L, ink], 2) == Placement("beneath", anchor=1)
    assert plan_placement([Sibling("Paper", P), Sibling("Ink", P)], 1) == Placement("beneath", anchor=0)  # no blending known
    with pytest.raises(ValueError):
        plan_placement([L], 3)


def test_work_region():
    assert work_region(40, 30, None) == Rect(0, 0, 40, 30)
    assert work_region(40, 30, Rect(30, 20, 20, 20)) == Rect(30, 20, 10, 10)
    with pytest.raises(UserError, match="selection is empty or lies outside"):
        work_region(40, 30, Rect(50, 50, 5, 5))
    with pytest.raises(UserError, match="empty"):
        work_region(0, 0, None)


# --- finding layers ---


def test_find_layer_top_most_first_and_nested(krita):
    doc, ink, hint = make_page(krita)
    group = doc.add_layer("Group", "grouplayer")
    nested = doc.add_layer("Hints", parent=group)
    found = layers.find_layer(doc, "Hints")
    assert found == nested  # the group is above the first Hints layer
    assert layers.find_layer(doc, "Hints", exclude=(nested,)) == hint
    assert layers.find_layer(doc, "hints") is None  # case-sensitive
    assert layers.find_layer(doc, "") is None


def test_defaults_hints_and_reference(krita):
    doc, ink, hint = make_page(krita)
    ref = doc.add_layer("Reference")
    fill(ref, 0, 0, 10, 10, RED)
    inputs = collect_inputs(krita)
    assert inputs.target.ink_id == ink.uniqueId() and inputs.hint_name == "Hints" and inputs.reference_name == "Reference"
    assert inputs.target.region == Rect(0, 0, 40, 30) and inputs.target.mask is None
    ink_png = png(inputs.request.ink)
    assert ink_png.mode == "L" and ink_png.size == (40, 30)
    assert ink_png.getpixel((2, 2)) == 0 and ink_png.getpixel((10, 10)) == 255  # transparent = paper
    hints_png = png(inputs.request.hints)
    assert hints_png.mode == "RGBA" and hints_png.size == (40, 30)
    assert hints_png.getpixel((5, 5)) == (255, 0, 0, 255) and hints_png.getpixel((20, 15)) == (0, 0, 255, 255)
    assert hints_png.getpixel((0, 0))[3] == 0
    ref_png = png(inputs.request.references[0])
    assert ref_png.size == (10, 10) and ref_png.convert("RGB").getpixel((3, 3)) == (255, 0, 0)
    assert inputs.notes == []


def test_other_layer_names_from_settings(krita):
    doc, ink, hint = make_page(krita)
    hint.setName("Colours")
    inputs = collect_inputs(krita, hint_name="Colours")
    assert inputs.hint_name == "Colours" and inputs.request.hints


def test_missing_hint_layer_is_a_note(krita):
    make_page(krita, hints=False)
    inputs = collect_inputs(krita)
    assert inputs.request.hints is None
    assert "no hint layer named 'Hints': colorizing without hints" in inputs.notes


def test_empty_hint_layer_is_fine(krita):
    doc, ink, hint = make_page(krita, hints=False)
    doc.add_layer("Hints")
    inputs = collect_inputs(krita)
    assert inputs.request.hints is None
    assert any("hint layer 'Hints' is empty" in n for n in inputs.notes)


def test_hint_content_anywhere_in_document_coordinates(krita):
    doc, ink, hint = make_page(krita)
    fill(hint, 38, 28, 5, 5, RED)  # partly outside the canvas: clipped, the rest kept
    inputs = collect_inputs(krita)
    assert png(inputs.request.hints).getpixel((39, 29)) == (255, 0, 0, 255)


def test_hint_group_uses_rendering_with_a_note(krita):
    doc, ink, _ = make_page(krita, hints=False)
    group = doc.add_layer("Hints", "grouplayer")
    group._d.rendering[(3 * 40 + 4) * 4 : (3 * 40 + 4) * 4 + 4] = bytes(BLUE)
    inputs = collect_inputs(krita)
    assert "the hint layer 'Hints' is a group layer: using its rendered pixels" in inputs.notes
    assert png(inputs.request.hints).getpixel((4, 3)) == (0, 0, 255, 255)


@pytest.mark.parametrize("kind,words", [("filterlayer", "holds no pixels"), ("transparencymask", "not a layer")])
def test_hint_of_wrong_type_is_refused(krita, kind, words):
    doc, ink, _ = make_page(krita, hints=False)
    doc.add_layer("Hints", kind)
    with pytest.raises(UserError, match=words):
        collect_inputs(krita)


def test_no_document(krita):
    with pytest.raises(UserError, match="No document is open"):
        collect_inputs(krita)


def scan_page(krita, **kw):
    """A page whose line layer has no ink-like name: the active layer decides."""
    doc, ink, hint = make_page(krita, **kw)
    ink.setName("Scan")
    doc.log.clear()
    return doc, ink, hint


def test_no_active_layer(krita):
    doc, ink, hint = scan_page(krita)
    doc.setActiveNode(None)
    with pytest.raises(UserError, match="No active layer"):
        collect_inputs(krita)


def test_hint_layer_active_is_refused(krita):
    doc, ink, hint = scan_page(krita)
    doc.setActiveNode(hint)
    with pytest.raises(UserError, match="is the hint layer 'Hints': select the ink"):
        collect_inputs(krita)


def test_own_result_layer_active_means_the_ink_above_it(krita):
    doc, ink, hint = scan_page(krita)
    inputs = collect_inputs(krita)
    apply(krita, inputs, color_result(40, 30), 40, 30)
    own = [n for n in doc.rootNode().childNodes() if n.name() == "MangaColor"][0]
    doc.setActiveNode(own)  # e.g. Krita activated it, or the user clicked it
    inputs = collect_inputs(krita)
    assert inputs.target.ink_id == ink.uniqueId()
    assert "the active layer is MangaColor's result layer: colorizing the ink layer 'Scan' above it" in inputs.notes
    assert apply(krita, inputs, color_result(40, 30), 40, 30).replaced
    assert names(doc.rootNode()) == ["Background", "Hints", "MangaColor", "Scan"]


def test_own_result_layer_on_top_is_refused(krita):
    doc, ink, hint = scan_page(krita)
    own = doc.add_layer("MangaColor")
    doc.setActiveNode(own)
    with pytest.raises(UserError, match="own result layer"):
        collect_inputs(krita)


def test_mask_active_is_refused(krita):
    doc, ink, hint = scan_page(krita)
    mask = doc.add_layer("Transparency Mask", "transparencymask", parent=ink)
    doc.setActiveNode(mask)
    with pytest.raises(UserError, match="transparency mask: select the ink"):
        collect_inputs(krita)


def test_empty_ink_is_refused(krita):
    doc = krita.createDocument(20, 20, "p", "RGBA", "U8")
    empty = doc.add_layer("Lines")
    doc.setActiveNode(empty)
    krita.setActiveDocument(doc)
    with pytest.raises(UserError, match="The ink layer 'Lines' is empty"):
        collect_inputs(krita)


def test_float_document_is_refused(krita):
    doc = krita.createDocument(8, 8, "p", "RGBA", "F32")
    krita.setActiveDocument(doc)
    with pytest.raises(UserError, match="32-bit float.*Convert Image Color Space"):
        collect_inputs(krita)


def test_selection_crops_and_masks(krita):
    doc, ink, hint = make_page(krita)
    sel = __import__("mock_krita").Selection(doc)
    sel.select(1, 1, 10, 6, 255)
    sel.select(1, 1, 2, 2, 0)  # a notch: the bounding box stays, the mask shows it
    doc.setSelection(sel)
    inputs = collect_inputs(krita)
    assert inputs.target.region == Rect(1, 1, 10, 6)
    assert png(inputs.request.ink).size == (10, 6) and png(inputs.request.hints).size == (10, 6)
    assert png(inputs.request.ink).getpixel((1, 1)) == 0  # the frame's corner at (2,2)
    assert png(inputs.request.hints).getpixel((4, 4)) == (255, 0, 0, 255)  # hint at (5,5) in page coordinates
    assert inputs.target.mask is not None and inputs.target.mask[0] == 0 and inputs.target.mask[-1] == 255


def test_full_rectangular_selection_needs_no_mask(krita):
    doc, ink, hint = make_page(krita)
    sel = __import__("mock_krita").Selection(doc)
    sel.select(0, 0, 40, 30, 255)
    doc.setSelection(sel)
    assert collect_inputs(krita).target.mask is None


def test_selection_outside_ink_content(krita):
    doc, ink, hint = make_page(krita)
    sel = __import__("mock_krita").Selection(doc)
    sel.select(10, 10, 3, 3, 255)  # inside the frame: no ink there
    doc.setSelection(sel)
    with pytest.raises(UserError, match="empty in the selected area"):
        collect_inputs(krita)


def test_reading_changes_nothing(krita):
    doc, ink, hint = make_page(krita)
    before = snapshot(doc)
    collect_inputs(krita)
    assert snapshot(doc) == before and doc.log == []


# --- writing the result ---


def test_result_goes_directly_beneath_ink_and_ink_multiplies(krita):
    doc, ink, hint = make_page(krita)
    before = snapshot(doc)
    inputs = collect_inputs(krita)
    applied = apply(krita, inputs, color_result(40, 30), 40, 30)
    assert names(doc.rootNode()) == ["Background", "Hints", "MangaColor", "Ink"]
    assert not applied.replaced and not applied.above and applied.placement == "beneath"
    assert doc.refreshes == 0  # no Document.refreshProjection: in Krita 5.1 it re-renders the whole page on the GUI thread
    assert applied.undo_steps == 2  # Composition Mode Change (the ink), Add Layer
    after = snapshot(doc)
    new = [uid for uid in after if uid not in before]
    assert len(new) == 1 and after[new[0]]["name"] == "MangaColor" and after[new[0]]["blending"] == "normal"
    assert after[new[0]]["pixels"][:4] == bytes([60, 120, 180, 255])
    for uid, state in before.items():  # the user's layers: identical, except the ink's blending mode
        expected = dict(state, blending="multiply") if uid == ink.uniqueId() else state
        assert after[uid] == expected
    assert ("setPixelData", "Ink") not in doc.log and ("setPixelData", "Hints") not in doc.log


def test_colorize_again_replaces_own_layer_in_place(krita):
    doc, ink, hint = make_page(krita)
    inputs = collect_inputs(krita)
    apply(krita, inputs, color_result(40, 30), 40, 30)
    first = [n for n in doc.rootNode().childNodes() if n.name() == "MangaColor"][0]
    before = snapshot(doc)
    doc.log.clear()
    inputs = collect_inputs(krita)
    applied = apply(krita, inputs, color_result(40, 30, (1, 2, 3, 255)), 40, 30)
    assert applied.replaced
    assert names(doc.rootNode()) == ["Background", "Hints", "MangaColor", "Ink"]
    after = snapshot(doc)
    assert first.uniqueId() not in after
    # the old one removed first, then the new one added at its place: the last undo step is "Add Layer"
    assert [e for e in doc.log if e[0] in ("addChildNode", "remove")] == [("remove", "MangaColor"), ("addChildNode", "MangaColor")]
    assert applied.undo_steps == 2 and not any(e[0].startswith("setBlendingMode") for e in doc.log)
    for uid, state in before.items():
        if uid != first.uniqueId():
            assert after[uid] == state


def test_ink_lowest_in_its_group_gets_a_multiplying_result_above_and_is_not_touched(krita):
    doc, ink, _ = make_page(krita, hints=False, ink_on_bottom=True)  # the scanned-page case
    before = snapshot(doc)
    inputs = collect_inputs(krita)
    applied = apply(krita, inputs, color_result(40, 30), 40, 30)
    assert applied.placement == "above" and applied.above and applied.undo_steps == 1
    assert names(doc.rootNode()) == ["Ink", "MangaColor"]
    result = doc.rootNode().childNodes()[1]
    assert result.blendingMode() == "multiply"
    after = snapshot(doc)
    assert after[ink.uniqueId()] == before[ink.uniqueId()]  # not even its blending mode changed
    assert [e for e in doc.log if e[1] == "Ink"] == []
    # and again: the old multiplying result above the ink is replaced
    doc.log.clear()
    inputs = collect_inputs(krita)
    applied = apply(krita, inputs, color_result(40, 30, (1, 2, 3, 255)), 40, 30)
    assert applied.replaced and applied.placement == "replace_above" and applied.undo_steps == 2
    assert names(doc.rootNode()) == ["Ink", "MangaColor"]
    assert bytes(doc.rootNode().childNodes()[1].pixelData(0, 0, 1, 1)) == bytes([1, 2, 3, 255])
    # the active layer being that result means the ink BELOW it
    doc.setActiveNode(doc.rootNode().childNodes()[1])
    ink.setName("Scan")
    inputs = collect_inputs(krita)
    assert inputs.target.ink_name == "Scan" and any("below it" in n for n in inputs.notes)


def test_one_undo_removes_the_new_result_and_all_steps_restore_the_page(krita):
    """Mirrors Krita 5.1 (each libkis call is one undo step): checked for real in tests/krita_e2e."""
    doc, ink, hint = make_page(krita)
    start = snapshot(doc)
    depth = len(doc.undo_stack)
    first = apply(krita, collect_inputs(krita), color_result(40, 30), 40, 30)
    assert doc.undo() == "Add Layer"
    assert names(doc.rootNode()) == ["Background", "Hints", "Ink"]
    while len(doc.undo_stack) > depth:
        doc.undo()
    assert snapshot(doc) == start and first.undo_steps == 2
    # re-run on top of a first result: one undo = no colour layer, two = the first result back
    apply(krita, collect_inputs(krita), color_result(40, 30), 40, 30)
    mid = snapshot(doc)
    depth = len(doc.undo_stack)
    again = apply(krita, collect_inputs(krita), color_result(40, 30, (9, 9, 9, 255)), 40, 30)
    assert again.undo_steps == 2
    assert doc.undo() == "Add Layer" and "MangaColor" not in names(doc.rootNode())
    assert doc.undo() == "Remove Layer"
    assert len(doc.undo_stack) == depth and snapshot(doc) == mid


def test_ink_inside_a_group(krita):
    doc, ink, hint = make_page(krita)
    group = doc.add_layer("Page 1", "grouplayer")
    paper = doc.add_layer("Paper", parent=group)
    inner = doc.add_layer("Lines", parent=group)
    fill(inner, 1, 1, 5, 1)
    doc.setActiveNode(inner)
    inputs = collect_inputs(krita)
    apply(krita, inputs, color_result(40, 30), 40, 30)
    assert names(group) == ["Paper", "MangaColor", "Lines"]
    assert names(doc.rootNode()) == ["Background", "Hints", "Ink", "Page 1"]
    assert paper.blendingMode() == "normal"


def test_selection_makes_outside_transparent(krita):
    doc, ink, hint = make_page(krita)
    sel = __import__("mock_krita").Selection(doc)
    sel.select(2, 2, 10, 10, 255)
    sel.select(2, 2, 3, 3, 0)
    doc.setSelection(sel)
    inputs = collect_inputs(krita)
    assert inputs.target.region == Rect(2, 2, 10, 10)
    apply(krita, inputs, color_result(10, 10), 10, 10)
    layer = [n for n in doc.rootNode().childNodes() if n.name() == "MangaColor"][0]
    px = lambda x, y: bytes(layer.pixelData(x, y, 1, 1))  # noqa: E731
    assert px(8, 8) == bytes([60, 120, 180, 255])  # selected
    assert px(3, 3)[3] == 0  # in the box but not selected
    assert px(20, 20)[3] == 0 and px(0, 0)[3] == 0  # outside the box


def test_gray_document_gets_an_rgb_result_layer(krita):
    doc, ink, hint = make_page(krita, model="GRAYA")
    inputs = collect_inputs(krita)
    assert png(inputs.request.hints).getpixel((5, 5)) == (255, 0, 0, 255)  # RGB hint layer in a gray doc
    applied = apply(krita, inputs, color_result(40, 30), 40, 30)
    layer = [n for n in doc.rootNode().childNodes() if n.name() == "MangaColor"][0]
    assert (layer.colorModel(), layer.colorDepth()) == ("RGBA", "U8")
    assert bytes(layer.pixelData(0, 0, 1, 1)) == bytes([60, 120, 180, 255])
    assert any("grayscale" in n for n in applied.notes)


def test_gray_hint_layer_note(krita):
    doc, ink, _ = make_page(krita, model="GRAYA", hints=False)
    hint = doc.add_layer("Hints")
    fill(hint, 1, 1, 2, 2, (128, 128, 128, 255))
    inputs = collect_inputs(krita)
    assert any("grayscale, so its hints carry no colour" in n for n in inputs.notes)


def test_16_bit_document(krita):
    doc, ink, hint = make_page(krita, depth="U16")
    inputs = collect_inputs(krita)
    assert png(inputs.request.ink).getpixel((2, 2)) == 0
    apply(krita, inputs, color_result(40, 30), 40, 30)
    layer = [n for n in doc.rootNode().childNodes() if n.name() == "MangaColor"][0]
    assert layer.colorDepth() == "U16"
    assert pixels.to_bgra8(bytes(layer.pixelData(0, 0, 1, 1)), "RGBA", "U16") == bytes([60, 120, 180, 255])
    assert bytes(layer.pixelData(0, 0, 1, 1))[:2] == bytes([60, 60])  # 60 * 257


def test_apply_refuses_stale_or_wrong_results(krita):
    doc, ink, hint = make_page(krita)
    inputs = collect_inputs(krita)
    with pytest.raises(UserError, match="returned a 20x30 result for a 40x30 area"):
        apply(krita, inputs, color_result(20, 30), 20, 30)
    ink.remove()
    with pytest.raises(UserError, match="was deleted while colorizing"):
        apply(krita, inputs, color_result(40, 30), 40, 30)
    krita.closeDocument(doc)
    with pytest.raises(UserError, match="document was closed"):
        apply(krita, inputs, color_result(40, 30), 40, 30)
    assert "MangaColor" not in names(doc.rootNode())
