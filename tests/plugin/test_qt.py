"""qt.py: the plugin's one door to Qt (PyQt5 in Krita 5, PyQt6 in Krita 6).

The whole plugin suite also passes on PyQt6: `pip install pyqt6 pytest pillow` in a venv WITHOUT PyQt5, then
`QT_QPA_PLATFORM=offscreen python -m pytest tests/plugin --ignore tests/plugin/test_pixels.py`."""

import re
from pathlib import Path

from krita_mangacolor import qt

PLUGIN = Path(qt.__file__).parent


def test_no_module_imports_a_qt_binding_but_qt_py():
    offenders = []
    for path in sorted(PLUGIN.glob("*.py")):
        if path.name == "qt.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.match(r"\s*(from|import)\s+(PyQt5|PyQt6|sip)\b", line):
                offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert not offenders, offenders


def test_enums_in_the_unscoped_spelling_and_helpers():
    assert qt.QT_MAJOR in (5, 6) and qt.BINDING.startswith("PyQt")
    assert qt.Qt.AlignLeft is not None and qt.QImage.Format_ARGB32 is not None
    assert qt.QEventLoop.AllEvents is not None and qt.QProcess.NotRunning is not None
    assert qt.enum_value(qt.Qt.AlignLeft) == 1
    assert qt.qbytes(qt.QByteArray(b"ab")) == b"ab" and qt.qbytes(bytearray(b"x")) == b"x"
    loop = qt.QEventLoop()
    qt.QTimer.singleShot(0, loop.quit)
    qt.exec_(loop)
