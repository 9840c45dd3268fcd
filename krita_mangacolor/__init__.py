"""MangaColor for Krita: colorize black-and-white manga with a local backend.

Where things live (docs/ARCHITECTURE.md, "Plugin", follows one Colorize click through them):
  Krita entry points   extension.py (actions), docker.py (the docker), actions.py (what the actions do)
  the docker's widgets widgets.py (the whole, run controls, history), role_pickers.py, option_controls.py,
                       backend_panel.py, variant_strip.py (the last run's variants, Keep as draft)
  observable model     ui_model.py (state of a run, signals; ties the pieces below together), all_documents.py (all open
                       documents), history.py (recent results), option_values.py (the user's option values),
                       result_actions.py (Restore, pick a variant, keep one as draft), timing.py (click->layer)
  backend              connection.py (find or start it, health, token), backend_jobs.py (submit, poll, cancel,
                       download), client.py (Qt HTTP; upload.py: the page's POST from its own thread), api.py
                       (paths, answers), request.py (the request body),
                       frames.py (the lean wire format), wire.py (frames or JSON body), result_reader.py
                       (a result, JSON or frames, decoded to BGRA and variants),
                       backend_process.py (the server this plugin starts), settings.py (URL, command, token path)
  document             layers.py (Layer wrapper, tree searches), role_finder.py (which layer is ink, hints,
                       reference), roles.py (the choices stored in the .kra), page_reader.py (read the pixels and
                       encode them), result_layer.py (write the MangaColor layer), draft_layer.py (the Draft
                       layer "Keep as draft" writes), geometry.py (Rect, Target),
                       tools.py (hint layer, Colorize Mask)
  panels & palettes    panels_layer.py (the 'Panels' vector layer: SVG in points <-> polygons in pixels),
                       panel_choices.py + palette_library.py (per-panel choices, named palettes: in the .kra,
                       doc_store.py), page_extras.py (References group, palettes, panels into the request),
                       panels_model.py (Detect panels, Save palette), palette_widgets.py (the docker's box)
  pure helpers         pixels.py (Krita pixel layouts), imaging.py (QImage, PNG), worker.py (a worker thread),
                       qt.py (PyQt5 or PyQt6), errors.py, options.py (the backend's option schema)
Only the standard library, PyQt and krita are used: nothing else exists in Krita.
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
