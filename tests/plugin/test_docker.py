"""Registration, the docker's widgets and the action, on the mock Krita."""

import importlib

import mock_krita
from conftest import wait_until
from helpers import make_page
from krita_mangacolor import model as m


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
    assert action.shortcut().toString() == "Ctrl+Shift+M"
    calls = []
    monkeypatch.setattr(m.ColorizeModel, "colorize", lambda self: calls.append(self))
    action.trigger()
    assert calls and calls[0] is m.instance()


def test_docker_button_runs_and_shows_errors(krita):
    from krita_mangacolor.docker import MangaColorDocker

    factory = mock_krita.DockWidgetFactory("mangacolor_docker", 1, MangaColorDocker)
    dock = factory.create()
    from PyQt5.QtWidgets import QLabel, QPushButton

    button = dock.findChild(QPushButton, "mangacolor_colorize_button")
    cancel = dock.findChild(QPushButton, "mangacolor_cancel_button")
    status = dock.findChild(QLabel, "mangacolor_status")
    assert button.isEnabled() and not cancel.isEnabled()
    button.click()  # no document open
    assert status.text().startswith("Error: No document is open")
    assert button.isEnabled()


def test_busy_state_toggles_buttons(krita):
    from PyQt5.QtWidgets import QPushButton

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
    from krita_mangacolor import config
    from krita_mangacolor.widgets import MangaColorWidget

    monkeypatch.setattr(config, "config_file_path", lambda: __import__("pathlib").Path("/nonexistent.json"))
    mdl = m.instance(krita)
    w = MangaColorWidget(mdl, krita.writeSetting)
    w.url_edit.setText("http://127.0.0.1:9999")
    w.command_edit.setText("'/opt/m c/python' -m backend serve --port 9999")
    w.hint_edit.setText("Colours")
    w.save_settings()
    assert krita.readSetting("mangacolor", "url", "") == "http://127.0.0.1:9999"
    assert mdl.settings.server_command == ["/opt/m c/python", "-m", "backend", "serve", "--port", "9999"]
    assert mdl.settings.hint_layer == "Colours"
    w.command_edit.setText("'unbalanced")
    w.save_settings()
    assert "not valid" in w.backend_status.text()


def test_docker_with_a_page_and_no_backend(krita, monkeypatch):
    from PyQt5.QtWidgets import QLabel, QPushButton

    from krita_mangacolor.docker import MangaColorDocker

    monkeypatch.setenv("MANGACOLOR_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    make_page(krita)
    dock = MangaColorDocker()
    dock.findChild(QPushButton, "mangacolor_colorize_button").click()
    status = dock.findChild(QLabel, "mangacolor_status")
    wait_until(lambda: status.text().startswith("Error:"), 10, "an error")
    assert "not running at http://127.0.0.1:9" in status.text()
