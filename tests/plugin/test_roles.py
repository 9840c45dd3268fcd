"""Layer roles: defaults by name, choices stored in the document, resolution for one and for all documents."""

import pytest

from helpers import RED, collect_inputs, fill, make_page, names
from krita_mangacolor import role_finder, roles
from krita_mangacolor.errors import UserError
from krita_mangacolor.roles import AUTO, LAYER, NONE, Choice


@pytest.mark.parametrize("name", ["Ink", "ink", "Inks", "Inking", "Lineart", "line art", "Line-Art", "LINE_ART 2", "lines", "Linework", "Ink (scan)"])
def test_ink_like_names(name):
    assert roles.looks_like_ink(name)


@pytest.mark.parametrize("name", ["Background", "Hints", "Pink", "Inkwell tones", "Sketch", "Colors", "Layer 1", ""])
def test_not_ink_like_names(name):
    assert not roles.looks_like_ink(name)


def test_choices_encode_decode_and_garbage():
    c = {"ink": Choice(LAYER, "abc", "Lines"), "hints": Choice(NONE), "reference": Choice(), "draft": Choice(NONE)}
    assert roles.decode(roles.encode(c)) == c
    assert roles.decode(b"not json") == roles.default_choices()
    assert roles.decode(b'{"ink": "none", "hints": 7}') == roles.default_choices()  # the ink is never "none"
    assert roles.decode(None) == roles.default_choices()


def test_uid_text_of_quuid_and_uuid():
    from krita_mangacolor.qt import QtCore

    q = QtCore.QUuid("{C4F02249-589D-459C-BEDA-48DBEF16694B}")
    assert roles.uid_text(q) == "c4f02249-589d-459c-beda-48dbef16694b"
    import uuid

    assert roles.uid_text(uuid.UUID("c4f02249-589d-459c-beda-48dbef16694b")) == "c4f02249-589d-459c-beda-48dbef16694b"


def test_auto_ink_by_name_even_when_hints_are_active(krita):
    doc, ink, hint = make_page(krita)
    doc.setActiveNode(hint)  # the colourist was just painting hints
    r = role_finder.resolve_roles(doc)
    assert r.ink.node == ink and r.ink_how == "by name" and r.hints.node == hint and r.reference is None


def test_auto_ink_falls_back_to_the_active_layer(krita):
    doc, ink, hint = make_page(krita)
    ink.setName("Page 7")
    r = role_finder.resolve_roles(doc)
    assert r.ink.node == ink and r.ink_how == "active layer"


def test_hint_and_reference_found_ignoring_case(krita):
    doc, ink, hint = make_page(krita)
    hint.setName("hints")
    ref = doc.add_layer("REFERENCE")
    r = role_finder.resolve_roles(doc)
    assert r.hints.node == hint and r.reference.node == ref


def test_choices_stored_in_the_document_annotation(krita):
    doc, ink, hint = make_page(krita)
    lines = doc.add_layer("Pencils")
    colours = doc.add_layer("My colours")
    roles.set_choice(doc, "ink", Choice.layer(lines))
    roles.set_choice(doc, "hints", Choice.layer(colours))
    roles.set_choice(doc, "reference", Choice(NONE))
    assert doc.annotationTypes() == [roles.ANNOTATION_TYPE]
    raw = bytes(doc.annotation(roles.ANNOTATION_TYPE).data())
    assert b'"name": "Pencils"' in raw
    loaded = roles.load(doc)
    assert loaded["ink"].uid == roles.node_uid(lines) and loaded["hints"].name == "My colours" and loaded["reference"].kind == NONE
    r = role_finder.resolve_roles(doc, loaded)
    assert r.ink.node == lines and r.hints.node == colours and r.reference is None and r.ink_how == "chosen"


def test_chosen_layer_found_by_name_when_its_id_changed(krita):
    doc, ink, hint = make_page(krita)
    roles.set_choice(doc, "ink", Choice(LAYER, "0000-gone", "Ink"))
    assert role_finder.resolve_roles(doc).ink.node == ink


def test_chosen_ink_deleted_is_a_clear_error(krita):
    doc, ink, hint = make_page(krita)
    lines = doc.add_layer("Pencils")
    roles.set_choice(doc, "ink", Choice.layer(lines))
    lines.remove()
    with pytest.raises(UserError, match="'Pencils' chosen in the MangaColor docker is no longer in this document"):
        role_finder.resolve_roles(doc, roles.load(doc))


