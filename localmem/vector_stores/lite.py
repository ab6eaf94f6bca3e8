"""Milvus Lite's in-process engine: where it listens, the client options it accepts, and stopping it.

pymilvus opens a Lite folder by starting a gRPC server for it in this process
(``milvus_lite.server_manager``) on a loopback TCP port, with no authentication: any account on
the machine could list, read and delete the memories through it (issue #37 did, as uid 65534,
while the REST API asked for a key). So localmem starts the engine itself and serves it on a
Unix socket in a fresh 0700 folder (``tempfile.mkdtemp``): only this account can connect, and
the process listens on no TCP port for it. (Windows keeps milvus-lite's loopback port.)
Two defaults clash with the in-process engine:

- pymilvus' channel sends a keepalive ping every 10 s, even with no call in flight, while the Lite
  server keeps gRPC's default policy (no more than one ping per 5 minutes without data). An idle
  client therefore gets ``GOAWAY ... ENHANCE_YOUR_CALM ... too_many_pings``, which gRPC's C core
  prints on stderr (seen between benchmark sections and in an idle chatbot loop). A ping over
  loopback to a server in the same process detects nothing, so Lite clients switch keepalive off.
- ``MilvusClient.close()`` releases the connection but leaves the engine, and its background
  compaction, running until the process exits; deleting the folder then makes that worker fail
  with a FileNotFoundError traceback, and the folder's LOCK stays held. ``release`` stops the
  engine once the last client of a folder in this process is closed (closing the engine waits
  for its background work). A closed Memory so frees the folder's LOCK for
  `localmem export` and every other process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# INT_MAX is gRPC's "never" for keepalive_time; without calls no ping is sent either.
GRPC_OPTIONS: dict[str, int] = {"grpc.keepalive_time_ms": 2**31 - 1, "grpc.keepalive_permit_without_calls": 0}

_lock = threading.Lock()
_clients: Counter[str] = Counter()  # open clients per folder, this process
_opened: Counter[str] = Counter()  # clients ever opened per folder, this process (never goes down)
# Methods of Milvus' API that Lite's server does not implement and pymilvus calls anyway, expecting a refusal.
LITE_MISSING = frozenset({"AllocTimestamp"})
SOCKET_NAME = "engine.sock"


@dataclass(frozen=True)
class _Engine:
    server: Any  # grpc.Server
    db: Any  # milvus_lite.db.MilvusLite
    folder: str  # the private folder holding the socket

    @property
    def uri(self) -> str:
        return f"unix:{os.path.join(self.folder, SOCKET_NAME)}"


_engines: dict[str, _Engine] = {}  # per folder, this process


def open_client(path: Path, **kwargs: Any) -> Any:
    """A MilvusClient on the Lite folder ``path``; pair every call with ``close_client``."""
    from pymilvus import MilvusClient

    _drop_lite_refusals()
    with _lock:
        uri = _engine_uri(path)
    try:
        client = MilvusClient(uri=uri, grpc_options=dict(GRPC_OPTIONS), **kwargs)
    except BaseException:
        with _lock:
            idle = _clients[_key(path)] <= 0
        if idle:
            release(path)
        raise
    with _lock:
        _clients[_key(path)] += 1
        _opened[_key(path)] += 1
    return client


def engine_uri(path: Path) -> str | None:
    """Where this process's engine for ``path`` listens (a ``unix:`` address), or None when none runs."""
    with _lock:
        engine = _engines.get(_key(path))
    return engine.uri if engine is not None else None


def _engine_uri(path: Path) -> str:
    """The address of the engine serving ``path`` in this process, started if need be (``_lock`` held)."""
    if sys.platform == "win32":
        return str(path)  # pymilvus starts milvus-lite's own loopback server
    key = _key(path)
    engine = _engines.get(key)
    if engine is None:
        from milvus_lite.adapter.grpc.server import DEFAULT_MAX_WORKERS, _build_server
        from milvus_lite.db import MilvusLite
        from milvus_lite.server_manager import server_manager_instance

        # A loopback engine that a plain MilvusClient started on this folder holds its LOCK: stop it.
        server_manager_instance.release_server(key)
        db = MilvusLite(key)
        folder = tempfile.mkdtemp(prefix="localmem-lite-")  # 0700, whatever the umask
        try:
            server = _build_server(db, DEFAULT_MAX_WORKERS)
            if not server.add_insecure_port(f"unix:{os.path.join(folder, SOCKET_NAME)}"):
                raise OSError(f"cannot listen on a Unix socket in {folder}")
            server.start()
        except BaseException:
            db.close()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        engine = _engines[key] = _Engine(server, db, folder)
    return engine.uri


def close_client(client: Any, path: Path) -> None:
    """Close ``client``; the last one of a folder also stops that folder's engine."""
    try:
        client.close()
    finally:
        key = _key(path)
        with _lock:
            _clients[key] -= 1
            last = _clients[key] <= 0
            if last:
                del _clients[key]
        if last:
            release(path)


def release(path: Path) -> None:
    """Stop the engine serving ``path`` in this process (waits for its compaction); no-op if none."""
    with _lock:
        engine = _engines.pop(_key(path), None)
    if engine is not None:
        # As milvus-lite's own release_server does: a failure to stop cleanly must not keep the folder held.
        with contextlib.suppress(Exception):
            engine.server.stop(grace=2).wait()
        with contextlib.suppress(Exception):
            engine.db.close()
        shutil.rmtree(engine.folder, ignore_errors=True)
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:  # no Lite installed: nothing can be running
        return
    server_manager_instance.release_server(str(path))


class _LiteRefusal(logging.Filter):
    """Drops gRPC's record of a LITE_MISSING method refused (NotImplementedError raised in it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, NotImplementedError) or exc.__traceback__ is None:
            return True
        last = exc.__traceback__
        while last.tb_next is not None:
            last = last.tb_next
        return last.tb_frame.f_code.co_name not in LITE_MISSING


def _drop_lite_refusals() -> None:
    logger = logging.getLogger("grpc._server")
    if not any(isinstance(f, _LiteRefusal) for f in logger.filters):
        logger.addFilter(_LiteRefusal())


def _key(path: Path) -> str:
    return os.path.abspath(path)


def shared(path: Path) -> bool:
    """Whether more than one store of this process uses ``path`` (a reload would pull the engine from under it)."""
    with _lock:
        return _clients[_key(path)] > 1


def opened(path: Path) -> int:
    """How many clients this process has opened on ``path`` so far: a change means another store
    may have written it (a scope's copy in memory, retrieval/scopes.py, would miss that)."""
    with _lock:
        return _opened[_key(path)]
