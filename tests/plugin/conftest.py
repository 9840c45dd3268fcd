"""Plugin tests without Krita: a mock `krita` module and PyQt (qt.py) on the offscreen platform."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import pytest  # noqa: E402
from krita_mangacolor.qt import QApplication, QEventLoop  # noqa: E402

import mock_krita  # noqa: E402

sys.modules["krita"] = mock_krita

_qapp = QApplication.instance() or QApplication(["mangacolor-tests"])


def wait_until(predicate, timeout: float = 15.0, what: str = "condition") -> None:
    """Run the Qt event loop until predicate() is true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        QApplication.processEvents(QEventLoop.AllEvents, 20)
        time.sleep(0.002)


def pump(seconds: float) -> None:
    """Run the Qt event loop for a while."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        QApplication.processEvents(QEventLoop.AllEvents, 20)
        time.sleep(0.002)


@pytest.fixture
def qapp():
    return _qapp


@pytest.fixture
def krita(monkeypatch, tmp_path):
    """A fresh mock Krita, a private token folder, and no MANGACOLOR_URL from the outside."""
    from krita_mangacolor import settings, ui_model as model

    # never pick up a backend_config.json an installer may have written into the source tree
    monkeypatch.setattr(settings, "config_file_path", lambda: tmp_path / "no-backend_config.json")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MANGACOLOR_URL", raising=False)
    model._instance = None  # a fresh model for the test
    mock_krita.enable_colorize_mask(False)
    app = mock_krita.Krita.reset()
    yield app
    if model._instance is not None:
        model._instance.shutdown()
    model._instance = None
