"""Per-user configuration shared by the server, the CLI and the Krita plugin: the access token."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path


def config_dir() -> Path:
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "mangacolor"


def token_path() -> Path:
    return config_dir() / "token"


class TokenFileError(Exception):
    """The token file cannot be used safely; the message says what to do."""


def _make_private(path: Path, mode: int) -> None:
    """Others must not read the token (anyone who has it can drive the backend): tighten a file or
    folder that is open to them, or refuse with a message when that is not possible."""
    if sys.platform == "win32":
        return  # permissions are ACLs there; the per-user APPDATA folder is private already
    current = path.stat().st_mode & 0o777
    if current & 0o077 == 0:
        return
    try:
        os.chmod(path, mode)
    except OSError as exc:
        raise TokenFileError(
            f"{path} can be read by other users (mode {current:o}) and could not be made private ({exc}); "
            f"run `chmod {mode:o} {path}` or delete it to get a new token"
        ) from None


def ensure_token() -> str:
    """Read the user's access token, creating it (readable by the user only) if there is none.

    The config folder is created 0700 whatever the umask; an existing token file that others can
    read is made private (or refused with a message), never used silently."""
    path = token_path()
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(path.parent, 0o700)  # mkdir's mode is filtered by the umask
    else:
        _make_private(path.parent, 0o700)
    if path.exists():
        _make_private(path, 0o600)
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return token
