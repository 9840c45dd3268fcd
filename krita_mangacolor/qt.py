"""The one place that imports Qt: PyQt5 (Krita 5) or PyQt6 (Krita 6), with their differences papered over.

Every other module of the plugin imports Qt names from here. Which binding is used:
  1. the one Krita (or the test) already imported (`PyQt6` or `PyQt5` in sys.modules), PyQt6 first;
  2. else MANGACOLOR_QT=5 or 6 from the environment;
  3. else PyQt5 if it imports, else PyQt6.
Loading PyQt5 inside a Qt6 Krita (or the reverse) would crash it, so "already imported" wins.

Differences handled:
  * PyQt6 scopes every enum (Qt.AlignmentFlag.AlignLeft, QImage.Format.Format_ARGB32); their members are
    copied onto the classes, so `Qt.AlignLeft` and `QImage.Format_ARGB32` work with both bindings;
  * QAction lives in QtGui in Qt6, QtWidgets in Qt5;
  * exec_() is exec() in PyQt6: use exec_(obj).
"""

from __future__ import annotations

import enum
import os
import sys


def _choose() -> int:
    if "PyQt6" in sys.modules:
        return 6
    if "PyQt5" in sys.modules:
        return 5
    wanted = os.environ.get("MANGACOLOR_QT", "").strip()
    if wanted in ("5", "6"):
        return int(wanted)
    try:
        import PyQt5.QtCore  # noqa: F401

        return 5
    except ImportError:
        return 6


QT_MAJOR = _choose()

if QT_MAJOR == 6:  # pragma: no cover - exercised only where PyQt6 is installed
    from PyQt6 import QtCore, QtGui, QtNetwork, QtWidgets
    from PyQt6.QtGui import QAction
else:
    from PyQt5 import QtCore, QtGui, QtNetwork, QtWidgets
    from PyQt5.QtWidgets import QAction

QT6 = QT_MAJOR == 6

pyqtSignal = QtCore.pyqtSignal
Qt = QtCore.Qt
QBuffer = QtCore.QBuffer
QByteArray = QtCore.QByteArray
QEventLoop = QtCore.QEventLoop
QIODevice = QtCore.QIODevice
QMetaObject = QtCore.QMetaObject
QObject = QtCore.QObject
QProcess = QtCore.QProcess
QProcessEnvironment = QtCore.QProcessEnvironment
QRect = QtCore.QRect
QSize = QtCore.QSize
QTimer = QtCore.QTimer
QUrl = QtCore.QUrl

QColor = QtGui.QColor
QImage = QtGui.QImage
QKeySequence = QtGui.QKeySequence
QPainter = QtGui.QPainter
QPixmap = QtGui.QPixmap
QIcon = QtGui.QIcon

QNetworkAccessManager = QtNetwork.QNetworkAccessManager
QNetworkReply = QtNetwork.QNetworkReply
QNetworkRequest = QtNetwork.QNetworkRequest

QApplication = QtWidgets.QApplication
QButtonGroup = QtWidgets.QButtonGroup
QCheckBox = QtWidgets.QCheckBox
QComboBox = QtWidgets.QComboBox
QDockWidget = QtWidgets.QDockWidget
QDoubleSpinBox = QtWidgets.QDoubleSpinBox
QFormLayout = QtWidgets.QFormLayout
QGroupBox = QtWidgets.QGroupBox
QHBoxLayout = QtWidgets.QHBoxLayout
QLabel = QtWidgets.QLabel
QLineEdit = QtWidgets.QLineEdit
QListWidget = QtWidgets.QListWidget
QListWidgetItem = QtWidgets.QListWidgetItem
QProgressBar = QtWidgets.QProgressBar
QPushButton = QtWidgets.QPushButton
QSizePolicy = QtWidgets.QSizePolicy
QSpinBox = QtWidgets.QSpinBox
QToolButton = QtWidgets.QToolButton
QVBoxLayout = QtWidgets.QVBoxLayout
QWidget = QtWidgets.QWidget


def _promote_enums(cls: type) -> None:
    """PyQt6: copy the members of every enum nested in cls onto cls (Qt.AlignmentFlag.AlignLeft -> Qt.AlignLeft)."""
    for name in dir(cls):
        try:
            attr = getattr(cls, name)
        except Exception:  # pragma: no cover - odd descriptors
            continue
        if isinstance(attr, type) and issubclass(attr, enum.Enum):
            # __members__, not iteration: a Flag's zero and multi-bit members (QEventLoop.AllEvents) are aliases
            for member_name, member in attr.__members__.items():
                if not hasattr(cls, member_name):
                    try:
                        setattr(cls, member_name, member)
                    except (AttributeError, TypeError):  # pragma: no cover
                        pass


if QT6:  # pragma: no cover - exercised only where PyQt6 is installed
    for _cls in (
        Qt, QEventLoop, QIODevice, QProcess, QImage, QKeySequence, QPainter, QNetworkRequest, QNetworkReply,
        QComboBox, QFormLayout, QSizePolicy, QToolButton, QDockWidget, QtWidgets.QFrame,
        QtWidgets.QStyle,
    ):
        _promote_enums(_cls)


def exec_(obj, *args):
    """obj.exec_() in PyQt5, obj.exec() in PyQt6 (event loops, dialogs, menus)."""
    fn = getattr(obj, "exec", None) or getattr(obj, "exec_")
    return fn(*args)


def qbytes(data) -> bytes:
    """QByteArray (or bytes/bytearray/memoryview) -> bytes."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    return bytes(data.data()) if hasattr(data, "data") else bytes(data)
