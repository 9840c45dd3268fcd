"""MangaColor for Krita: colorize black-and-white manga with a local backend.

Modules: document (Krita document access), model (state + job lifecycle), client (Qt HTTP client),
server (starts the backend), widgets/docker (UI), extension (action), api/config/pixels/imaging
(pure helpers), roles (layer role choices stored in the document), options (the backend's option schema),
history (recent results), tools (hint layer, colorize mask), worker (heavy work off the GUI thread), qt
(PyQt5 or PyQt6). Only the standard library, PyQt and krita are used: nothing else exists in Krita.
"""

__version__ = "0.1.0"

try:
    from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita
except ImportError:  # imported outside Krita (unit tests of the pure modules): register nothing
    Krita = None

if Krita is not None:
    from .docker import DOCKER_ID, MangaColorDocker
    from .extension import MangaColorExtension

    _app = Krita.instance()
    _app.addExtension(MangaColorExtension(_app))
    _app.addDockWidgetFactory(DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, MangaColorDocker))
