"""Issue 12's scenarios for the real-Krita test (imported by the harness's main(); Krita 5.1.5 and 5.2.9):

  panels   Detect panels (real backend) -> the 'Panels' vector layer, read back within 2 px of the backend's
           polygons; a selection inside a panel picks it in the docker; Colorize with the panels; a palette
           saved from a reference layer and chosen for ONE panel reaches that panel (fake backend: exactly its
           swatch there and nowhere else; real backend: accepted, Done, the panel's mean colour reported); save -> close -> reopen
           the .kra: the Panels layer, the palette library and the panel's choice are there.
  cmask    Krita 5.2+: Export hints to Colorize Mask -> a colorize mask on the ink, one key stroke per hint
           colour (Krita 5.1: the action is disabled, checked by 'action').
"""

from __future__ import annotations

import os
import zipfile

from krita import Krita, Selection

from . import (
    FAKE_URL, HINTS, JOB_TIMEOUT_S, PANELS, TMP, bgra_canvas, build_page, check, close, ctx, find_child, hue_deg, names,
    reopen, report, scenario, wait_for,
)  # fmt: skip


def _mean_rgb(node, box, step=6, margin=12):
    x0, y0, x1, y1 = box
    data = bytes(node.pixelData(x0, y0, x1 - x0, y1 - y0))
    w = x1 - x0
    acc, n = [0.0, 0.0, 0.0], 0
    for y in range(margin, (y1 - y0) - margin, step):
        for x in range(margin, w - margin, step):
            if any(abs(x + x0 - hx) < 12 and abs(y + y0 - hy) < 12 for hx, hy, _ in HINTS):
                continue
            i = (y * w + x) * 4
            acc[0] += data[i + 2]
            acc[1] += data[i + 1]
            acc[2] += data[i]
            n += 1
    return [round(v / max(n, 1), 1) for v in acc]


def _run(docker, label, url=None):
    real = os.environ.get("MANGACOLOR_URL", "")
    if url:
        os.environ["MANGACOLOR_URL"] = url
    try:
        text = yield from docker.run(docker.button.click, label)
    finally:
        os.environ["MANGACOLOR_URL"] = real
    return text


