"""`python -m backend batch` on hostile and careless input: archives whose member names try to leave
the output folder, pages that break the decoder or the pipeline, colliding names, zip bombs, and an
output folder that cannot be written. Each case failed on the code before issue 14."""

import io
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend import batch
from backend.batch import main


def page_png(col: int = 20, h: int = 80, w: int = 60) -> bytes:
    ink = np.full((h, w), 255, np.uint8)
    ink[:, col] = 0
    buf = io.BytesIO()
    Image.fromarray(ink).save(buf, format="PNG")
    return buf.getvalue()


def noisy_png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (80, 60), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def malformed_dds() -> bytes:
    """A DDS header with no known pixel format: Pillow's DDS plugin raises NotImplementedError."""
    header = struct.pack("<3I", 0, 8, 8) + bytes(12) + bytes(44) + struct.pack("<4I", 32, 0, 0, 0) + bytes(36)
    return b"DDS " + struct.pack("<I", 124) + header


def make_cbz(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            info = zipfile.ZipInfo("placeholder")
            info.filename = name  # ZipInfo would clean the name; an attacker's archive is not cleaned
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return path


HOSTILE_NAMES = [
    "/page.png",
    "/etc/cron.d/page.png",
    "../../escape.png",
    "a/../../up.png",
    "C:\\Windows\\win.png",
    "C:page.png",
    "..\\..\\back.png",
    "\\\\server\\share\\unc.png",
    "\uff0e\uff0e\uff0f\uff0e\uff0e\uff0ffullwidth.png",  # full-width '../../' (NFKC turns them into the real ones)
    "\u2025/\u2024\u2024/dots.png",  # two-dot and one-dot leaders
    "\u202eevil\u200b.png",  # right-to-left override, zero-width space
    "nul\x00byte.png",
    "CON.png",
    ".hidden.png",
    "x" * 400 + ".png",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_output_names_stay_inside_the_output_folder(tmp_path, name):
    stem = batch.safe_stem(batch._without_suffix(name))
    out = tmp_path / "out"
    out.mkdir()
    for filename in (f"{stem}.png", f"{stem}_color.png"):
        assert (out / filename).resolve().parent == out.resolve()
    assert not set("/\\:\x00\u202e\u200b") & set(stem) and stem not in ("", ".", "..") and len(stem) <= 130
    assert stem.split(".")[0].upper() != "CON"


def test_hostile_archive_writes_nothing_outside_its_folder(tmp_path, monkeypatch):
    """Every member colorized, every file written under OUT_DIR; before, `/page.png` went to `/_page.png`."""
    written: list[Path] = []
    real_save = Image.Image.save

    def guarded_save(self, fp, *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(fp, io.BytesIO):
            return real_save(self, fp, *args, **kwargs)
        target = Path(os.readlink(f"/proc/self/fd/{fp.fileno()}")) if hasattr(fp, "fileno") else Path(fp)
        written.append(target.resolve())
        assert target.resolve().is_relative_to(tmp_path.resolve()), f"write outside the test folder: {target}"
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", guarded_save)
    monkeypatch.chdir(tmp_path)
    cbz = make_cbz(tmp_path / "hostile.cbz", {name: page_png(10 + i) for i, name in enumerate(HOSTILE_NAMES)})
    out = tmp_path / "out"
    before = set(tmp_path.rglob("*"))
    assert main([str(cbz), "-o", str(out)]) == 0
    created = {p for p in set(tmp_path.rglob("*")) - before if p.is_file()}
    assert created and all(p.resolve().is_relative_to(out.resolve()) for p in created)
    pages = len(HOSTILE_NAMES) - 1  # zipfile itself cuts "nul\x00byte.png" to "nul", not a page
    assert len(list(out.glob("*.png"))) == pages == len(list((out / "layers").glob("*_color.png")))
    assert all(p.is_relative_to(out.resolve()) for p in written)


def test_one_bad_page_never_stops_the_chapter(tmp_path, capsys):
    """A DDS member (NotImplementedError in Pillow) and a 1x1 black page (IndexError in the pipeline)
    used to end the run with a traceback; now both are reported with their reason and the rest is done."""
    tiny = io.BytesIO()
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(tiny, format="PNG")
    cbz = make_cbz(tmp_path / "ch.cbz", {
        "01.png": page_png(10), "02_dds.png": malformed_dds(), "03_tiny.png": tiny.getvalue(),
        "04.png": page_png(30), "05_truncated.png": noisy_png()[:2000],
    })
    out = tmp_path / "out"
    assert main([str(cbz), "-o", str(out)]) == 1  # some pages failed: the exit code says so
    text = capsys.readouterr().out
    assert "2 colorized, 0 already done, 3 failed" in text
    assert (out / "01.png").exists() and (out / "04.png").exists()
    assert "failed: 02_dds (02_dds.png): ink: not a readable image (NotImplementedError" in text
    assert "failed: 03_tiny (03_tiny.png): ink: a 1x1 page is too small" in text
    assert "failed: 05_truncated" in text and "Traceback" not in text


def test_unexpected_pipeline_error_is_reported_and_the_run_goes_on(tmp_path, capsys, monkeypatch):
    import backend.pipeline

    real = backend.pipeline.colorize
    calls = {"n": 0}

    def flaky(request, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise ZeroDivisionError("float division by zero")
        return real(request, **kw)

    monkeypatch.setattr(backend.pipeline, "colorize", flaky)
    src = tmp_path / "pages"
    src.mkdir()
    for i in range(2):
        (src / f"{i}.png").write_bytes(page_png(10 + i))
    assert main([str(src), "-o", str(tmp_path / "out")]) == 1
    text = capsys.readouterr().out
    assert "1 colorized" in text and "failed: 0 (0.png): ZeroDivisionError: float division by zero" in text


def test_output_names_are_unique_and_stable(tmp_path, capsys):
    """`a/b.png` vs `a_b.png` and `002.jpg` vs `002.png` used to share one output: the second was
    reported "already done" and never colorized."""
    jpg = io.BytesIO()
    Image.open(io.BytesIO(page_png(25))).save(jpg, format="JPEG")
    members = {"a/b.png": page_png(10), "a_b.png": page_png(15), "002.jpg": jpg.getvalue(), "002.png": page_png(35),
               "Page.png": page_png(45), "page.PNG": page_png(50), "plain.png": page_png(5)}
    cbz = make_cbz(tmp_path / "ch.cbz", members)
    out = tmp_path / "out"
    assert main([str(cbz), "-o", str(out)]) == 0
    assert "7 colorized, 0 already done, 0 failed" in capsys.readouterr().out
    outputs = sorted(p.name for p in out.glob("*.png"))
    assert len({n.casefold() for n in outputs}) == 7 and "plain.png" in outputs  # unclashed names stay plain
    assert main([str(cbz), "-o", str(out)]) == 0
    assert "0 colorized, 7 already done" in capsys.readouterr().out  # the same names on a rerun
    sources = list(members)
    assert batch.unique_names(sources) == batch.unique_names(list(sources))


def test_zip_bomb_member_is_skipped_with_its_reason(tmp_path, capsys, monkeypatch):
    """A member that inflates past the page limit is never read whole (before: 1 MiB -> 1 GiB in memory)."""
    monkeypatch.setattr(batch, "MAX_PAGE_BYTES", 1024 * 1024, raising=False)
    cbz = make_cbz(tmp_path / "bomb.cbz", {"01.png": page_png(10), "02_bomb.png": bytes(8 * 1024 * 1024)})
    assert (tmp_path / "bomb.cbz").stat().st_size < 100_000
    assert main([str(cbz), "-o", str(tmp_path / "out")]) == 1
    text = capsys.readouterr().out
    assert "1 colorized" in text and "failed: 02_bomb (02_bomb.png): expands to more than 1 MB" in text
    assert "zip bomb" in text


def test_page_over_the_pixel_limit_is_refused_before_decoding(tmp_path, capsys):
    """A 9000x9000 page header (81 Mpx, under Pillow's own 2x bomb limit) is refused from the header."""
    src = tmp_path / "pages"
    src.mkdir()
    (src / "huge.png").write_bytes(png_header_only(9000, 9000))
    (src / "ok.png").write_bytes(page_png())
    assert main([str(src), "-o", str(tmp_path / "out")]) == 1
    assert "failed: huge (huge.png): ink: 9000x9000 is larger than the limit" in capsys.readouterr().out


def png_header_only(w: int, h: int) -> bytes:
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IEND", b"")


def test_unwritable_layers_folder_is_refused_before_the_first_page(tmp_path, capsys, monkeypatch):
    import backend.pipeline

    def never(*a, **kw):  # type: ignore[no-untyped-def]
        raise AssertionError("no page may be colorized when the output cannot be written")

    monkeypatch.setattr(backend.pipeline, "colorize", never)
    cbz = make_cbz(tmp_path / "ch.cbz", {"01.png": page_png()})
    out = tmp_path / "out"
    out.mkdir()
    (out / "layers").write_text("a file where the layers folder should be")
    assert main([str(cbz), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "layers exists and is not a folder" in err and "Traceback" not in err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write in read-only folders")
def test_read_only_layers_folder_is_refused_before_the_first_page(tmp_path, capsys):
    cbz = make_cbz(tmp_path / "ch.cbz", {"01.png": page_png()})
    layers = tmp_path / "out" / "layers"
    layers.mkdir(parents=True)
    layers.chmod(0o555)
    try:
        assert main([str(cbz), "-o", str(tmp_path / "out")]) == 2
    finally:
        layers.chmod(0o755)
    assert "cannot write in" in capsys.readouterr().err


def test_output_folder_inside_the_source_is_not_taken_for_pages(tmp_path, capsys):
    src = tmp_path / "pages"
    src.mkdir()
    (src / "01.png").write_bytes(page_png())
    assert main([str(src), "-o", str(src / "color")]) == 0
    assert main([str(src), "-o", str(src / "color")]) == 0
    assert "0 colorized, 1 already done, 0 failed" in capsys.readouterr().out.splitlines()[-1]


def test_missing_source_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path / "nope.cbz"), "-o", str(tmp_path / "out")]) == 2
    assert "not found" in capsys.readouterr().err


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

NAME_PARTS = ["a", "b", "0", ".", "..", "/", "\\", ":", "C:", " ", "~", "\u202e", "\uff0f", "\uff0e", "\u2025", "\x00",
              "\u00e9", "e\u0301", "\u30da\u30fc\u30b8", "CON", "__MACOSX/", "page"]
member_name = st.builds(
    lambda parts, suffix: "".join(parts) + suffix,
    st.lists(st.sampled_from(NAME_PARTS), min_size=0, max_size=8),
    st.sampled_from([".png", ".PNG", ".jpg", ".dds", ""]),
).filter(bool)  # zipfile itself cannot write an empty name
member_data = st.sampled_from([page_png(10), page_png(40), malformed_dds(), noisy_png()[:500], b"", b"PK\x03\x04junk"])


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(members=st.lists(st.tuples(member_name, member_data), min_size=1, max_size=6))
def test_fuzzed_archives_never_stop_the_run_nor_write_outside(tmp_path_factory, members):
    root = tmp_path_factory.mktemp("fuzz")
    cbz = make_cbz(root / "ch.cbz", dict(members))
    out = root / "out"
    before = set(root.rglob("*"))
    assert main([str(cbz), "-o", str(out)]) in (0, 1, 2)  # 2: no page in the archive
    created = {p for p in set(root.rglob("*")) - before}
    assert all(p.resolve().is_relative_to(out.resolve()) for p in created), created
    assert not any(p.name.endswith(".part.png") for p in created)  # no half-written page left behind
