"""Small text files users hand us (palettes, panels files): read with a size cap and an error the user can act on."""

from __future__ import annotations

from pathlib import Path


def read_small_text(path: Path, max_bytes: int, what: str, error: type[Exception], missing_hint: str = "") -> str:
    """The UTF-8 text of `path`, or `error` saying what is wrong: missing, too large to be a `what`, unreadable."""
    path = Path(path)
    try:
        if path.stat().st_size > max_bytes:
            raise error(f"{path.name} is too large to be a {what}")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} not found: {path}{missing_hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {what} {path.name}: {exc}") from None
