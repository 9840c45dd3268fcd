"""Where the time of one Colorize click goes, from the click to the layer (issue 15).

The model (ui_model.py) records raw marks in its `stats` (seconds): gui_read (the layers' pixelData, GUI
thread), encode (pixel conversion + PNG or frames, worker), connect (health and options), body (the request's
bytes, worker), gui_submit, server_wait (upload + queue + the job + the poll that sees it done), download,
decode (worker), gui_apply (setPixelData and the layer's placement, GUI thread), total. `summarize` turns them
and the backend's own `seconds` into the run's `timings`: the client's share (export + encode + decode + import)
is what this plugin can make faster; the rest is the transfer and the server. Pure Python.
"""

from __future__ import annotations

import sys
from typing import Any

CLIENT = ("export", "encode", "decode", "import")


def summarize(stats: dict, server_seconds: Any, transport: str, bytes_up: int = 0, bytes_down: int = 0) -> dict:
    """stats (see the docstring) + the backend's `seconds` -> the timings of one click, in seconds."""
    get = lambda *keys: round(sum(float(stats.get(k) or 0.0) for k in keys), 3)  # noqa: E731
    out: dict[str, Any] = {
        "transport": transport,
        "export": get("gui_read"),
        "encode": get("encode", "body", "gui_submit"),
        "connect": get("connect"),
        "upload_server": get("server_wait"),
        "download": get("download"),
        "decode": get("decode"),
        "import": get("gui_apply"),
        "total": get("total"),
        "bytes_up": int(bytes_up),
        "bytes_down": int(bytes_down),
    }
    server = {k: v for k, v in (server_seconds or {}).items() if isinstance(v, (int, float))} if isinstance(server_seconds, dict) else {}
    out["server"] = server
    out["import_parts"] = {k[len("apply_"):]: v for k, v in stats.items() if k.startswith("apply_")}  # result_layer's Krita calls
    out["client"] = round(sum(out[k] for k in CLIENT), 3)
    out["client_share"] = round(out["client"] / out["total"], 3) if out["total"] > 0 else 0.0
    return out


def describe(t: dict) -> str:
    """One line for logs: 'click->layer 2.10 s (client 0.21 s = 10 %: export 0.02, encode 0.08, ...)'."""
    parts = ", ".join(f"{k} {t.get(k, 0):.2f}" for k in ("export", "encode", "connect", "upload_server", "download", "decode", "import"))
    server = t.get("server") or {}
    tail = f"; server {server.get('total', 0):.2f} s" if "total" in server else ""
    return (
        f"click->layer {t.get('total', 0):.2f} s over {t.get('transport', '?')} "
        f"(client {t.get('client', 0):.2f} s = {100 * t.get('client_share', 0):.0f} %: {parts}{tail})"
    )


def log(t: dict) -> None:
    """The run's timings on stderr (Krita's terminal output; the real-Krita test keeps it in its log)."""
    print(f"[MangaColor] timings: {describe(t)}", file=sys.stderr, flush=True)
