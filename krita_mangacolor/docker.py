"""The "MangaColor" docker (Settings > Dockers > MangaColor)."""

from __future__ import annotations

from krita import DockWidget, Krita
from PyQt5.QtCore import QTimer

from . import model
from .widgets import MangaColorWidget

DOCKER_ID = "mangacolor_docker"
DOCKER_TITLE = "MangaColor"


class MangaColorDocker(DockWidget):
    def __init__(self):
        super().__init__()
        self.setWindowTitle(DOCKER_TITLE)
        app = Krita.instance()
        self.model = model.instance(app)
        self.widget = MangaColorWidget(self.model, app.writeSetting, self)
        self.setWidget(self.widget)
        # Show which layer Colorize would use: libkis has no "active layer changed" signal, so look once
        # a second while the docker is visible (a cheap call).
        self._layer_timer = QTimer(self)
        self._layer_timer.timeout.connect(self._update_active_layer)
        self._layer_timer.start(1000)
        QTimer.singleShot(0, self.model.check_backend)

    def _update_active_layer(self) -> None:
        if not self.isVisible():
            return
        doc = Krita.instance().activeDocument()
        node = doc.activeNode() if doc is not None else None
        self.widget.set_active_layer_name(node.name() if node is not None else None)

    def canvasChanged(self, canvas):  # required by DockWidget
        pass
