"""Issue 12 in the plugin, without Krita: the Panels vector layer (SVG in points, read back to pixels), the
palette library and per-panel choices stored in the document, a selection picking its panel, request bodies."""

from __future__ import annotations

import json

import pytest

from helpers import make_page
from krita_mangacolor import palette_library, panel_choices, panels_layer as pl
from krita_mangacolor.errors import UserError

# Krita 5.1.5's own Shape.toSvg() of 'Panel 1' (10,10)-(195,145) px written by panels_svg at 300 dpi
KRITA_SVG = (
    '<path id="Panel 1" transform="translate(2.4, 2.4)" fill="none" stroke="#ff0000" stroke-width="0.5" '
    'stroke-linecap="butt" stroke-linejoin="miter" stroke-miterlimit="2" d="M0 0L44.4 0L44.4 32.4L0 32.4Z" '
    'sodipodi:nodetypes="ccccc"/>'
)


def palette(name="Skin", rgb="#e8b796"):
    hist = [0.0] * 216
    hist[100] = 1.0
    return {"format": "mangacolor-palette", "version": 1, "name": name, "source": "reference",
            "swatches": [{"rgb": rgb, "share": 1.0}], "histogram": hist}


def test_svg_is_in_points_and_reads_back_in_pixels():
    polys = [[(10, 10), (195, 10), (195, 145), (10, 145)], [(205, 10), (390, 30), (390, 145), (205, 145)]]
    svg = pl.panels_svg(polys, 400, 300, 300.0)
    assert 'width="96pt"' in svg and 'id="Panel 2"' in svg
    back = [pl.points_to_pixels(p, 300.0) for p in pl.svg_polygons(svg)]
    assert back == [tuple(p) for p in polys]


def test_krita_shape_svg_with_transform():
    (poly,) = pl.svg_polygons(KRITA_SVG)
    assert pl.points_to_pixels(poly, 300.0) == ((10, 10), (195, 10), (195, 145), (10, 145))
    moved = KRITA_SVG.replace("translate(2.4, 2.4)", "matrix(0 1 -1 0 50 2.4)")  # rotated by the shape tool
    assert pl.points_to_pixels(pl.svg_polygons(moved)[0], 72.0)[:2] == ((50, 2), (50, 47))


def test_path_commands_relative_curves_and_groups():
    svg = '<g transform="translate(10,20)"><path d="m 0 0 h 10 v 10 c 0 0 -5 5 -10 0 z"/></g>'
    (poly,) = pl.svg_polygons(svg)
    assert [tuple(round(v, 6) for v in p) for p in poly] == [(10, 20), (20, 20), (20, 30), (10, 30)]
    assert pl.svg_polygons('<path d="M0 0 L5 5"/>') == []  # an open line is no panel
    rot = pl.parse_transform("rotate(90)")
    assert [round(v, 6) for v in pl.apply(rot, 1, 0)] == [0, 1]


def test_panel_at_picks_the_smallest_panel_holding_the_point():
    big = pl.Panel("Panel 1", ((0, 0), (100, 0), (100, 100), (0, 100)))
    small = pl.Panel("Panel 2", ((10, 10), (30, 10), (30, 30), (10, 30)))
    assert pl.panel_at([big, small], 20, 20) is small
    assert pl.panel_at([big, small], 50, 50) is big
    assert pl.panel_at([big, small], 150, 50) is None


def test_write_and_read_panels_layer(krita):
    doc, ink, _ = make_page(krita, 80, 60)
    polys = [[(2, 2), (39, 2), (39, 57), (2, 57)], [(41, 2), (77, 2), (77, 57), (41, 57)]]
    layer = pl.write_panels(doc, polys)
    assert layer.type() == "vectorlayer" and layer.name() == "Panels"
    assert doc.rootNode().childNodes()[-1].name() == "Panels"  # on top
    panels = pl.read_panels(doc)
    assert [p.name for p in panels] == ["Panel 1", "Panel 2"]
    assert [list(p.polygon) for p in panels] == [[tuple(q) for q in poly] for poly in polys]
    pl.write_panels(doc, polys[:1])  # detecting again replaces the layer
    assert [n.name() for n in doc.rootNode().childNodes()].count("Panels") == 1
    assert len(pl.read_panels(doc)) == 1
    assert pl.read_panels(krita.createDocument(10, 10, "x", "RGBA", "U8")) == []


def test_palette_library_in_the_document(krita, tmp_path):
    doc, _, _ = make_page(krita)
    assert palette_library.load(doc) == []
    palette_library.add(doc, palette("Skin"))
    palette_library.add(doc, palette("Hair", "#302010"))
    palette_library.add(doc, palette("Skin", "#ffccaa"))  # same name: replaced
    assert palette_library.names(doc) == ["Hair", "Skin"]
    assert palette_library.swatch_colours(palette_library.get(doc, "Skin")) == [(255, 204, 170)]
    assert "mangacolor-palettes" in doc.annotationTypes() and doc.modified()
    one, both = tmp_path / "skin.json", tmp_path / "lib.json"
    palette_library.export_file(str(one), [palette_library.get(doc, "Skin")])
    palette_library.export_file(str(both), palette_library.load(doc))
    assert json.loads(one.read_text())["format"] == "mangacolor-palette"
    assert [p["name"] for p in palette_library.import_file(str(both))] == ["Hair", "Skin"]
    assert palette_library.remove(doc, "Hair") and palette_library.names(doc) == ["Skin"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "mangacolor-palette", "name": "x", "histogram": [1, 2]}))
    with pytest.raises(UserError, match="216-bin"):
        palette_library.import_file(str(bad))
    bad.write_text("not json")
    with pytest.raises(UserError, match="not a JSON palette"):
        palette_library.import_file(str(bad))


def test_panel_choices_in_the_document(krita):
    doc, _, _ = make_page(krita)
    ref = doc.add_layer("Sky")
    panel_choices.set_panel(doc, "Panel 2", panel_choices.PanelChoice.palette("Skin"))
    panel_choices.set_panel(doc, "Panel 1", panel_choices.PanelChoice.layer(ref))
    panel_choices.set_page_palettes(doc, ["Hair", "Hair", "Skin"])
    c = panel_choices.load(doc)
    assert c.page_palettes == ["Hair", "Skin"]
    assert c.of("Panel 2") == panel_choices.PanelChoice("palette", "Skin")
    assert c.of("Panel 1").kind == "reference" and c.of("Panel 1").name == "Sky"
    assert c.of("Panel 9").kind == "page"
    panel_choices.forget_palette(doc, "Skin")
    c = panel_choices.load(doc)
    assert c.page_palettes == ["Hair"] and c.of("Panel 2").kind == "page"
    panel_choices.set_panel(doc, "Panel 1", panel_choices.PanelChoice())
    assert panel_choices.load(doc).panels == {}



def test_clip_to_box():
    """Panels drawn past the canvas or cut by a selection stay on the page sent (the backend refuses points
    outside it)."""
    square = [(-5, -5), (15, -5), (15, 15), (-5, 15)]
    assert sorted(pl.clip_to_box(square, 10, 10)) == [(0, 0), (0, 10), (10, 0), (10, 10)]
    assert pl.clip_to_box([(20, 20), (30, 20), (30, 30)], 10, 10) == []
    assert abs(pl.polygon_area(pl.clip_to_box([(0, 0), (20, 0), (0, 20)], 10, 10))) == 100.0
