"""`python -m backend bench`: how good and how fast the colorizer is, next to what a colorist could
use instead (no colour, Levin et al. 2004 optimisation, flat fill of line-enclosed regions).
See docs/BENCHMARKS.md."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    from .cli import main as _main

    return _main(argv)


__all__ = ["main"]
