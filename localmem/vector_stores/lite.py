"""Milvus Lite's in-process engines: one per data folder, stopped when the last store closes.

pymilvus starts a Milvus Lite engine (which holds the folder's LOCK) the first
time a client opens a folder, and ``MilvusClient.close()`` leaves it running
until the process exits: so a closed Memory still kept `localmem export` and
every other process out. This registry counts the stores of this process on
each folder and stops the engine with the last one, which releases the lock.
"""

from __future__ import annotations

import threading
from pathlib import Path

_users: dict[str, int] = {}
_lock = threading.Lock()


def opened(path: Path) -> None:
    """A store of this process opened a client on ``path``."""
    with _lock:
        _users[str(path)] = _users.get(str(path), 0) + 1


def closed(path: Path) -> None:
    """A store closed its client on ``path``; the last one stops the engine and frees the folder."""
    with _lock:
        left = _users.get(str(path), 1) - 1
        if left > 0:
            _users[str(path)] = left
            return
        _users.pop(str(path), None)
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(str(path))


def shared(path: Path) -> bool:
    """Whether more than one store of this process uses ``path`` (a reload would pull the engine from under it)."""
    with _lock:
        return _users.get(str(path), 0) > 1