@scenario("panels")
def scenario_panels(docker):
    from krita_mangacolor import palette_library, panel_choices
    from krita_mangacolor.panels_layer import find_panels_layer, panel_at, read_panels

    doc = yield from build_page("mangacolor e2e panels")
    root = doc.rootNode()
    ref = doc.createNode("Orange ref", "paintlayer")
    ref.setPixelData(bytes(bgra_canvas(60, 40, (30, 130, 240, 255))), 0, 0, 60, 40)  # rgb(240, 130, 30)
    root.addChildNode(ref, find_child(root, "Background"))
    ref.setVisible(False)
    doc.setActiveNode(find_child(root, "Ink"))
    yield 0.3
    box = docker.widget.panels
    pm = box.pm
    box.refresh(force=True)
    check("panels: no Panels layer yet: the page is one", box.panel_combo.currentData() is None, box.panel_combo.currentText())

    box.detect_button.click()
    yield 0.1
    yield from wait_for(lambda: not pm.busy, JOB_TIMEOUT_S, "Detect panels")
    report["status"]["detect_panels"] = pm.status
    check("panels: Detect panels answered", pm.ok and "panels in the 'Panels' layer" in pm.status, pm.status)
    layer = find_panels_layer(doc)
    check("panels: a 'Panels' vector layer", layer is not None and layer.type() == "vectorlayer", names(root))
    if layer is None:
        return
    shapes = layer.shapes()
    check("panels: one closed shape per panel", len(shapes) == len(PANELS), [s.name() for s in shapes])
    panels = read_panels(doc)
    sent = pm.last_polygons
    report["panels"] = {"backend": sent, "read_back": [list(p.polygon) for p in panels], "svg": shapes[0].toSvg() if shapes else ""}
    err = max((abs(a - b) for p, q in zip(panels, sent) for pa, qa in zip(p.polygon, q) for a, b in zip(pa, qa)), default=99)
    check("panels: read back within 2 px of the backend's polygons", len(panels) == len(sent) and err <= 2.0, err)
    boxes = sorted(p.box for p in panels)
    want = sorted((x, y, x + w, y + h) for x, y, w, h in PANELS)
    off = max((abs(a - b) for bb, ww in zip(boxes, want) for a, b in zip(bb, ww)), default=99)
    check("panels: the four drawn panels found (within 10 px)", len(boxes) == 4 and off <= 10, (boxes, want))

    # the panel of the second hint (top right): a selection inside it picks it in the docker
    hx, hy, _ = HINTS[1]
    target = panel_at(panels, hx, hy)
    check("panels: a panel holds the top-right hint", target is not None, [p.box for p in panels])
    if target is None:
        return
    sel = Selection()
    sel.select(hx - 20, hy - 20, 30, 30, 255)
    doc.setSelection(sel)
    yield 0.3
    box.refresh()
    check("panels: a selection inside a panel picks it", box.panel_combo.currentData() == target.name,
          (box.panel_combo.currentText(), target.name))
    doc.setSelection(None)
    # no hint in that panel: its colours come from the page (then from its palette), not from a hint dot
    x0, y0, x1, y1 = target.box
    find_child(root, "Hints").setPixelData(bytes((x1 - x0) * (y1 - y0) * 4), x0, y0, x1 - x0, y1 - y0)
    yield 0.3

    text = yield from _run(docker, "panels_real_before")
    check("panels: Colorize with the Panels layer (real backend)", text.startswith("Done"), text)
    result = find_child(root, "MangaColor")
    before = _mean_rgb(result, target.box) if result is not None else None

    box.refresh(force=True)
    box.name_edit.setText("Orange")
    i = box.source.findText("Layer: Orange ref")
    check("panels: the reference layer is a palette source", i >= 0, [box.source.itemText(j) for j in range(box.source.count())])
    box.source.setCurrentIndex(max(0, i))
    box.save_button.click()
    yield 0.1
    yield from wait_for(lambda: not pm.busy, 60, "Save palette")
    check("panels: palette saved (real backend)", pm.ok and palette_library.names(doc) == ["Orange"], (pm.status, palette_library.names(doc)))
    swatches = palette_library.swatch_colours(palette_library.get(doc, "Orange") or {})
    check("panels: the palette's first colour is the layer's orange", swatches and hue_deg(swatches[0])[1] > 0.5 and abs(hue_deg(swatches[0])[0] - 28) < 15, swatches[:3])

    i = box.panel_combo.findData(target.name)
    box.panel_combo.setCurrentIndex(i)
    box.panel_combo.activated.emit(i)
    j = box.choice_combo.findText("Palette: Orange")
    box.choice_combo.setCurrentIndex(j)
    box.choice_combo.activated.emit(j)
    yield 0.2
    check("panels: the palette chosen for that panel only", panel_choices.load(doc).panels == {target.name: panel_choices.PanelChoice("palette", "Orange")},
          panel_choices.load(doc).to_json())

    if FAKE_URL:  # the fake backend paints a panel's palette exactly: proof the palette reached that panel
        text = yield from _run(docker, "panels_fake", FAKE_URL)
        result = find_child(root, "MangaColor")
        inside = bytes(result.pixelData(target.box[0] + 15, target.box[1] + 15, 1, 1)) if result else b""
        sw = swatches[0] if swatches else (0, 0, 0)
        others = [p for p in panels if p.name != target.name]
        outside = [bytes(result.pixelData(p.box[0] + 15, p.box[1] + 15, 1, 1)) for p in others] if result else []
        check("panels: the palette reached that panel and no other (fake backend)",
              text.startswith("Done") and inside == bytes([sw[2], sw[1], sw[0], 255]) and all(o != inside for o in outside),
              (text, list(inside), sw, [list(o) for o in outside]))

    text = yield from _run(docker, "panels_real_after")
    check("panels: Colorize with a palette for one panel (real backend)", text.startswith("Done"), text)
    result = find_child(root, "MangaColor")
    after = _mean_rgb(result, target.box) if result is not None else None
    report["panels"]["panel_mean_rgb"] = {"without_palette": before, "with_orange_palette": after}
    # Informative only: this page's panels hold no figures, and the real backend keeps unhinted paper white
    # whatever the palette, so the colour effect is judged by the backend's own tests and bench.
    report["panels"]["panel_changed_by_palette"] = bool(before and after and max(abs(a - b) for a, b in zip(before, after)) > 1.0)

    path = os.path.join(TMP, "panels.kra")
    if os.path.exists(path):
        os.remove(path)
    check("panels: saved", doc.saveAs(path), path)
    yield 0.3
    try:
        entries = [n for n in zipfile.ZipFile(path).namelist() if "annotations" in n]
    except Exception as exc:
        entries = [str(exc)]
    check("panels: library and choices are inside the .kra", any(n.endswith("mangacolor-palettes") for n in entries)
          and any(n.endswith("mangacolor-panels") for n in entries), entries)
    polys = [p.polygon for p in panels]
    doc = yield from reopen(doc, path, "panels")
    if doc is None:
        return
    check("panels: the Panels layer is back with the same panels", [p.polygon for p in read_panels(doc)] == polys,
          [p.polygon for p in read_panels(doc)])
    check("panels: the palette library is back", palette_library.names(doc) == ["Orange"], palette_library.names(doc))
    check("panels: the panel's palette is back", panel_choices.load(doc).of(target.name).name == "Orange", panel_choices.load(doc).to_json())
    box.refresh(force=True)
    listed = [box.library.item(j).text() for j in range(box.library.count())]
    check("panels: the docker lists them after reopening", listed == ["Orange"] and box.panel_combo.count() == len(polys),
          (listed, box.panel_combo.count()))
    ctx["panels_doc"] = doc


