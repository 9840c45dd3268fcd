"""The backend's options as the docker holds them: the schema last sent by GET /v1/options (parsed by
options.py) and the user's values, saved in Krita's settings (group "mangacolor", key "options")."""

from __future__ import annotations

from typing import Any

from . import options
from .settings import SETTINGS_GROUP

OPTIONS_SETTING = "options"


class OptionValues:
    def __init__(self, app: Any):
        self._app = app
        self.specs: list[options.OptionSpec] = []
        self.values: dict = options.load_saved(self._read())

    def _read(self) -> str:
        read = getattr(self._app, "readSetting", None)
        if read is None:
            return ""
        try:
            return str(read(SETTINGS_GROUP, OPTIONS_SETTING, "") or "")
        except Exception:  # pragma: no cover - a broken settings file must not stop the plugin
            return ""

    def _write(self, value: str) -> None:
        write = getattr(self._app, "writeSetting", None)
        if write is not None:
            write(SETTINGS_GROUP, OPTIONS_SETTING, value)

    def take_schema(self, data: Any) -> bool:
        """A GET /v1/options answer; True when the schema changed (the docker rebuilds its controls)."""
        specs = options.parse_schema(data)
        if specs and specs != self.specs:
            self.specs = specs
            return True
        return False

    def value(self, name: str) -> Any:
        return options.effective_values(self.specs, self.values).get(name)

    def effective(self) -> dict:
        return options.effective_values(self.specs, self.values)

    def set(self, name: str, value: Any) -> None:
        """Raises ValueError for a value the option's spec refuses."""
        spec = next((s for s in self.specs if s.name == name), None)
        if spec is not None:
            value = options.coerce(spec, value)
        self.values[name] = value
        self._write(options.dump_saved(self.values))

    def reset(self) -> None:
        self.values = {}
        self._write("")

    def job_options(self) -> dict:
        """What a job sends: every known option, the user's value or the default."""
        return options.job_options(self.specs, self.values)

    def changed_from_default(self, sent: dict) -> dict:
        return options.changed_from_default(self.specs, sent)
