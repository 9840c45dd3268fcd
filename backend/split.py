"""The fixed train / held-out split that training honours and the bench evaluates on.

A file is held out when a hash of its path relative to the data root falls in the first tenth,
so the split is stable as folders grow. Pepper&Carrot pages are few and page-like, so their
held-out set is fixed by hand: episode 4 is for the bench, episode 1 for training.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

HELD_OUT_TENTHS = 1


def split_key(path: str | Path, root: str | Path | None = None) -> str:
    p = Path(path)
    if root is not None:
        try:
            p = p.resolve().relative_to(Path(root).resolve())
        except ValueError:
            pass
    return str(PurePosixPath(*p.parts))


def is_held_out(path: str | Path, root: str | Path | None = None) -> bool:
    key = split_key(path, root)
    name = PurePosixPath(key).name
    if "peppercarrot/" in key and name.startswith("en_episode-"):
        return name.startswith("en_episode-04")
    # OpenMoji pairs share a name between color/ and black/: hash the name alone so a pair stays together.
    if "openmoji" in key:
        key = "openmoji/" + PurePosixPath(key).stem
    digest = hashlib.sha1(key.encode("utf-8")).digest()
    return digest[0] % 10 < HELD_OUT_TENTHS
