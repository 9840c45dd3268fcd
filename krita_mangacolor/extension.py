"""The plugin's Krita actions (Tools > Scripts, and Settings > Configure Krita > Keyboard Shortcuts):

  MangaColor: Colorize                        (default shortcut Ctrl+Shift+M)
  MangaColor: New hint layer
  MangaColor: Colorize all open documents
  MangaColor: Export hints to Colorize Mask   (Krita 5.2+; disabled, with the reason, before)
"""

from __future__ import annotations

import krita as krita_module
from krita import Extension, Krita

from . import actions, tools, ui_model
from .qt import QKeySequence

ACTION_ID = "mangacolor_colorize"
ACTION_TEXT = "MangaColor: Colorize"
# Not used by Krita 5.1's default shortcut scheme (checked against Krita.instance().actions() in the e2e test).
DEFAULT_SHORTCUT = "Ctrl+Shift+M"

# (id, text, tooltip, callback name in actions.py)
ACTIONS = (
    (ACTION_ID, ACTION_TEXT, "Colorize the ink layer into a 'MangaColor' layer, guided by the hint layer", "colorize"),
    ("mangacolor_new_hint_layer", "MangaColor: New hint layer",
     "Create the 'Hints' layer directly above the ink, make it active and select a small hard brush", "new_hint_layer"),
    ("mangacolor_colorize_all", "MangaColor: Colorize all open documents",
     "Colorize every open document, one after the other, each with its own layer choices", "colorize_all"),
    ("mangacolor_export_colorize_mask", "MangaColor: Export hints to Colorize Mask",
     "Create a Colorize Mask on the ink layer with the hint colours as key strokes (Krita 5.2+)", "export_colorize_mask"),
)


class MangaColorExtension(Extension):
    def __init__(self, parent):
        super().__init__(parent)

    def setup(self):
        Krita.instance().notifier().applicationClosing.connect(self._closing)

    def createActions(self, window):
        supported, why = tools.colorize_mask_support(krita_module, Krita.instance())
        for action_id, text, tip, callback in ACTIONS:
            action = window.createAction(action_id, text, "tools/scripts")
            if action_id == ACTION_ID and action.shortcut().isEmpty():
                # mangacolor.action (if the installer copied it to Krita's actions folder) sets the default
                # shortcut and lets the user change it; without it, give the action its default here.
                action.setShortcut(QKeySequence(DEFAULT_SHORTCUT))
            action.setToolTip(tip)
            if action_id == "mangacolor_export_colorize_mask" and not supported:
                action.setEnabled(False)
                action.setToolTip(why)
            action.triggered.connect(getattr(actions, callback))

    def _closing(self):
        if ui_model._instance is not None:
            ui_model._instance.shutdown()
