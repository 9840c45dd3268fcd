"""Every colorization option round-trips, with the same default and range, through each place it
appears: the declaration (request.ColorizeOptions), the CLI of `colorize` and `batch`, the HTTP schema
and validation, and the Krita docker's widget spec (krita_mangacolor.options). An option added in one
place only (a hand-written flag, schema entry or parameter) fails here."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from backend import batch
from backend.__main__ import colorize_parser, main
from backend.jobs import JobRunner
from backend.options import cli_flag, kind, requirement
from backend.request import ColorizeOptions, ColorizeResult
from backend.server import create_app
from api_images import png_b64
from krita_mangacolor import options as docker_options

TOKEN = "t"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OPTIONS = list(fields(ColorizeOptions))
IDS = [f.name for f in OPTIONS]
# Command-line arguments that are not colorization options (inputs, outputs, device, run control).
NOT_OPTIONS = {
    "colorize": {"ink", "hints", "reference", "palette", "device", "output", "color_layer", "panels", "draft", "help"},
    "batch": {"source", "output", "reference", "palette", "hints_dir", "device", "force", "help"},
}
PARSERS = {"colorize": (colorize_parser, ["ink.png", "-o", "out.png"]), "batch": (batch.parser, ["pages", "-o", "out"])}


INK = png_b64(np.full((24, 16), 255, np.uint8))


def bad_values(f) -> list[Any]:
    """Values the option must refuse, as JSON would carry them."""
    k, lo, hi = kind(f), f.metadata.get("min"), f.metadata.get("max")
    if k == "enum":
        return ["not-a-choice", 1, None]
    if k == "bool":
        return ["yes", 1, None]
    out: list[Any] = ["x", True, None]
    step = 1 if k == "int" else 0.5
    out += [lo - step] if lo is not None else []
    out += [hi + step] if hi is not None else []
    return out + ([512.5] if k == "int" else [])


def good_value(f) -> Any:
    """A valid value other than the default."""
    k = kind(f)
    if k == "enum":
        return next(c for c in f.metadata["choices"] if c != f.default)
    if k == "bool":
        return not f.default
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    value = lo if lo is not None and lo != f.default else hi if hi is not None and hi != f.default else f.default + 1
    return int(value) if k == "int" else float(value)


class Recorder:
    """The job runner's colorize, recording the options each request arrived with (no network run)."""

    def __init__(self) -> None:
        self.seen: list[ColorizeOptions] = []

    def __call__(self, request, progress=None, cancelled=None) -> ColorizeResult:
        self.seen.append(request.options)
        layer = np.zeros(request.ink.shape + (4,), np.uint8)
        return ColorizeResult(color_layer=layer, model_version="test", seconds={}, ink=request.ink)


@pytest.fixture(scope="module")
def server():
    recorder = Recorder()
    client = TestClient(create_app(TOKEN, JobRunner(run=recorder)), base_url="http://127.0.0.1:8765", client=("127.0.0.1", 5))
    served = client.get("/v1/options", headers=AUTH).json()
    return client, recorder, served


def served_entry(served: dict, name: str) -> dict:
    entries = [e for e in served["options"] if e["name"] == name]
    assert len(entries) == 1, f"GET /v1/options lists {name} {len(entries)} times"
    return entries[0]


# --- every place has exactly the declared options ---


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_cli_flags_are_exactly_the_declared_options(command):
    make, _ = PARSERS[command]
    dests = {a.dest for a in make()._actions}
    assert dests - NOT_OPTIONS[command] == set(IDS), (
        "a flag that is not a declared option, or an option without its flag: declare options in "
        "request.ColorizeOptions (the flags are derived from it) or list a non-option flag in NOT_OPTIONS"
    )


def test_schema_and_docker_have_exactly_the_declared_options(server):
    client, _, served = server
    assert [e["name"] for e in served["options"]] == IDS
    assert [s.name for s in docker_options.parse_schema(served)] == IDS
    known = client.post("/v1/jobs", json={"ink": INK, "options": {"not_an_option": 1}}, headers=AUTH)
    assert known.status_code == 400 and all(name in known.json()["error"] for name in IDS)


# --- each option, through each place ---


