"""Milvus Lite's in-process engine: the client options it accepts, and stopping it when done.

pymilvus opens a Lite folder by starting a gRPC server for it in this process
(``milvus_lite.server_manager``) and connecting over loopback. Two defaults clash with that:

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

import logging
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

# INT_MAX is gRPC's "never" for keepalive_time; without calls no ping is sent either.
GRPC_OPTIONS: dict[str, int] = {"grpc.keepalive_time_ms": 2**31 - 1, "grpc.keepalive_permit_without_calls": 0}

_lock = threading.Lock()
_clients: Counter[str] = Counter()  # open clients per folder, this process
_opened: Counter[str] = Counter()  # clients ever opened per folder, this process (never goes down)
# Methods of Milvus' API that Lite's server does not implement and pymilvus calls anyway, expecting a refusal.
LITE_MISSING = frozenset({"AllocTimestamp"})


def open_client(path: Path, **kwargs: Any) -> Any:
    """A MilvusClient on the Lite folder ``path``; pair every call with ``close_client``."""
    from pymilvus import MilvusClient

    _drop_lite_refusals()
    client = MilvusClient(uri=str(path), grpc_options=dict(GRPC_OPTIONS), **kwargs)
    with _lock:
        _clients[_key(path)] += 1
        _opened[_key(path)] += 1
    return client


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
