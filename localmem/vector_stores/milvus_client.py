"""Helpers around the pymilvus client: quiet logs, one-line reasons, probing a uri, Lite's LOCK."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from localmem.config import VectorStoreConfig
from localmem.errors import StoreError, StoreLockedError
from localmem.private import private_folder
from localmem.protocols import StoreHealth
from localmem.vector_stores import lite


def connect(config: VectorStoreConfig, lite_path: Path | None) -> Any:
    """A client for a server uri, or for the Lite folder ``lite_path``, with every failure one StoreError."""
    from pymilvus import MilvusClient

    quiet_client_logs()
    kwargs: dict[str, Any] = {}
    if config.token:
        kwargs["token"] = config.token
    if config.db_name:
        kwargs["db_name"] = config.db_name
    if lite_path is None:
        try:
            return MilvusClient(uri=config.uri, **kwargs)
        except Exception as exc:
            raise StoreError(f"cannot connect to Milvus at {config.uri}: {exc}") from exc
    path = lite_path
    if path.exists() and not path.is_dir():
        raise StoreError(f"{path} exists but is not a Milvus Lite 3 data folder (Milvus Lite 2.x .db files are "
                         "not readable by 3.x); choose another path or move that file away")
    private_folder(path)  # 0700 before the engine writes into it (private.py)
    try:
        return lite.open_client(path, **kwargs)
    except Exception as exc:
        if is_locked_by_another_process(path):
            raise StoreLockedError(f"{path} is open in another process (Milvus Lite allows one process per "
                                   "data folder); close it there, or use a Milvus server uri to share a store"
                                   ) from exc
        raise StoreError(f"cannot open Milvus Lite data folder {path}: {exc}") from exc


def probe_store(config: VectorStoreConfig) -> StoreHealth:
    """Can the store at ``config.uri`` be opened, and what does it hold? Reads only: never creates one."""
    if not config.is_local_file:
        return probe(config.uri, config)
    path = Path(config.uri).expanduser().resolve()
    where = str(path)
    if not path.exists():
        return StoreHealth("ok", where, f"{path} does not exist yet; it is created on first use")
    if not path.is_dir():
        return StoreHealth("fail", where, f"{path} is a file, not a Milvus Lite 3 data folder")
    if is_locked_by_another_process(path):
        return StoreHealth("warn", where, f"{path} is open in another process right now (one process per folder)")
    if not (path / "databases").is_dir():
        # Opening would turn any folder into a Lite store (it writes files there): only open real ones.
        if any(path.iterdir()):
            return StoreHealth("fail", where, f"{path} is not a Milvus Lite data folder; pass the right --db")
        return StoreHealth("ok", where, f"{path} is empty; it becomes a store on first use")
    return probe(where, config)


def probe(where: str, config: VectorStoreConfig) -> StoreHealth:
    """Open a client the way MilvusStore does, list the collections, close it."""
    from pymilvus import MilvusClient

    quiet_client_logs()
    kwargs: dict[str, Any] = {"token": config.token} if config.token else {}
    local = Path(where) if config.is_local_file else None
    try:
        # A Lite folder through lite.py, as MilvusStore opens it: never on a loopback port (lite.py says why).
        client = lite.open_client(local, **kwargs) if local is not None else MilvusClient(uri=where, **kwargs)
        try:
            collections = sorted(client.list_collections())
        finally:
            if local is not None:
                lite.close_client(client, local)
            else:
                client.close()
    except Exception as exc:  # any failure to open is the finding itself, whatever pymilvus raised
        reason = " ".join(reason_of(exc).split())[:200]
        return StoreHealth("fail", where, f"{where} cannot be opened as a Milvus store: {reason}")
    return StoreHealth("ok", where, f"{where}: opens; collections: {', '.join(collections) or 'none'}")


# Loggers of the Milvus client libraries, with the level each has unless someone changed it.
# pymilvus installs its own stderr handler on import, and both log a full traceback for an
# error they then raise; localmem reports that error itself, as a one-line StoreError.
_CLIENT_LOGGERS = {"pymilvus": logging.WARNING, "pymilvus.milvus_client": logging.INFO,
                   "milvus_lite": logging.NOTSET}


def quiet_client_logs() -> None:
    """Silence the client libraries' logs, unless the application asked for them (set another level)."""
    for name, default in _CLIENT_LOGGERS.items():
        logger = logging.getLogger(name)
        if logger.level == default:
            logger.setLevel(logging.CRITICAL + 1)


@contextlib.contextmanager
def quiet_pymilvus() -> Iterator[None]:
    """pymilvus warns on every iterator page that Milvus Lite has no server timestamp; that is expected."""
    logger = logging.getLogger("pymilvus")
    level = logger.level
    logger.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        logger.setLevel(level)


def reason_of(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return str(message).strip().splitlines()[0] if str(message).strip() else type(exc).__name__


def is_locked_by_another_process(path: Path) -> bool:
    """Probe Milvus Lite's LOCK file; only called after opening failed."""
    lock = path / "LOCK"
    if sys.platform == "win32" or not lock.exists():
        return False
    import fcntl

    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
