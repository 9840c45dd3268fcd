"""Registration, the docker's widgets and the action, on the mock Krita."""

import importlib

import mock_krita
from conftest import wait_until
from helpers import make_page, pick
from krita_mangacolor import ui_model as m


def fresh_plugin(krita):
    import krita_mangacolor

    return importlib.reload(krita_mangacolor)


def test_registration(krita):
    fresh_plugin(krita)
    assert [f.id for f in krita.docker_factories] == ["mangacolor_docker"]
    assert len(krita.extensions) == 1


def test_action_and_shortcut(krita, monkeypatch):
    from krita_mangacolor import extension

    ext = extension.MangaColorExtension(krita)
    window = mock_krita.Window()
    ext.createActions(window)
    action = window.created_actions["mangacolor_colorize"]
    assert action.shortcut().toString() == "Ctrl+Shift+M" and action.text() == "MangaColor: Colorize"
    calls = []
    monkeypatch.setattr(m.ColorizeModel, "colorize", lambda self, doc=None: calls.append(self))
    action.trigger()
    assert calls and calls[0] is m.instance()
    assert sorted(window.created_actions) == sorted(
        ["mangacolor_colorize", "mangacolor_new_hint_layer", "mangacolor_colorize_all", "mangacolor_export_colorize_mask"]
    )
    export = window.created_actions["mangacolor_export_colorize_mask"]
    assert not export.isEnabled() and "Needs Krita 5.2" in export.toolTip()
    assert window.created_actions["mangacolor_colorize_all"].text() == "MangaColor: Colorize all open documents"


def test_action_file_lists_every_action():
    import re
    from pathlib import Path

    from krita_mangacolor import extension

    text = (Path(extension.__file__).parent / "mangacolor.action").read_text()
    assert re.findall(r'<Action name="([^"]+)"', text) == [a[0] for a in extension.ACTIONS]
    for action_id, label, _, _ in extension.ACTIONS:
        assert f"<text>{label}</text>" in text


def test_docker_button_runs_and_shows_errors(krita):
    from krita_mangacolor.docker import MangaColorDocker

    factory = mock_krita.DockWidgetFactory("mangacolor_docker", 1, MangaColorDocker)
    dock = factory.create()
    from krita_mangacolor.qt import QLabel, QPushButton

    button = dock.findChild(QPushButton, "mangacolor_colorize_button")
    cancel = dock.findChild(QPushButton, "mangacolor_cancel_button")
    status = dock.findChild(QLabel, "mangacolor_status")
    assert button.isEnabled() and not cancel.isEnabled()
    button.click()  # no document open
    assert status.text().startswith("Error: No document is open")
    assert button.isEnabled()


def test_busy_state_toggles_buttons(krita):
    from krita_mangacolor.qt import QPushButton

    from krita_mangacolor.widgets import MangaColorWidget

    mdl = m.instance(krita)
    w = MangaColorWidget(mdl, krita.writeSetting)
    mdl._set(m.RUNNING, "Colorizing: network (50%)", 0.5)
    assert not w.findChild(QPushButton, "mangacolor_colorize_button").isEnabled()
    assert w.findChild(QPushButton, "mangacolor_cancel_button").isEnabled()
    assert w.progress.value() == 500 and w.status.text() == "Colorizing: network (50%)"
    mdl._set(m.STARTING, "Starting", -1)
    assert w.progress.maximum() == 0  # indeterminate
    mdl.notes = ["no hint layer named 'Hints': colorizing without hints"]
    mdl._set(m.DONE, "Done", 1.0)
    assert "Note: no hint layer named 'Hints'" in w.notes.text()


def test_settings_are_saved_to_krita(krita, monkeypatch):
    from krita_mangacolor import settings
    from krita_mangacolor.widgets import MangaColorWidget

    monkeypatch.setattr(settings, "config_file_path", lambda: __import__("pathlib").Path("/nonexistent.json"))
    mdl = m.instance(krita)
    w = MangaColorWidget(mdl, krita.writeSetting)
    w.backend.url_edit.setText("http://127.0.0.1:9999")
    w.backend.command_edit.setText("'/opt/m c/python' -m backend serve --port 9999")
    w.backend.hint_edit.setText("Colours")
    w.backend.save()
    assert krita.readSetting("mangacolor", "url", "") == "http://127.0.0.1:9999"
    assert mdl.settings.server_command == ["/opt/m c/python", "-m", "backend", "serve", "--port", "9999"]
    assert mdl.settings.hint_layer == "Colours"
    w.backend.command_edit.setText("'unbalanced")
    w.backend.save()
    assert "not valid" in w.backend.status.text()


