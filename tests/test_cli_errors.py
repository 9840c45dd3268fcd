"""`python -m backend colorize`: a bad output path is a one-line error and exit 2, found before the
colorization runs (issue 14: it was a traceback after the whole work)."""

import numpy as np
import pytest
from PIL import Image

import backend.pipeline
from backend.__main__ import main


@pytest.fixture
def page(tmp_path):
    ink = np.full((40, 30), 255, np.uint8)
    ink[:, 10] = 0
    path = tmp_path / "page.png"
    Image.fromarray(ink).save(path)
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "afile").write_text("not a folder")
    return path


@pytest.mark.parametrize(
    "args, words",
    [
        (["-o", "out.xyz"], "unknown image file extension '.xyz'"),
        (["-o", "out"], "unknown image file extension '(none)'"),
        (["-o", "folder.png"], "is a folder"),
        (["-o", "afile/out.png"], "is a file"),
        (["-o", "ok.png", "--color-layer", "layer.jpg"], "cannot hold an RGBA image"),
    ],
)
def test_bad_output_path_is_refused_before_any_work(page, monkeypatch, capsys, args, words):
    def never(*a, **kw):
        raise AssertionError("colorized although the result could not be written")

    monkeypatch.setattr(backend.pipeline, "colorize", never)
    args = [a if a.startswith("-") else str(page.parent / a) for a in args]
    assert main(["colorize", str(page), *args]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_good_output_paths_still_work(page, capsys):
    out, layer = page.parent / "new" / "out.jpg", page.parent / "new" / "layer.png"
    assert main(["colorize", str(page), "-o", str(out), "--color-layer", str(layer), "--device", "cpu"]) == 0
    assert Image.open(out).size == (30, 40) and Image.open(layer).mode == "RGBA"
