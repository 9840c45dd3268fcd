"""Colorization options, declared once.

Every field of `request.ColorizeOptions` is made with `option(default, help, min=, max=, choices=)`;
everything else is derived from that one declaration:

- the HTTP schema, GET /v1/options (`schema`), from which the Krita docker builds its controls;
- the validation (`problem`), used by `ColorizeOptions` for the API, the CLI and the batch;
- the command-line flags of `colorize` and `batch` (`add_cli_flags`, `from_cli`).

So adding an option is one field in `ColorizeOptions` and no other edit. An option's kind comes from
its default (bool, int, float, str) or is `enum` when it has choices. Its flag is `--name-with-dashes`,
or `--no-name` for a bool that is on by default; `flag=` overrides it.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import Field, field, fields
from typing import Any, Iterable


def option(
    default: Any,
    help: str,
    *,
    min: float | None = None,
    max: float | None = None,
    choices: Iterable[str] | None = None,
    flag: str | None = None,
) -> Any:
    """A dataclass field that declares one option: its default, help, range or choices, CLI flag."""
    meta = {"help": " ".join(help.split()), "min": min, "max": max, "choices": tuple(choices or ()), "flag": flag}
    return field(default=default, metadata=meta)


def kind(f: Field) -> str:
    """'enum', 'bool', 'int', 'float' or 'string'."""
    if f.metadata.get("choices"):
        return "enum"
    for python_type, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "string")):
        if isinstance(f.default, python_type):
            return name
    raise TypeError(f"option {f.name}: a default of type {type(f.default).__name__} is not supported")


def _bounds(f: Field) -> str:
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    if lo is not None and hi is not None:
        return f" between {lo:g} and {hi:g}"
    if lo is not None:
        return f" of at least {lo:g}"
    if hi is not None:
        return f" of at most {hi:g}"
    return ""


def requirement(f: Field) -> str:
    """What a value of this option must be, as said to the user: 'working_size must be ...'."""
    k = kind(f)
    if k == "enum":
        names = [repr(c) for c in f.metadata["choices"]]
        return f"{f.name} must be " + (" or ".join(names) if len(names) <= 2 else "one of " + ", ".join(names))
    if k == "bool":
        return f"{f.name} must be true or false"
    if k == "string":
        return f"{f.name} must be text"
    return f"{f.name} must be {'an integer' if k == 'int' else 'a number'}{_bounds(f)}"


def problem(f: Field, value: Any) -> str | None:
    """None when `value` is a valid value of the option, else the message that says what it must be."""
    k = kind(f)
    if k == "enum":
        ok = isinstance(value, str) and value in f.metadata["choices"]
    elif k == "bool":
        ok = isinstance(value, bool)
    elif k == "string":
        ok = isinstance(value, str)
    else:
        types = (int,) if k == "int" else (int, float)
        ok = isinstance(value, types) and not isinstance(value, bool)
        ok = ok and not (isinstance(value, float) and not math.isfinite(value))
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        ok = ok and (lo is None or value >= lo) and (hi is None or value <= hi)
    return None if ok else requirement(f)


def schema(cls: type) -> list[dict[str, Any]]:
    """Every option with its type, default, range or choices and help (the body of GET /v1/options)."""
    out = []
    for f in fields(cls):
        k = kind(f)
        entry: dict[str, Any] = {"name": f.name, "type": k, "default": f.default, "help": f.metadata["help"]}
        if k == "enum":
            entry["choices"] = list(f.metadata["choices"])
        for bound in ("min", "max"):
            if f.metadata.get(bound) is not None:
                entry[bound] = f.metadata[bound]
        out.append(entry)
    return out


def cli_flag(f: Field) -> str:
    if f.metadata.get("flag"):
        return f.metadata["flag"]
    dashed = f.name.replace("_", "-")
    return f"--no-{dashed}" if kind(f) == "bool" and f.default else f"--{dashed}"


def _cli_value(f: Field):  # type: ignore[no-untyped-def]
    convert = {"int": int, "float": float, "string": str}[kind(f)]

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{requirement(f)}, not {text!r}") from None
        why = problem(f, value)
        if why is not None:
            raise argparse.ArgumentTypeError(f"{why}, not {text}")
        return value

    return parse


def add_cli_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """One flag per option: a bad value is argparse's one-line error and exit code 2."""
    group = parser.add_argument_group("colorization options (the same as GET /v1/options and the docker's)")
    for f in fields(cls):
        k, helptext = kind(f), f.metadata["help"].replace("%", "%%")
        if k == "bool":
            action, state = ("store_false", "off (it is on") if f.default else ("store_true", "on (it is off")
            group.add_argument(
                cli_flag(f), dest=f.name, action=action, default=f.default, help=f"turn {f.name} {state} by default): {helptext}"
            )
        elif k == "enum":
            group.add_argument(cli_flag(f), dest=f.name, choices=list(f.metadata["choices"]), default=f.default, help=helptext)
        else:
            group.add_argument(
                cli_flag(f), dest=f.name, type=_cli_value(f), default=f.default, metavar=k.upper(),
                help=f"{helptext} (default {f.default})",
            )


def from_cli(cls: type, args: argparse.Namespace) -> Any:
    """The options a command line parsed with `add_cli_flags` asks for."""
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})
