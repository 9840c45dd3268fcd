"""The Krita action "Colorize with MangaColor" (Tools > Scripts), default shortcut Ctrl+Shift+M."""

from __future__ import annotations

from krita import Extension, Krita
from PyQt5.QtGui import QKeySequence

from . import model

ACTION_ID = "mangacolor_colorize"
ACTION_TEXT = "Colorize with MangaColor"
# Not used by Krita 5.1's default shortcut scheme (checked against Krita.instance().actions() in the e2e test).
DEFAULT_SHORTCUT = "Ctrl+Shift+M"


class MangaColorExtension(Extension):
    def __init__(self, parent):
        super().__init__(parent)

    def setup(self):
        Krita.instance().notifier().applicationClosing.connect(self._closing)

    def createActions(self, window):
        action = window.createAction(ACTION_ID, ACTION_TEXT, "tools/scripts")
        # mangacolor.action (if the installer copied it to Krita's actions folder) sets the default
        # shortcut and lets the user change it; without it, give the action its default here.
        if action.shortcut().isEmpty():
            action.setShortcut(QKeySequence(DEFAULT_SHORTCUT))
        action.setToolTip("Colorize the active ink layer into a 'MangaColor' layer beneath it")
        action.triggered.connect(self._colorize)

    def _colorize(self):
        model.instance(Krita.instance()).colorize()

    def _closing(self):
        if model._instance is not None:
            model._instance.shutdown()
