"""The backend's HTTP API (v1) as pure functions: paths, request bodies, and what responses mean.

No Qt, no Krita. request.py is the request body; client.py does the transport; backend_jobs.py the job.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

API = "/v1"
HEALTH = f"{API}/health"
OPTIONS = f"{API}/options"
JOBS = f"{API}/jobs"


def job_path(job_id: str) -> str:
    return f"{JOBS}/{job_id}"


def result_path(job_id: str) -> str:
    return f"{JOBS}/{job_id}/result"


def parse_json(data: bytes) -> Any:
    """Response bytes -> JSON value, or None if the body is empty or not JSON."""
    if not data:
        return None
    try:
        return json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def server_error_text(status: int, data: bytes) -> str:
    """What the server said went wrong, verbatim when it said it in {"error": ...}."""
    value = parse_json(data)
    if isinstance(value, dict) and value.get("error"):
        return str(value["error"])
    if isinstance(value, dict) and value.get("detail"):
        return str(value["detail"])
    text = bytes(data or b"").decode("utf-8", "replace").strip()
    if text:
        return text[:500]
    return f"HTTP {status}"


@dataclass
class JobState:
    id: str
    status: str
    progress: float
    stage: str
    position: int
    error: str | None


def parse_job(value: Any) -> JobState:
    if not isinstance(value, dict) or not value.get("id") or not value.get("status"):
        raise ValueError(f"unexpected job response from the backend: {str(value)[:200]}")
    try:
        progress = float(value.get("progress") or 0.0)
    except (TypeError, ValueError):
        progress = 0.0
    try:
        position = int(value.get("position") or 0)
    except (TypeError, ValueError):
        position = 0
    return JobState(
        id=str(value["id"]),
        status=str(value["status"]),
        progress=min(1.0, max(0.0, progress)),
        stage=str(value.get("stage") or ""),
        position=position,
        error=value.get("error"),
    )


def describe_job(job: JobState) -> str:
    """A status line for the docker."""
    if job.status == "queued":
        if job.position > 0:
            return f"Waiting in the backend's queue (position {job.position})"
        return "Waiting in the backend's queue"
    if job.status == "running":
        stage = job.stage.replace("_", " ") if job.stage else "working"
        return f"Colorizing: {stage} ({round(job.progress * 100)}%)"
    if job.status == "done":
        return "Colorized"
    if job.status == "failed":
        return f"The backend failed: {job.error or 'no reason given'}"
    if job.status == "cancelled":
        return "Cancelled"
    return f"Job is {job.status}"


@dataclass
class Result:
    color_png: bytes  # the colour layer alone (RGBA PNG), decoded from base64
    width: int
    height: int
    model_version: str
    seconds: dict


def parse_result(value: Any) -> Result:
    """The JSON of GET /v1/jobs/{id}/result -> Result. Raises ValueError with a message for the user."""
    if not isinstance(value, dict) or not isinstance(value.get("color_layer"), str):
        raise ValueError("the backend's result has no color_layer")
    try:
        width, height = int(value["width"]), int(value["height"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("the backend's result has no valid width/height") from None
    seconds = value.get("seconds") if isinstance(value.get("seconds"), dict) else {}
    try:
        png = base64.b64decode(value["color_layer"], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the backend sent a colour layer that is not valid base64") from None
    return Result(png, width, height, str(value.get("model_version") or "unknown"), seconds)


def describe_health(value: Any) -> str:
    if not isinstance(value, dict):
        return "answers, but not like a MangaColor backend"
    parts = [f"MangaColor backend {value.get('version', '?')}"]
    if value.get("device"):
        parts.append(f"on {value['device']}")
    if value.get("model_version"):
        parts.append(f"model {value['model_version']}")
    return " ".join(parts)


def health_is_compatible(value: Any) -> tuple[bool, str]:
    if not isinstance(value, dict) or value.get("status") != "ok":
        return False, "the server at this URL does not look like a MangaColor backend (GET /v1/health)"
    api = value.get("api_version")
    if api not in (None, "v1"):
        return False, f"the backend speaks API {api}, this plugin speaks v1: update the plugin or the backend"
    return True, ""
