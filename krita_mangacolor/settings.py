"""Plugin configuration: backend URL, server command, layer names, and the backend's access token.

Sources, strongest first:
  1. environment: MANGACOLOR_URL overrides the URL (tests and power users);
  2. what the user saved in the docker (Krita settings, group "mangacolor");
  3. backend_config.json next to this package's __init__.py (written by install.py):
       {"url": "http://127.0.0.1:8765", "server_command": ["/abs/.venv/bin/python", "-m", "backend",
        "serve", "--port", "8765"], "cwd": "/abs/project"}
  4. built-in defaults.
Pure stdlib; Krita's readSetting/writeSetting are passed in, so this is testable without Krita.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import urlsplit

DEFAULT_URL = "http://127.0.0.1:8765"
DEFAULT_HINT_LAYER = "Hints"
DEFAULT_REFERENCE_LAYER = "Reference"
DEFAULT_DRAFT_LAYER = "Draft"  # rough colour washes (issue 13); "Keep as draft" writes one
RESULT_LAYER_NAME = "MangaColor"
SETTINGS_GROUP = "mangacolor"
CONFIG_FILE_NAME = "backend_config.json"
DEFAULT_STARTUP_TIMEOUT = 180.0  # seconds: first start imports torch and loads the weights


ReadSetting = Callable[[str, str, str], str]
WriteSetting = Callable[[str, str, str], None]


@dataclass
class Settings:
    url: str = DEFAULT_URL
    server_command: list[str] = field(default_factory=list)
    cwd: str = ""
    hint_layer: str = DEFAULT_HINT_LAYER
    reference_layer: str = DEFAULT_REFERENCE_LAYER
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    url_from_env: bool = False
    notes: list[str] = field(default_factory=list)  # problems met while loading, for the status line

    @property
    def can_start_server(self) -> bool:
        return bool(self.server_command)

    def command_text(self) -> str:
        return join_command(self.server_command)


def plugin_dir() -> Path:
    return Path(__file__).resolve().parent


def config_file_path() -> Path:
    return plugin_dir() / CONFIG_FILE_NAME


def normalize_url(url: str) -> str:
    url = (url or "").strip().rstrip("/")
    if url and "://" not in url:
        url = "http://" + url
    return url


def manual_start_hint(url: str = DEFAULT_URL) -> str:
    """How a user starts the backend by hand (shown when it is not running and cannot be started)."""
    try:
        port = urlsplit(normalize_url(url)).port or 8765
    except ValueError:
        port = 8765
    return f"python -m backend serve --port {port}   (from the MangaColor folder, with its .venv python)"


def split_command(text: str) -> list[str]:
    """A command line typed by the user -> argv. Raises ValueError on unbalanced quotes."""
    text = (text or "").strip()
    if not text:
        return []
    if text.startswith("["):  # a JSON list, as in backend_config.json
        value = json.loads(text)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("the server command must be a list of strings")
        return value
    return shlex.split(text, posix=sys.platform != "win32")


def join_command(argv: list[str]) -> str:
    if sys.platform == "win32":
        return " ".join(f'"{a}"' if (" " in a or not a) else a for a in argv)
    return shlex.join(argv)


def load_file_config(path: Path | None = None) -> tuple[dict, list[str]]:
    """Read backend_config.json; a missing file is normal (plugin installed by hand)."""
    path = path or config_file_path()
    if not path.exists():
        return {}, []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {}, [f"ignored {path}: {exc}"]
    if not isinstance(data, dict):
        return {}, [f"ignored {path}: not a JSON object"]
    notes = []
    command = data.get("server_command")
    if command is not None and not (isinstance(command, list) and all(isinstance(c, str) for c in command)):
        notes.append(f"ignored server_command in {path}: it must be a list of strings")
        data = dict(data)
        data.pop("server_command")
    return data, notes


def load_settings(
    read_setting: ReadSetting | None = None,
    env: Mapping[str, str] | None = None,
    file_path: Path | None = None,
) -> Settings:
    env = os.environ if env is None else env
    data, notes = load_file_config(file_path)

    def saved(key: str) -> str:
        if read_setting is None:
            return ""
        try:
            return str(read_setting(SETTINGS_GROUP, key, "") or "")
        except Exception:  # a broken settings file must not stop the plugin
            return ""

    s = Settings(notes=list(notes))
    s.url = normalize_url(str(data.get("url") or "")) or DEFAULT_URL
    s.server_command = list(data.get("server_command") or [])
    s.cwd = str(data.get("cwd") or "")

    if saved("url"):
        s.url = normalize_url(saved("url"))
    if saved("server_command"):
        try:
            s.server_command = split_command(saved("server_command"))
        except ValueError as exc:
            s.notes.append(f"ignored the saved server command: {exc}")
    if saved("cwd"):
        s.cwd = saved("cwd")
    if saved("hint_layer"):
        s.hint_layer = saved("hint_layer")
    if saved("reference_layer"):
        s.reference_layer = saved("reference_layer")
    if saved("startup_timeout"):
        try:
            s.startup_timeout = max(5.0, float(saved("startup_timeout")))
        except ValueError:
            pass

    if env.get("MANGACOLOR_URL"):
        s.url = normalize_url(env["MANGACOLOR_URL"])
        s.url_from_env = True
    if not s.cwd and s.server_command:
        s.cwd = str(plugin_dir())
    return s


def save_settings(write_setting: WriteSetting, settings: Settings) -> None:
    """Store what the user edited in the docker. An empty value falls back to the file/defaults."""
    write_setting(SETTINGS_GROUP, "url", "" if settings.url_from_env else settings.url)
    write_setting(SETTINGS_GROUP, "server_command", json.dumps(settings.server_command) if settings.server_command else "")
    write_setting(SETTINGS_GROUP, "cwd", settings.cwd)
    write_setting(SETTINGS_GROUP, "hint_layer", settings.hint_layer)
    write_setting(SETTINGS_GROUP, "reference_layer", settings.reference_layer)


# --- access token (same rules as backend/config.py) ---


def token_dir(env: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    env = os.environ if env is None else env
    platform = platform or sys.platform
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
    if platform == "win32":
        base = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
    elif platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    return base / "mangacolor"


def token_path(env: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    return token_dir(env, platform) / "token"


def read_token(env: Mapping[str, str] | None = None, platform: str | None = None) -> str | None:
    """The backend's access token, or None if the server has not created it yet."""
    try:
        token = token_path(env, platform).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return token or None
