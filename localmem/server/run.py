"""Start ``localmem serve``: binding rules, guards, uvicorn, graceful shutdown.

Loopback by default. Any other address needs an API key, because the memories are
personal data and the API can delete them. uvicorn turns SIGTERM and SIGINT into a
graceful shutdown: in-flight requests finish, then the app's lifespan closes the Memory
(releasing the Milvus Lite lock, so the next process can open the folder at once).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable

import uvicorn

from localmem.async_memory import AsyncMemory, SyncMemory
from localmem.errors import ConfigError
from localmem.server.app import create_app
from localmem.server.guards import DEFAULT_MAX_BODY_BYTES, ApiKeyGuard, ASGIApp, BodySizeGuard
from localmem.server.mcp import build_mcp

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, api_key: str | None) -> None:
    if not is_loopback(host) and not api_key:
        raise ConfigError(f"refusing to serve on {host} without an API key: set LOCALMEM_API_KEY, "
                          f"or serve on {DEFAULT_HOST} (the default)")


def _log_to_stderr(level: str) -> None:
    """localmem's own server messages beside uvicorn's (third-party loggers stay as they are)."""
    logger = logging.getLogger("localmem")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level.upper())


def build_asgi(memory: AsyncMemory, *, api_key: str | None, loopback: bool,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> ASGIApp:
    """The whole served app: REST + MCP, behind the size guard and (when a key is set) the key guard."""
    app: ASGIApp = BodySizeGuard(create_app(memory, mcp=build_mcp(memory, loopback=loopback)), max_body_bytes)
    # The key guard is outermost: a request without the key is refused before its body is read.
    return ApiKeyGuard(app, api_key) if api_key else app


def serve(open_memory: Callable[[], SyncMemory], *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          api_key: str | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
          log_level: str = "info") -> None:
    """Open the memory (models loaded before the port opens), then serve until SIGTERM/SIGINT."""
    check_binding(host, api_key)
    memory = AsyncMemory(memory=open_memory())
    app = build_asgi(memory, api_key=api_key, loopback=is_loopback(host), max_body_bytes=max_body_bytes)
    _log_to_stderr(log_level)
    # access_log off: request lines would show query strings (scope ids) to anyone reading the log.
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on", access_log=False,
                            timeout_graceful_shutdown=30)
    try:
        uvicorn.Server(config).run()
    finally:
        memory.close_sync()  # idempotent; covers a failed start whose lifespan never ran
