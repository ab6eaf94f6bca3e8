"""ASGI guards that run before routing: an API key check and a request body size limit.

Both are plain ASGI middleware (not FastAPI dependencies) so they also cover the MCP
endpoint and refuse a request before its body is read: a body announced too large is
refused at once, and a chunked one is cut off as soon as it passes the limit.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

from localmem.wire import API_KEY_HEADER

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# Liveness needs no key: it says nothing about the memories.
OPEN_PATHS = frozenset({"/health"})


async def send_error(send: Send, status: int, error: str, detail: str) -> None:
    body = json.dumps({"error": error, "detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class ApiKeyGuard:
    """Every request but /health must carry the key (``X-API-Key: KEY`` or ``Authorization: Bearer KEY``).

    Compared in constant time; the key is never logged or echoed.
    """

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self._key = api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in OPEN_PATHS or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        await send_error(send, 401, "Unauthorized",
                         f"missing or wrong API key: send it as {API_KEY_HEADER} or 'Authorization: Bearer'")

    def _allowed(self, scope: Scope) -> bool:
        headers = dict(scope.get("headers") or [])
        given = headers.get(API_KEY_HEADER.lower().encode(), b"")
        auth = headers.get(b"authorization", b"")
        if not given and auth[:7].lower() == b"bearer ":
            given = auth[7:].strip()
        return hmac.compare_digest(given, self._key)


class _TooLarge(HTTPException):
    """An HTTPException so that FastAPI's body parsing passes it on as 413 (it turns other errors into 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


class BodySizeGuard:
    """Refuse request bodies over ``limit`` bytes with 413, without reading them whole."""

    def __init__(self, app: ASGIApp, limit: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await send_error(send, 413, "PayloadTooLarge", f"request body over {self.limit} bytes")
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge(self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await send_error(send, 413, "PayloadTooLarge", f"request body over {self.limit} bytes")