def test_chosen_hints_deleted_is_a_note(krita):
    doc, ink, hint = make_page(krita)
    roles.set_choice(doc, "hints", Choice.layer(hint))
    hint.remove()
    r = role_finder.resolve_roles(doc, roles.load(doc))
    assert r.hints is None and any("no longer in the document" in n for n in r.notes)


def test_same_layer_as_ink_and_hints_is_refused(krita):
    doc, ink, hint = make_page(krita)
    roles.set_choice(doc, "ink", Choice.layer(hint))
    roles.set_choice(doc, "hints", Choice.layer(hint))
    with pytest.raises(UserError, match="both as the ink and as the hint layer"):
        role_finder.resolve_roles(doc, roles.load(doc))


def test_for_all_documents_the_active_layer_is_not_guessed(krita):
    doc, ink, hint = make_page(krita)
    ink.setName("Page 7")
    other = doc.add_layer("Sketch")
    with pytest.raises(UserError, match="No ink layer"):
        role_finder.resolve_roles(doc, None, use_active=False)
    other.remove()
    bg = doc.rootNode().childNodes()[0]
    bg.remove()  # one layer left besides the hints: that is the ink
    r = role_finder.resolve_roles(doc, None, use_active=False)
    assert r.ink.node == ink and r.ink_how == "only layer"


def test_inputs_follow_the_choices(krita):
    doc, ink, hint = make_page(krita)
    colours = doc.add_layer("Colours")
    fill(colours, 10, 10, 2, 2, RED)
    roles.set_choice(doc, "hints", Choice.layer(colours))
    inputs = collect_inputs(krita)
    assert inputs.hint_name == "Colours"
    roles.set_choice(doc, "hints", Choice(NONE))
    inputs = collect_inputs(krita)
    assert inputs.request.hints is None and not any("no hint layer" in n for n in inputs.notes)


def test_preview_never_raises(krita):
    doc, ink, hint = make_page(krita)
    ink.setName("Page")
    doc.setActiveNode(hint)
    p = role_finder.preview_roles(doc, None, "Hints", "Reference")
    assert p["ink"].layer is None and "hint layer" in p["ink"].text
    ink.setName("Ink")
    p = role_finder.preview_roles(doc, None, "Hints", "Reference")
    assert p["ink"].layer.node == ink and p["hints"].layer.node == hint and p["reference"] == (None, "none")
    assert (p["ink"].text, p["hints"].text) == ("Ink", "Hints")
    assert names(doc.rootNode()) == ["Background", "Hints", "Ink"]


def test_session_store_without_annotation_api(krita, monkeypatch):
    doc, ink, hint = make_page(krita)
    monkeypatch.setattr(roles.doc_store, "has_annotations", lambda d: False)
    assert roles.save(doc, {"ink": Choice.layer(ink), "hints": Choice(), "reference": Choice()}) is False
    assert roles.load(doc)["ink"].name == "Ink"
    assert AUTO == "auto"


def test_draft_role_found_by_name_chosen_or_none(krita):
    """Issue 13: a layer named 'Draft' is the draft (sent as `draft`); a picked layer or None likewise."""
    import base64
    from helpers import fill

    doc, ink, hint = make_page(krita)
    assert collect_inputs(krita).request.draft is None
    draft = doc.add_layer("Draft")
    fill(draft, 3, 3, 10, 8, (10, 200, 30, 255))
    doc.setActiveNode(ink)
    inputs = collect_inputs(krita)
    assert inputs.draft_name == "Draft" and base64.b64decode(inputs.request.draft)[:4] == b"\x89PNG"
    assert role_finder.preview_roles(doc, None, "Hints", "Reference")["draft"].text == "Draft"
    washes = doc.add_layer("Washes")
    fill(washes, 0, 0, 4, 4, (1, 2, 3, 255))
    doc.setActiveNode(ink)
    roles.set_choice(doc, "draft", Choice.layer(washes))
    assert collect_inputs(krita).draft_name == "Washes"
    roles.set_choice(doc, "draft", Choice(NONE))
    assert collect_inputs(krita).request.draft is None
    roles.set_choice(doc, "draft", Choice())
    doc.setActiveNode(draft)  # the colourist just painted on the draft: the ink is still found by name
    assert collect_inputs(krita).target.ink_name == "Ink"