@pytest.mark.parametrize("f", OPTIONS, ids=IDS)
@pytest.mark.parametrize("command", sorted(PARSERS))
def test_cli_round_trip(f, command, capsys):
    make, required = PARSERS[command]
    flag = cli_flag(f)
    assert flag in make()._option_string_actions, f"{command} has no {flag}"
    args = make().parse_args(required)
    assert getattr(args, f.name) == f.default and type(getattr(args, f.name)) is type(f.default)
    good = good_value(f)
    given = [flag] if kind(f) == "bool" else [flag, str(good)]
    assert getattr(make().parse_args(required + given), f.name) == good
    for bad in bad_values(f) if kind(f) != "bool" else []:
        if bad is None or isinstance(bad, bool):
            continue  # not something a command line can say
        with pytest.raises(SystemExit) as exit_:
            make().parse_args(required + [flag, str(bad)])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert flag in err and "Traceback" not in err
        assert (requirement(f) if kind(f) != "enum" else "invalid choice") in err, err


@pytest.mark.parametrize("f", OPTIONS, ids=IDS)
def test_cli_refuses_a_bad_value_before_any_work(f, tmp_path, capsys):
    """Through main(): exit code 2 and a one-line reason, not a traceback."""
    if kind(f) == "bool":
        pytest.skip("a flag without a value has no bad value")
    bad = next(b for b in bad_values(f) if b is not None and not isinstance(b, bool))
    with pytest.raises(SystemExit) as exit_:
        main(["colorize", str(tmp_path / "ink.png"), "-o", str(tmp_path / "o.png"), cli_flag(f), str(bad)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("python -m backend colorize: error:")


@pytest.mark.parametrize("f", OPTIONS, ids=IDS)
def test_http_schema_and_validation_round_trip(f, server):
    client, recorder, served = server
    entry = served_entry(served, f.name)
    assert entry["type"] == kind(f) and entry["default"] == f.default and type(entry["default"]) is type(f.default)
    assert entry["help"] and entry["help"] == f.metadata["help"]
    assert entry.get("min") == f.metadata["min"] and entry.get("max") == f.metadata["max"]
    assert entry.get("choices", []) == list(f.metadata["choices"])
    for bad in bad_values(f):
        r = client.post("/v1/jobs", json={"ink": INK, "options": {f.name: bad}}, headers=AUTH)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"] == requirement(f)
    good = good_value(f)
    r = client.post("/v1/colorize", json={"ink": INK, "options": {f.name: good}}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert recorder.seen[-1] == ColorizeOptions(**{f.name: good})
    assert getattr(recorder.seen[-1], f.name) == good


@pytest.mark.parametrize("f", OPTIONS, ids=IDS)
def test_docker_widget_spec_round_trip(f, server):
    _, _, served = server
    spec = {s.name: s for s in docker_options.parse_schema(served)}[f.name]
    assert spec.type == kind(f) and spec.default == f.default and spec.help == f.metadata["help"]
    assert spec.min == f.metadata["min"] and spec.max == f.metadata["max"]
    assert spec.choices == f.metadata["choices"]
    assert docker_options.coerce(spec, good_value(f)) == good_value(f)
    for bad in bad_values(f):
        if kind(f) == "bool" and bad == 1:
            continue  # the docker reads a saved 1 as true (an old setting), then sends true
        with pytest.raises(ValueError):
            docker_options.coerce(spec, bad)


def test_docker_sends_what_the_backend_accepts(server):
    """The docker's job options, at their defaults and changed, are taken by the backend as they are."""
    client, recorder, served = server
    specs = docker_options.parse_schema(served)
    defaults = docker_options.job_options(specs, {})
    assert defaults == asdict(ColorizeOptions())
    changed = docker_options.job_options(specs, {f.name: good_value(f) for f in OPTIONS})
    r = client.post("/v1/colorize", json={"ink": INK, "options": changed}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert asdict(recorder.seen[-1]) == changed != defaults


def test_the_options_of_this_release_are_kept():
    """Names, defaults and ranges clients and scripts rely on (others may be added)."""
    declared = {f.name: (f.default, kind(f), f.metadata["min"], f.metadata["max"], f.metadata["choices"]) for f in OPTIONS}
    assert declared["reference_mode"] == ("histogram", "enum", None, None, ("histogram", "palette"))
    assert declared["working_size"] == (768, "int", 64, 4096, ())
    assert declared["palette_strength"] == (1.0, "float", 0.0, 1.0, ())
    assert declared["flat_regions"] == (0.6, "float", 0.0, 1.0, ())
    assert declared["keep_white"] == (True, "bool", None, None, ())
    assert cli_flag(next(f for f in OPTIONS if f.name == "keep_white")) == "--no-keep-white"
