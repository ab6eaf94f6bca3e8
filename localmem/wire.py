"""The HTTP contract shared by ``localmem serve`` and ``MemoryClient``: error <-> status code.

An error crosses the wire as ``{"error": "<class name>", "detail": "<one line>"}`` with the
status below, and the client raises the same LocalmemError class again, so code written
against ``Memory`` catches the same exceptions from ``MemoryClient``. This module imports
nothing heavy: the client's cold start depends on it.
"""

from __future__ import annotations

from typing import Any

from localmem import errors
from localmem.errors import (
    ConfigError,
    DependencyError,
    ExtractionError,
    HistoryError,
    InvalidInputError,
    LocalmemError,
    MemoryNotFoundError,
    ModelError,
    PromptTooLongError,
    ServerUnavailableError,
    StoreError,
    StoreLockedError,
)

API_KEY_HEADER = "X-API-Key"
# Most specific class first: the first isinstance match wins.
_STATUS: tuple[tuple[type[LocalmemError], int], ...] = (
    (MemoryNotFoundError, 404),
    (PromptTooLongError, 413),
    (InvalidInputError, 400),
    (StoreLockedError, 409),
    (StoreError, 503),
    (HistoryError, 503),
    (ConfigError, 500),
    (DependencyError, 500),
    (ModelError, 500),
    (ExtractionError, 500),
)


def status_for(error: LocalmemError) -> int:
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return 500


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def error_body(error: LocalmemError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": type(error).__name__, "detail": one_line(error)}
    if isinstance(error, MemoryNotFoundError):
        body["memory_id"] = error.memory_id
    return body


def error_from_body(status: int, body: Any) -> LocalmemError:
    """The LocalmemError a server's error answer stands for (ServerUnavailableError if unknown)."""
    if not isinstance(body, dict):
        return ServerUnavailableError(f"the server answered {status} without a localmem error body")
    name, detail = str(body.get("error", "")), one_line(body.get("detail", f"HTTP {status}"))
    if name == MemoryNotFoundError.__name__ and isinstance(body.get("memory_id"), str):
        return MemoryNotFoundError(body["memory_id"])
    kind = getattr(errors, name, None)
    if isinstance(kind, type) and issubclass(kind, LocalmemError) and kind is not MemoryNotFoundError:
        return kind(detail)
    if status == 401:
        return ServerUnavailableError(f"the server refused the API key: {detail}")
    if 400 <= status < 500:
        return InvalidInputError(detail)
    return ServerUnavailableError(f"the server failed ({status}): {detail}")
