"""The backend's colorization options (GET /v1/options) as data: parse the schema, keep values, build the
job's "options" dict. The docker builds one control per option from this, so it grows with the backend.

Schema entries: {"name", "type": "enum"|"bool"|"int"|"float"|"string"|..., "default", "help",
"min"?, "max"?, "choices"?}. Unknown types are kept (shown as a text field holding JSON), malformed entries
are skipped. Pure Python, no Qt.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass(frozen=True)
class OptionSpec:
    name: str
    type: str
    default: Any
    help: str = ""
    min: Optional[float] = None
    max: Optional[float] = None
    choices: tuple = field(default_factory=tuple)

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").strip().capitalize()


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def parse_schema(value: Any) -> list[OptionSpec]:
    """The body of GET /v1/options ({"options": [...]} or the bare list) -> specs, malformed entries skipped."""
    items = value.get("options") if isinstance(value, dict) else value
    if not isinstance(items, list):
        return []
    specs: list[OptionSpec] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        name = item.get("name")
        if not isinstance(name, str) or not name or name in seen:
            continue
        kind = str(item.get("type") or "").lower() or _infer_type(item.get("default"))
        choices = tuple(item.get("choices") or ()) if isinstance(item.get("choices"), (list, tuple)) else ()
        if kind == "enum" and not choices:
            kind = "string"
        spec = OptionSpec(
            name=name,
            type=kind,
            default=item.get("default"),
            help=str(item.get("help") or ""),
            min=_number(item.get("min")),
            max=_number(item.get("max")),
            choices=choices,
        )
        try:
            spec = OptionSpec(**{**spec.__dict__, "default": coerce(spec, spec.default)})
        except ValueError:
            continue  # a default that does not fit its own type: not an option we can offer
        seen.add(name)
        specs.append(spec)
    return specs


def _infer_type(default: Any) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "string"
    return "json"


def coerce(spec: OptionSpec, value: Any) -> Any:
    """value as the option's type, within its range. Raises ValueError when it cannot be."""
    t = spec.type
    if t == "bool":
        if isinstance(value, bool):
            return value
        if value in (0, 1, "true", "false", "True", "False"):
            return value in (1, "true", "True")
        raise ValueError(f"{spec.name}: {value!r} is not true/false")
    if t == "int":
        if isinstance(value, bool):
            raise ValueError(f"{spec.name}: {value!r} is not a whole number")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ValueError(f"{spec.name}: {value!r} is not a whole number") from None
        if not isinstance(value, int):
            raise ValueError(f"{spec.name}: {value!r} is not a whole number")
        return _clamp(spec, value, int)
    if t == "float":
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise ValueError(f"{spec.name}: {value!r} is not a number") from None
        if _number(value) is None:
            raise ValueError(f"{spec.name}: {value!r} is not a number")
        return _clamp(spec, float(value), float)
    if t == "enum":
        if value not in spec.choices:
            raise ValueError(f"{spec.name}: {value!r} is not one of {', '.join(map(str, spec.choices))}")
        return value
    if t == "string":
        if not isinstance(value, str):
            raise ValueError(f"{spec.name}: {value!r} is not text")
        return value
    # unknown type: any JSON value (a text field holding JSON in the docker)
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise ValueError(f"{spec.name}: {value!r} is not a JSON value") from None
    return value


def _clamp(spec: OptionSpec, value, kind):
    if spec.min is not None and value < spec.min:
        raise ValueError(f"{spec.name}: {value} is below the minimum {kind(spec.min)}")
    if spec.max is not None and value > spec.max:
        raise ValueError(f"{spec.name}: {value} is above the maximum {kind(spec.max)}")
    return value


def effective_values(specs: list[OptionSpec], saved: dict) -> dict:
    """One value per option: the saved one when it still fits the backend's schema, else the default."""
    out = {}
    for spec in specs:
        value = spec.default
        if spec.name in saved:
            try:
                value = coerce(spec, saved[spec.name])
            except ValueError:
                value = spec.default
        out[spec.name] = value
    return out


def job_options(specs: list[OptionSpec], saved: dict) -> dict:
    """The job's "options": every option the backend offers, with the user's value. Without a schema
    (options not fetched yet) nothing is sent, so the backend uses its defaults."""
    return effective_values(specs, saved) if specs else {}


def changed_from_default(specs: list[OptionSpec], saved: dict) -> dict:
    values = effective_values(specs, saved)
    return {s.name: values[s.name] for s in specs if values[s.name] != s.default}


def load_saved(text: str) -> dict:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def dump_saved(values: dict) -> str:
    return json.dumps(values, sort_keys=True)