def test_docker_with_a_page_and_no_backend(krita, monkeypatch):
    from krita_mangacolor.qt import QLabel, QPushButton

    from krita_mangacolor.docker import MangaColorDocker

    monkeypatch.setenv("MANGACOLOR_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    make_page(krita)
    dock = MangaColorDocker()
    dock.findChild(QPushButton, "mangacolor_colorize_button").click()
    status = dock.findChild(QLabel, "mangacolor_status")
    wait_until(lambda: status.text().startswith("Error:"), 10, "an error")
    assert "not running at http://127.0.0.1:9" in status.text()


def test_role_pickers_list_layers_and_store_the_choice(krita):
    from krita_mangacolor import roles
    from krita_mangacolor.widgets import MangaColorWidget

    doc, ink, hint = make_page(krita)
    pencils = doc.add_layer("Pencils")
    mdl = m.instance(krita)
    w = MangaColorWidget(mdl, krita.writeSetting)
    ink_combo, hint_combo, ref_combo = (w.roles.combos[r] for r in ("ink", "hints", "reference"))
    assert ink_combo.itemText(0) == "Auto: Ink"
    assert hint_combo.itemText(0) == "Auto: Hints" and hint_combo.itemText(1) == "None"
    assert ref_combo.itemText(0) == "Auto (none)"
    assert [ink_combo.itemText(i) for i in range(1, ink_combo.count())] == ["Pencils", "Ink", "Hints", "Background"]
    assert pick(w, "ink", "Pencils")
    assert roles.load(doc)["ink"] == roles.Choice.layer(pencils) and doc.modified()
    assert w.roles.combos["ink"].currentText() == "Pencils"
    assert pick(w, "hints", roles.NONE)
    assert roles.load(doc)["hints"].kind == roles.NONE
    # another document: its own choices
    other, _, _ = make_page(krita)
    w.roles.refresh()
    assert w.roles.combos["ink"].currentIndex() == 0
    krita.setActiveDocument(doc)
    w.roles.refresh()
    assert w.roles.combos["ink"].currentText() == "Pencils" and w.roles.combos["hints"].currentText() == "None"
    # the chosen layer deleted: shown as missing, colorize says so
    pencils.remove()
    w.roles.refresh()
    assert w.roles.combos["ink"].currentText() == "Pencils (missing)"


def test_option_controls_are_built_from_the_backend(krita):
    from krita_mangacolor import options
    from krita_mangacolor.qt import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox
    from krita_mangacolor.option_controls import OPTION_PREFIX
    from krita_mangacolor.widgets import MangaColorWidget
    from fake_backend import OPTIONS

    mdl = m.instance(krita)
    w = MangaColorWidget(mdl, krita.writeSetting)
    assert w.options.empty.isVisibleTo(w) and not w.options.controls
    specs = options.parse_schema({"options": OPTIONS + [{"name": "style", "type": "color", "default": [1, 2, 3], "help": "Future."}]})
    mdl.options.specs = specs
    mdl.options_changed.emit()
    kinds = {name: type(widget) for name, widget in w.options.controls.items()}
    assert kinds == {"reference_mode": QComboBox, "working_size": QSpinBox, "keep_white": QCheckBox, "flat_regions": QDoubleSpinBox, "style": QLineEdit}
    for spec in specs:
        widget = w.findChild(type(w.options.controls[spec.name]), OPTION_PREFIX + spec.name)
        assert widget is not None and widget.toolTip().startswith(spec.help)
    spin = w.options.controls["working_size"]
    assert (spin.minimum(), spin.maximum(), spin.value()) == (64, 4096, 768)
    spin.setValue(1024)
    w.options.controls["keep_white"].setChecked(False)
    w.options.controls["style"].setText("[4, 5, 6]")
    w.options.controls["style"].editingFinished.emit()
    assert mdl.options.job_options() == {"reference_mode": "histogram", "working_size": 1024, "keep_white": False, "flat_regions": 0.6, "style": [4, 5, 6]}
    assert "1024" in krita.readSetting("mangacolor", "options", "")
    w.options.reset.click()
    assert mdl.options.job_options()["working_size"] == 768 and w.options.controls["working_size"].value() == 768


def test_history_list_and_restore_button(krita):
    from krita_mangacolor.geometry import Rect, Target
    from krita_mangacolor.widgets import MangaColorWidget

    mdl = m.instance(krita)
    w = MangaColorWidget(mdl, krita.writeSetting)
    assert w.history.list.count() == 0 and not w.history.restore_button.isEnabled()
    for _ in range(2):
        mdl.history.add(Target(None, 1, "Ink", Rect(0, 0, 4, 4), (4, 4), ("RGBA", "U8")), "p.kra", b"x")
    mdl.history_changed.emit()
    assert w.history.list.count() == 2 and w.history.list.item(0).text().startswith("#2 ")
    assert w.history.restore_button.isEnabled()
    calls = []
    mdl.restore = lambda entry_id: calls.append(entry_id)
    w.history.restore_button.click()
    assert calls == [2]


def test_backend_buttons(krita):
    from krita_mangacolor.widgets import MangaColorWidget

    mdl = m.instance(krita)
    w = MangaColorWidget(mdl, krita.writeSetting)
    assert not w.backend.stop_button.isEnabled()  # nothing started by MangaColor
    assert w.backend.start_button.isEnabled()
    assert w.export_mask_button.isEnabled() is False and "5.2" in w.export_mask_button.toolTip()
