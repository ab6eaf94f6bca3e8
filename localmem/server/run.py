"""Start ``localmem serve``: binding rules, guards, uvicorn, graceful shutdown.

Loopback by default. Any other address needs an API key, because the memories are
personal data and the API can delete them. uvicorn turns SIGTERM and SIGINT into a
graceful shutdown: in-flight requests finish, then the app's lifespan closes the Memory
(releasing the Milvus Lite lock, so the next process can open the folder at once).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
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


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (an IPv6 address with or without brackets), or a ConfigError
    that says why: binding here, before uvicorn, turns its bare exit into a message and an exit code."""
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        family, kind, proto, _, address = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"--host {host!r} is not an address of this machine ({exc}); use e.g. 127.0.0.1 or ::1"
                          ) from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait for TIME_WAIT
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host} port {port}: {exc.strerror or exc}; choose another --port "
                          "or stop what uses it") from None
    sock.set_inheritable(True)
    return sock


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
    sock = bind(host, port)  # before the models load: a wrong address fails in a second, not after them
    try:
        memory = AsyncMemory(memory=open_memory())
    except BaseException:
        sock.close()
        raise
    app = build_asgi(memory, api_key=api_key, loopback=is_loopback(host), max_body_bytes=max_body_bytes)
    _log_to_stderr(log_level)
    # access_log off: request lines would show query strings (scope ids) to anyone reading the log.
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on", access_log=False,
                            timeout_graceful_shutdown=30)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        memory.close_sync()  # idempotent; covers a failed start whose lifespan never ran
