"""The backend's option schema -> specs, values and the job's options (pure)."""

import pytest

from fake_backend import OPTIONS
from krita_mangacolor import options


def test_parse_the_backend_schema():
    specs = options.parse_schema({"options": OPTIONS})
    assert [(s.name, s.type) for s in specs] == [("reference_mode", "enum"), ("working_size", "int"), ("keep_white", "bool"), ("flat_regions", "float")]
    ws = specs[1]
    assert (ws.min, ws.max, ws.default, ws.label) == (64, 4096, 768, "Working size")
    assert specs[0].choices == ("histogram", "palette")


def test_malformed_entries_are_skipped_unknown_types_kept():
    specs = options.parse_schema([
        {"name": "a", "type": "int", "default": "x"},  # default not an int
        {"type": "bool", "default": True},  # no name
        "junk",
        {"name": "b", "type": "enum", "default": "q"},  # enum without choices -> text
        {"name": "c", "type": "vector", "default": [1, 2]},
        {"name": "c", "type": "bool", "default": True},  # duplicate
        {"name": "d", "default": 0.5},  # type inferred
    ])
    assert [(s.name, s.type) for s in specs] == [("b", "string"), ("c", "vector"), ("d", "float")]
    assert options.parse_schema(None) == [] and options.parse_schema({"options": 3}) == []


@pytest.mark.parametrize("value,expected", [(512, 512), (512.0, 512), ("300", 300)])
def test_coerce_int(value, expected):
    spec = options.parse_schema(OPTIONS)[1]
    assert options.coerce(spec, value) == expected


@pytest.mark.parametrize("value", [True, 5000, 10, "x", 1.5, None])
def test_coerce_int_refuses(value):
    spec = options.parse_schema(OPTIONS)[1]
    with pytest.raises(ValueError):
        options.coerce(spec, value)


def test_values_and_job_options():
    specs = options.parse_schema(OPTIONS)
    saved = {"working_size": 9999, "flat_regions": 0.2, "gone": 1, "reference_mode": "palette"}
    values = options.effective_values(specs, saved)
    assert values == {"reference_mode": "palette", "working_size": 768, "keep_white": True, "flat_regions": 0.2}
    assert options.job_options(specs, saved) == values
    assert options.job_options([], saved) == {}
    assert options.changed_from_default(specs, saved) == {"reference_mode": "palette", "flat_regions": 0.2}
    assert options.load_saved(options.dump_saved(saved)) == saved
    assert options.load_saved("[1]") == {} and options.load_saved("{") == {}
