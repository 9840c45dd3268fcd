"""Colorize a whole chapter: a folder of pages, or a .cbz/.zip archive.

Every page gets the same references and palettes (one palette set for the chapter), so a character
keeps its colours across the chapter.
Finished pages are skipped on a rerun (resumable); a bad page is reported and skipped, never fatal.

Archives come from anywhere, so their member names and sizes are not trusted: output names are
rebuilt from safe characters only (no member name can lead outside the output folder), a member
is read only up to MAX_PAGE_BYTES, and an image's pixel count is checked before it is decoded.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np
from PIL import Image

from .colour_cli import add_colour_flags, sources_from_args
from .imageio import ImageError, load_hints, load_ink
from .options import add_cli_flags, from_cli
from .request import ColorizeOptions, ColorizeRequest, RequestError

PAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
MAX_PAGE_BYTES = 256 * 1024 * 1024  # a 64 Mpx page as an uncompressed RGBA TIFF fits; a zip bomb does not
MAX_NAME_CHARS = 120  # output stems stay well under file-system name limits with their suffixes
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)}


class PageError(Exception):
    """A page that cannot be done; the message says why, for the user."""


class BatchError(Exception):
    """The whole run cannot start (bad source, output folder not writable...)."""


@dataclass
class Page:
    source: str  # where the page comes from, as the user knows it: member name or relative path
    name: str  # output stem: safe, unique within the chapter, the same on every rerun
    read: Callable[[], bytes]


def _short_hash(text: str, n: int = 8) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:n]


def safe_stem(source: str) -> str:
    """A member name or relative path (without its suffix) -> one file-name stem.

    Only letters, digits, '-', '_' and inner dots survive, after NFKC normalisation (so a
    full-width solidus or dot is treated as the '/' or '.' it looks like); every separator
    ('/', '\\\\', ':') joins parts with '_'. The result has no separator, no '..', no drive,
    no control or bidi character, so it names a file inside the output folder and nothing else."""
    text = unicodedata.normalize("NFKC", source)
    parts = []
    for part in re.split(r"[\\/:]+", text):
        part = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in part).strip("._ ")
        if part:
            parts.append(part)
    stem = "_".join(parts) or "page"
    if stem.split(".")[0].upper() in WINDOWS_RESERVED:
        stem += "_"
    if len(stem) > MAX_NAME_CHARS:
        stem = f"{stem[: MAX_NAME_CHARS - 9]}-{_short_hash(source)}"
    return stem


def _without_suffix(source: str) -> str:
    suffix = PurePosixPath(source.replace("\\", "/")).suffix
    return source[: len(source) - len(suffix)] if suffix else source


def unique_names(sources: list[str]) -> list[str]:
    """Output stems for a chapter's pages: `a/b.png` and `a_b.png`, or `002.jpg` and `002.png`,
    would share a stem, so every page of such a group gets a short hash of its own source name
    (compared case-insensitively, as on Windows and macOS). They depend only on the chapter's
    page names, so a rerun finds its finished pages again."""
    stems = [safe_stem(_without_suffix(s)) for s in sources]
    for n in (8, 16, 40):
        groups: dict[str, int] = {}
        for stem in stems:
            groups[stem.casefold()] = groups.get(stem.casefold(), 0) + 1
        if all(count == 1 for count in groups.values()):
            return stems
        stems = [
            f"{stem}-{_short_hash(source, n)}" if groups[stem.casefold()] > 1 else stem
            for stem, source in zip(stems, sources)
        ]
    raise BatchError("could not give every page its own output name")  # needs a SHA-1 collision


def _read_file(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_PAGE_BYTES:
        raise PageError(f"file is {size / 2**20:.0f} MB, over the {MAX_PAGE_BYTES // 2**20} MB limit for a page")
    with open(path, "rb") as f:
        data = f.read(MAX_PAGE_BYTES + 1)
    if len(data) > MAX_PAGE_BYTES:
        raise PageError(f"file is over the {MAX_PAGE_BYTES // 2**20} MB limit for a page")
    return data


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    # The declared size is checked first, then the bytes really inflated: a member can lie about its size.
    why = (
        f"expands to more than {MAX_PAGE_BYTES // 2**20} MB (a page never needs that; "
        f"{info.compress_size / 2**20:.1f} MB compressed: a zip bomb?)"
    )
    if info.file_size > MAX_PAGE_BYTES:
        raise PageError(why)
    with archive.open(info) as member:
        data = member.read(MAX_PAGE_BYTES + 1)
    if len(data) > MAX_PAGE_BYTES:
        raise PageError(why)
    return data


def list_pages(source: Path, exclude: Path | None = None) -> list[Page]:
    """Pages in reading order (sorted by path), from a folder or an archive. `exclude`: a folder
    inside `source` (the output folder) whose images are results, not pages."""
    if source.is_dir():
        skip = exclude.resolve() if exclude is not None else None
        files = sorted(
            p for p in source.rglob("*")
            if p.is_file() and p.suffix.lower() in PAGE_SUFFIXES
            and not (skip is not None and p.resolve().is_relative_to(skip))
        )
        sources = [p.relative_to(source).as_posix() for p in files]
        return [
            Page(source=s, name=n, read=lambda p=p: _read_file(p))
            for s, n, p in zip(sources, unique_names(sources), files)
        ]
    if zipfile.is_zipfile(source):
        try:
            archive = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise BatchError(f"{source}: not a readable archive ({exc})") from None
        infos = sorted(
            (i for i in archive.infolist()
             if i.filename and not i.filename.endswith("/")  # a name cut at a NUL byte can be empty
             and PurePosixPath(i.filename.replace("\\", "/")).suffix.lower() in PAGE_SUFFIXES
             and "__MACOSX" not in i.filename),
            key=lambda i: i.filename,
        )
        sources = [i.filename for i in infos]
        return [
            Page(source=s, name=n, read=lambda i=i: _read_member(archive, i))
            for s, n, i in zip(sources, unique_names(sources), infos)
        ]
    if not source.exists():
        raise BatchError(f"{source} not found")
    raise BatchError(f"{source} is neither a folder of pages nor a .cbz/.zip archive")


def prepare_output(output: Path) -> Path:
    """Create OUT_DIR and OUT_DIR/layers and prove both writable before the first page is done."""
    layers = output / "layers"
    for folder in (output, layers):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise BatchError(f"{folder} exists and is not a folder") from None
        except OSError as exc:
            raise BatchError(f"cannot create {folder}: {exc.strerror or exc}") from None
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            raise BatchError(f"cannot write in {folder}: {exc.strerror or exc}") from None
    return layers


def inside(folder: Path, filename: str) -> Path:
    """folder/filename, checked once more on the resolved path (a planted link does not lead out)."""
    path = folder / filename
    if path.resolve().parent != folder.resolve():
        raise PageError(f"output {path} would be written outside {folder}; not written")
    return path


def write_png(arr: np.ndarray, path: Path) -> None:
    """Through a fresh temporary name in the same folder: an interrupted run never leaves a half
    page that counts as done, and no existing file or link is written through."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".mangacolor-", suffix=".part.png")
    try:
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(arr).save(f, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def failure_reason(exc: BaseException) -> str:
    if isinstance(exc, (PageError, ImageError, RequestError)):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory on this page"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return f"{exc.__class__.__name__}: {exc}"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m backend batch", description=__doc__)
    p.add_argument("source", type=Path, help="folder of pages, or CHAPTER.cbz / CHAPTER.zip")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder for colour pages and colour layers")
    add_colour_flags(p, "every page")
    p.add_argument("--hints-dir", type=Path, help="folder of hint layers named like the pages (NAME.png or NAME_hints.png)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--force", action="store_true", help="redo pages that are already done")
    add_cli_flags(p, ColorizeOptions)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)

    from tqdm import tqdm

    from .pipeline import colorize, get_model

    try:
        pages = list_pages(args.source, exclude=args.output)
        if not pages:
            raise BatchError(f"no pages found in {args.source}")
        colours = sources_from_args(args.reference, args.palette)  # one set for the whole chapter
        options = from_cli(ColorizeOptions, args)
        layers_dir = prepare_output(args.output)  # before the model's load and the first page
        model = get_model(args.device)
    except (BatchError, FileNotFoundError, ImageError, RequestError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    done = skipped = 0
    failed: list[tuple[Page, str]] = []
    try:
        for page in tqdm(pages, desc="colorizing", unit="page"):
            try:
                out = inside(args.output, f"{page.name}.png")
                layer_out = inside(layers_dir, f"{page.name}_color.png")
                if out.exists() and layer_out.exists() and not args.force:
                    skipped += 1
                    continue
                ink = load_ink(page.read())
                hints = None
                if args.hints_dir:
                    for candidate in (args.hints_dir / f"{page.name}.png", args.hints_dir / f"{page.name}_hints.png"):
                        if candidate.exists():
                            hints = load_hints(candidate)
                            break
                request = ColorizeRequest(
                    ink=ink, hints=hints, references=list(colours.references), palettes=list(colours.palettes),
                    reference_weights=list(colours.weights) if colours.weights is not None else None, options=options,
                )
                result = colorize(request, model=model)
                del request
                del ink, hints
                for i, (layer, composite) in enumerate(zip(result.variants, result.variant_composites() if result.variants else []), 2):
                    # --variants N: variant i next to the page's outputs, as NAME_vI.png (variant 1 is the page's own)
                    write_png(layer, layer_out.with_name(f"{layer_out.stem}_v{i}{layer_out.suffix}"))
                    write_png(composite, out.with_name(f"{out.stem}_v{i}{out.suffix}"))
                write_png(result.color_layer, layer_out)
                write_png(result.composite, out)
                done += 1
            except Exception as exc:  # one bad page never stops the chapter
                failed.append((page, failure_reason(exc)))
                tqdm.write(f"skipped {page.source}: {failed[-1][1]}")
    except KeyboardInterrupt:
        print(f"\ninterrupted: {done} colorized; rerun the same command to resume", file=sys.stderr)
        return 130
    print(f"{done} colorized, {skipped} already done, {len(failed)} failed -> {args.output}")
    for page, why in failed:
        print(f"  failed: {page.name} ({page.source}): {why}")
    return 0 if not failed else 1
