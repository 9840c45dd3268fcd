"""`python -m backend batch`: a chapter archive, resumable, bad pages skipped and reported."""

import zipfile

import numpy as np
from PIL import Image

from backend.batch import main


def test_batch_archive_resumes_and_skips_bad_pages(tmp_path, capsys):
    pages = []
    for i in range(2):
        ink = np.full((80, 60), 255, np.uint8)
        ink[:, 20 + i] = 0
        path = tmp_path / f"p{i}.png"
        Image.fromarray(ink).save(path)
        pages.append(path)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    cbz = tmp_path / "chapter.cbz"
    with zipfile.ZipFile(cbz, "w") as z:
        for p in pages + [tmp_path / "broken.png"]:
            z.write(p, f"ch/{p.name}")
    out = tmp_path / "out"
    assert main([str(cbz), "-o", str(out)]) == 1  # one bad page: reported, others done
    assert (out / "ch_p0.png").exists() and (out / "layers" / "ch_p1_color.png").exists()
    assert "failed: ch_broken" in capsys.readouterr().out
    first = (out / "ch_p0.png").stat().st_mtime_ns
    main([str(cbz), "-o", str(out)])
    assert (out / "ch_p0.png").stat().st_mtime_ns == first  # done pages are skipped
    assert "2 already done" in capsys.readouterr().out
    composite = np.asarray(Image.open(out / "ch_p0.png"))
    assert composite.shape == (80, 60, 3) and (composite[:, 20] == 0).all()
