"""Detect panels, the palette library and per-panel colours through the docker, over real Qt networking
against the fake backend (tests/plugin/fake_backend.py + fake_panels.py)."""

from __future__ import annotations

import json

from conftest import wait_until
from fake_backend import FakeBackend
from helpers import RED, fill, make_page
from krita_mangacolor import palette_library, panel_choices, panels_layer, panels_model
from krita_mangacolor.widgets import MangaColorWidget
from krita_mangacolor.roles import node_uid
from mock_krita import Selection
from test_model import backend, make_model, run, write_token  # noqa: F401  (the fixture)


def jobs_bodies(backend):
    return [b for m, p, b in backend.requests if m == "POST" and p == "/v1/jobs"]


def wait_pm(pm):
    wait_until(lambda: not pm.busy, 15, "the panels model")
    return pm.ok, pm.status


def test_detect_panels_writes_the_panel_layer(krita, backend):
    doc, ink, _ = make_page(krita, 80, 60)
    mdl, _ = make_model(krita, backend.url)
    pm = panels_model.PanelsModel(mdl)
    pm.detect_panels(doc, "rtl")
    ok, status = wait_pm(pm)
    assert ok, status
    assert "2 panels" in status
    sent = [b for m, p, b in backend.requests if p == "/v1/panels"][0]
    assert sent["order"] == "rtl" and sent["page"]
    panels = panels_layer.read_panels(doc)
    assert [p.name for p in panels] == ["Panel 1", "Panel 2"]
    assert panels[0].box == (41, 3, 77, 57) and panels[1].box == (3, 3, 39, 57)
    assert doc.activeNode().name() == "Ink"  # the colorist's active layer stays


def test_page_without_panels_or_palettes_sends_todays_body(krita, backend):
    make_page(krita)
    mdl, results = make_model(krita, backend.url)
    ok, message = run(mdl, results)
    assert ok, message
    (body,) = jobs_bodies(backend)
    assert set(body) == {"ink", "hints", "references", "options"}


def test_palette_for_one_panel_reaches_that_panel(krita, backend):
    doc, ink, hints = make_page(krita, 80, 60)
    skin = doc.add_layer("Skin ref")
    fill(skin, 0, 0, 10, 10, (40, 90, 230, 255))  # BGRA: an orange
    mdl, results = make_model(krita, backend.url)
    pm = panels_model.PanelsModel(mdl)
    pm.detect_panels(doc)
    assert wait_pm(pm)[0]
    pm.save_palette("Orange", "reference", doc, node_uid(skin))
    ok, status = wait_pm(pm)
    assert ok, status
    assert palette_library.names(doc) == ["Orange"]
    assert palette_library.swatch_colours(palette_library.get(doc, "Orange"))[0] == (224, 88, 40)
    pm.set_panel_choice(doc, "Panel 2", panel_choices.PanelChoice.palette("Orange"))
    doc.setActiveNode(ink)
    ok, message = run(mdl, results)
    assert ok, message
    body = jobs_bodies(backend)[-1]
    assert "palettes" not in body and len(body["panels"]) == 2
    assert "palettes" not in body["panels"][0] and body["panels"][1]["palettes"][0]["name"] == "Orange"
    assert body["panels"][1]["polygon"] == [[3, 3], [39, 3], [39, 57], [3, 57]]
    layer = next(n for n in doc.rootNode().childNodes() if n.name() == "MangaColor")
    assert bytes(layer.pixelData(20, 30, 1, 1)) == bytes([40, 88, 224, 255])  # inside Panel 2: the palette
    assert bytes(layer.pixelData(60, 30, 1, 1)) != bytes([40, 88, 224, 255])  # Panel 1: the page's colours


def test_references_group_weights_and_page_palettes(krita, backend):
    doc, ink, _ = make_page(krita, 40, 30)
    group = doc.add_layer("References", "grouplayer")
    a = doc.add_layer("Sky", parent=group)
    b = doc.add_layer("Hair", parent=group)
    hidden = doc.add_layer("Old", parent=group)
    for n in (a, b, hidden):
        fill(n, 0, 0, 5, 5, RED)
    b.setOpacity(128)
    hidden.setVisible(False)
    palette_library.add(doc, json.loads(json.dumps(_palette("Pinoko"))))
    panel_choices.set_page_palettes(doc, ["Pinoko", "Gone"])
    doc.setActiveNode(ink)
    mdl, results = make_model(krita, backend.url)
    ok, message = run(mdl, results)
    assert ok, message
    body = jobs_bodies(backend)[-1]
    assert len(body["references"]) == 2 and body["reference_weights"] == [128 / 255, 1.0]
    assert [p["name"] for p in body["palettes"]] == ["Pinoko"] and "panels" not in body
    assert any("'Gone'" in n for n in mdl.notes)


def _palette(name):
    hist = [0.0] * 216
    hist[5] = 1.0
    return {"format": "mangacolor-palette", "version": 1, "name": name, "source": "hints",
            "swatches": [{"rgb": "#10a040", "share": 1.0}], "histogram": hist}


