"""Colorize a whole chapter: a folder of pages, or a .cbz/.zip archive.

Every page gets the same references, so a character keeps its colours across the chapter.
Finished pages are skipped on a rerun (resumable); a bad page is reported and skipped, never fatal.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image
from tqdm import tqdm

from .imageio import ImageError, load_hints, load_ink, load_reference
from .request import ColorizeOptions, ColorizeRequest, RequestError

PAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"}


@dataclass
class Page:
    name: str  # output stem, unique within the chapter
    read: "callable[[], bytes]"  # type: ignore[valid-type]


def list_pages(source: Path) -> list[Page]:
    """Pages in natural reading order (sorted by path), from a folder or an archive."""
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in PAGE_SUFFIXES)
        return [Page(name="_".join(p.relative_to(source).with_suffix("").parts), read=p.read_bytes) for p in files]
    if zipfile.is_zipfile(source):
        archive = zipfile.ZipFile(source)
        names = sorted(
            n for n in archive.namelist()
            if not n.endswith("/") and PurePosixPath(n).suffix.lower() in PAGE_SUFFIXES and "__MACOSX" not in n
        )
        return [
            Page(name="_".join(PurePosixPath(n).with_suffix("").parts), read=lambda n=n: archive.read(n))
            for n in names
        ]
    raise FileNotFoundError(f"{source} is neither a folder of pages nor a .cbz/.zip archive")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m backend batch", description=__doc__)
    p.add_argument("source", type=Path, help="folder of pages, or CHAPTER.cbz / CHAPTER.zip")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder for colour pages and colour layers")
    p.add_argument("--reference", type=Path, action="append", default=[], help="colour reference for every page (repeatable)")
    p.add_argument("--hints-dir", type=Path, help="folder of hint layers named like the pages (NAME.png or NAME_hints.png)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--reference-mode", choices=["histogram", "palette"], default="histogram")
    p.add_argument("--force", action="store_true", help="redo pages that are already done")
    args = p.parse_args(argv)

    from .pipeline import colorize, get_model

    try:
        pages = list_pages(args.source)
        references = [load_reference(r) for r in args.reference]
        options = ColorizeOptions.from_dict({"reference_mode": args.reference_mode})
        model = get_model(args.device)
    except (FileNotFoundError, ImageError, RequestError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not pages:
        print(f"error: no pages found in {args.source}", file=sys.stderr)
        return 2
    layers_dir = args.output / "layers"
    layers_dir.mkdir(parents=True, exist_ok=True)
    done = skipped = 0
    failed: list[tuple[str, str]] = []
    for page in tqdm(pages, desc="colorizing", unit="page"):
        out = args.output / f"{page.name}.png"
        layer_out = layers_dir / f"{page.name}_color.png"
        if out.exists() and layer_out.exists() and not args.force:
            skipped += 1
            continue
        try:
            ink = load_ink(page.read())
            hints = None
            if args.hints_dir:
                for candidate in (args.hints_dir / f"{page.name}.png", args.hints_dir / f"{page.name}_hints.png"):
                    if candidate.exists():
                        hints = load_hints(candidate)
                        break
            result = colorize(ColorizeRequest(ink=ink, hints=hints, references=references, options=options), model=model)
            # Write to temporary names first so an interrupted run never leaves a half page that counts as done.
            for arr, path in ((result.color_layer, layer_out), (result.composite, out)):
                tmp = path.with_name(path.stem + ".part.png")
                Image.fromarray(arr).save(tmp)
                tmp.replace(path)
            done += 1
        except (ImageError, RequestError, OSError, ValueError) as exc:
            failed.append((page.name, str(exc)))
            tqdm.write(f"skipped {page.name}: {exc}")
    print(f"{done} colorized, {skipped} already done, {len(failed)} failed -> {args.output}")
    for name, why in failed:
        print(f"  failed: {name}: {why}")
    return 0 if not failed else 1
