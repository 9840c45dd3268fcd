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


def value(member) -> int:
    """An enum member's number in both bindings (PyQt6's enums are not ints)."""
    return int(getattr(member, "value", member))


def test_unscoped_enums_are_the_scoped_members():
    """qt.py copies PyQt6's scoped enum members onto their classes; in both bindings the unscoped spelling must
    be the very member of the right enum, with Qt's numeric value."""
    assert isinstance(qt.Qt.AlignLeft, qt.Qt.AlignmentFlag) and value(qt.Qt.AlignLeft) == 0x1
    assert isinstance(qt.QImage.Format_ARGB32, qt.QImage.Format) and value(qt.QImage.Format_ARGB32) == 5
    assert value(qt.QProcess.NotRunning) == 0 and value(qt.QProcess.Running) == 2
    assert value(qt.Qt.UserRole) == 0x100


def test_helpers():
    assert qt.qbytes(qt.QByteArray(b"a\x00b")) == b"a\x00b"
    assert qt.qbytes(bytearray(b"x")) == b"x" and qt.qbytes(memoryview(b"yz")) == b"yz"
    fired = []
    loop = qt.QEventLoop()
    qt.QTimer.singleShot(0, lambda: (fired.append(1), loop.quit()))
    assert qt.exec_(loop) == 0 and fired == [1]