def test_docker_box_selection_picks_panel_and_stores_choices(krita, backend, tmp_path):
    doc, ink, _ = make_page(krita, 80, 60)
    mdl, results = make_model(krita, backend.url)
    w = MangaColorWidget(mdl, doc_provider=lambda: doc)
    box = w.panels
    box.detect_button.click()
    wait_pm(box.pm)
    box.refresh(force=True)
    assert [box.panel_combo.itemText(i) for i in range(box.panel_combo.count())] == ["Panel 1", "Panel 2"]
    sel = Selection(doc)
    sel.select(10, 10, 10, 10, 255)  # centre (15, 15): inside Panel 2 (the left one)
    doc.setSelection(sel)
    box.refresh()
    assert box.panel_combo.currentText() == "Panel 2"
    path = tmp_path / "lib.json"
    path.write_text(json.dumps(_palette("Green")))
    box.ask_path = lambda save, title: str(path)
    box.import_button.click()
    assert palette_library.names(doc) == ["Green"] and box.library.count() == 1
    i = box.choice_combo.findText("Palette: Green")
    box.choice_combo.setCurrentIndex(i)
    box.choice_combo.activated.emit(i)
    assert panel_choices.load(doc).of("Panel 2") == panel_choices.PanelChoice("palette", "Green")
    assert panel_choices.load(doc).of("Panel 1").kind == "page"
    box.library.item(0).setCheckState(2)  # ticked: the whole page
    assert panel_choices.load(doc).page_palettes == ["Green"]
    out = tmp_path / "out.json"
    box.ask_path = lambda save, title: str(out)
    box.export_button.click()
    assert json.loads(out.read_text())["name"] == "Green"
    box.library.setCurrentRow(0)
    box.delete_button.click()
    assert palette_library.names(doc) == [] and panel_choices.load(doc).panels == {}


def test_selection_sends_only_its_panels_clipped(krita, backend):
    doc, ink, _ = make_page(krita, 80, 60)
    mdl, results = make_model(krita, backend.url)
    pm = panels_model.PanelsModel(mdl)
    pm.detect_panels(doc)
    assert wait_pm(pm)[0]
    sel = Selection(doc)
    sel.select(30, 0, 20, 20, 255)  # x 30..50: the right part of Panel 2 and the left part of Panel 1
    doc.setSelection(sel)
    doc.setActiveNode(ink)
    ok, message = run(mdl, results)
    assert ok, message
    body = jobs_bodies(backend)[-1]
    polys = [p["polygon"] for p in body["panels"]]
    assert all(0 <= x <= 20 and 0 <= y <= 20 for poly in polys for x, y in poly), polys
    assert len(polys) == 2


def test_palette_from_hints_and_from_a_selection_of_the_coloured_page(krita, backend):
    doc, ink, hints = make_page(krita, 40, 30)
    mdl, results = make_model(krita, backend.url)
    pm = panels_model.PanelsModel(mdl)
    pm.save_palette("Dots", "hints", doc)
    ok, status = wait_pm(pm)
    assert ok, status
    sent = [b for m, p, b in backend.requests if p == "/v1/palettes"][-1]
    assert sent["source"] == "hints" and sent["name"] == "Dots"
    assert set(palette_library.swatch_colours(palette_library.get(doc, "Dots"))) == {(248, 0, 0), (0, 0, 248)}
    pm.save_palette("Sel", "selection", doc)  # no selection yet: says so
    ok, status = wait_pm(pm)
    assert not ok and "Select the coloured area" in status
    ok, message = run(mdl, results)  # a coloured page: the MangaColor layer
    assert ok, message
    sel = Selection(doc)
    sel.select(10, 10, 4, 4, 255)
    doc.setSelection(sel)
    pm.save_palette("Sel", "selection", doc)
    ok, status = wait_pm(pm)
    assert ok, status
    assert palette_library.swatch_colours(palette_library.get(doc, "Sel")) == [(200, 168, 136)]  # the fake's fill
    pm.save_palette("", "hints", doc)
    assert not pm.ok and "name" in pm.status


def test_reference_layer_for_one_panel(krita, backend):
    doc, ink, _ = make_page(krita, 80, 60)
    sky = doc.add_layer("Sky")
    fill(sky, 0, 0, 6, 4, (230, 160, 40, 255))
    mdl, results = make_model(krita, backend.url)
    pm = panels_model.PanelsModel(mdl)
    pm.detect_panels(doc)
    assert wait_pm(pm)[0]
    pm.set_panel_choice(doc, "Panel 1", panel_choices.PanelChoice.layer(sky))
    doc.setActiveNode(ink)
    ok, message = run(mdl, results)
    assert ok, message
    body = jobs_bodies(backend)[-1]
    assert len(body["panels"][0]["references"]) == 1 and "references" not in body["panels"][1]
    assert body["references"] == []  # the page's own references are unchanged
    sky.remove()
    ok, message = run(mdl, results)
    assert ok and any("'Sky' chosen for Panel 1 is gone" in n for n in mdl.notes), mdl.notes