@scenario("cmask")
def scenario_colorize_mask(docker):
    k = Krita.instance()
    action = ctx.get("actions", {}).get("mangacolor_export_colorize_mask") or next(
        (a for a in k.actions() if a.objectName() == "mangacolor_export_colorize_mask"), None)
    doc = yield from build_page("mangacolor e2e colorize mask")
    if not hasattr(__import__("krita"), "ColorizeMask"):
        # Krita 5.1 has no Colorize Mask API. Krita re-enables script actions once a document is open (so the
        # action's disabled state does not stick there): the docker's button stays disabled, and the action
        # says why and adds nothing.
        button = docker.widget.export_mask_button
        check("cmask: Krita 5.1: the docker's button is disabled", not button.isEnabled(), button.toolTip())
        action.trigger()
        yield 0.5
        ink = find_child(doc.rootNode(), "Ink")
        check("cmask: Krita 5.1: the action says it needs Krita 5.2 and adds nothing",
              "Needs Krita 5.2" in docker.status.text() and not [n for n in ink.childNodes() if n.type() == "colorizemask"],
              docker.status.text())
        close(doc)
        return
    check("cmask: the action is enabled in Krita 5.2+", action is not None and action.isEnabled(), action and action.toolTip())
    action.trigger()
    yield 1.0
    ink = find_child(doc.rootNode(), "Ink")
    masks = [n for n in ink.childNodes() if n.type() == "colorizemask"] if ink is not None else []
    check("cmask: a colorize mask on the ink", len(masks) == 1 and masks[0].name() == "MangaColor hints", [(n.name(), n.type()) for n in ink.childNodes()] if ink else None)
    if masks:
        colours = masks[0].keyStrokesColors()
        check("cmask: one key stroke per hint colour", len(colours) == len(HINTS), len(colours))
    check("cmask: the docker says so", "Colorize mask 'MangaColor hints' added" in docker.status.text(), docker.status.text())
    close(doc)
    yield 0.3
