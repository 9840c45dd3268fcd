"""MangaColor backend: colorizes black-and-white manga pages (see README.md)."""

__version__ = "0.1.0"
API_VERSION = "v1"
