"""The server's door: every request passes the Guard first (Host and client checks against DNS
rebinding, the access token, and the body limit counted on the bytes actually received)."""

from __future__ import annotations

import ipaddress
import re
import secrets

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import API_VERSION


# A Host header naming a loopback address, with an optional port, and nothing else
# (no userinfo, no path: `localhost:80@evil` is not localhost).
LOOPBACK_HOST = re.compile(r"(localhost|127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?", re.IGNORECASE)


def is_loopback_host(host_header: str) -> bool:
    """Strict: the whole header must be a loopback name with an optional numeric port."""
    return LOOPBACK_HOST.fullmatch(host_header) is not None


def _is_loopback(addr: str | None) -> bool:
    try:
        return addr is not None and ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"request body larger than {limit} bytes")


class Guard:
    """Every request passes here first: Host and client checks, the access token, and the body
    limit, counted on the bytes actually received (a chunked upload has no Content-Length)."""

    def __init__(self, app: ASGIApp, token: str, allow_remote: bool, max_body_bytes: int):
        self.app, self.token, self.allow_remote, self.max_body_bytes = app, token, allow_remote, max_body_bytes

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        headers = Headers(scope=scope)
        # DNS rebinding: a browser page on evil.example resolving to 127.0.0.1 still sends its own Host.
        if not self.allow_remote:
            if not is_loopback_host(headers.get("host", "")):
                return 403, "refused: Host must be a loopback name"
            client = scope.get("client")
            if client and not _is_loopback(client[0]):
                return 403, "refused: only local clients are served"
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            return 413, f"request body larger than {self.max_body_bytes} bytes"
        if scope["path"] != f"/{API_VERSION}/health":
            auth = headers.get("authorization", "")
            given = auth[7:] if auth.lower().startswith("bearer ") else ""
            if not secrets.compare_digest(given.encode(), self.token.encode()):
                return 401, "missing or wrong access token"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self.refusal(scope)
        if refused is not None:
            await JSONResponse({"error": refused[1]}, status_code=refused[0])(scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge as exc:  # raised where no exception handler turned it into an answer
            if started:
                raise
            await JSONResponse({"error": exc.detail}, status_code=413)(scope, receive, send)
