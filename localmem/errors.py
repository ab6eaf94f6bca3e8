"""Every error localmem raises on purpose, under one root.

    LocalmemError
    ├── ConfigError                 a config key, value or provider is wrong
    ├── InvalidInputError           a call's arguments are wrong (also a ValueError)
    │   └── InvalidFilterError      a ``filters=`` expression is malformed
    ├── MemoryNotFoundError         no memory with that id (also a LookupError)
    ├── DependencyError             an optional package is not installed
    ├── ModelError                  a model file is missing, corrupt or unusable
    │   └── ChecksumError           a model file's sha256 differs from the manifest
    ├── StoreError                  the vector store refused or failed
    │   ├── StoreLockedError        a Milvus Lite file is open in another process
    │   ├── SchemaMismatchError     a collection does not fit the embedder
    │   ├── RollbackError           a failed write could not be undone (``.ids`` names the memories)
    │   └── ServerUnavailableError  a localmem server cannot be reached or answered oddly
    ├── HistoryError                the history database refused or failed
    ├── ExtractionError             the LLM step could not produce facts/decisions
    │   └── PromptTooLongError      a prompt does not fit the model's context
    └── BenchDataError              benchmark data: unpinned, failing its checksum, or unfetchable

    LocalmemWarning (a UserWarning)  something was substituted, e.g. the embedding size

Messages name the thing that is wrong and what to do about it. Nothing here
shadows a built-in name (mem0's ``MemoryError`` does; we don't).
"""

from __future__ import annotations


class LocalmemError(Exception):
    """Root of every error localmem raises on purpose."""


class ConfigError(LocalmemError):
    """A configuration key, value or provider is wrong."""


class InvalidInputError(LocalmemError, ValueError):
    """The arguments of a call are wrong; nothing was written."""


class InvalidFilterError(InvalidInputError):
    """A ``filters=`` mapping cannot be turned into a store expression."""


class MemoryNotFoundError(LocalmemError, LookupError):
    """No memory has the given id."""

    def __init__(self, memory_id: str) -> None:
        super().__init__(f"no memory with id {memory_id!r}: check the id (get_all() lists them)")
        self.memory_id = memory_id


class DependencyError(LocalmemError, ImportError):
    """An optional dependency is missing; the message says what to install."""


class ModelError(LocalmemError):
    """A model file is missing, corrupt or cannot be loaded."""


class ChecksumError(ModelError):
    """A model file's sha256 does not match the manifest."""


class StoreError(LocalmemError):
    """The vector store refused an operation or failed."""


class StoreLockedError(StoreError):
    """A Milvus Lite data file is already open in another process."""


class SchemaMismatchError(StoreError):
    """An existing collection does not fit the configured embedder."""


class RollbackError(StoreError):
    """A write failed and putting the store back failed too.

    ``ids`` are the memories that may differ from their history until the
    store is opened again (or the next write runs), when the write journal
    finishes the undo. ``original`` is the failure that started the undo;
    ``__cause__`` is the one that stopped it.
    """

    def __init__(self, message: str, ids: list[str] | None = None, original: BaseException | None = None) -> None:
        # ids may be absent: a client rebuilds the error from its one-line message (localmem/wire.py).
        super().__init__(message)
        self.ids = list(ids or [])
        self.original = original


class ServerUnavailableError(StoreError):
    """A ``localmem serve`` process cannot be reached, refused the API key, or answered outside its contract."""


class HistoryError(LocalmemError):
    """The history database refused an operation or failed."""


class ExtractionError(LocalmemError):
    """The language-model step could not produce usable output."""


class PromptTooLongError(ExtractionError):
    """A prompt does not fit in the model's context window."""


class BenchDataError(LocalmemError):
    """A benchmark data file has no pinned hash, fails its checksum, or cannot be fetched or unpacked."""


class LocalmemWarning(UserWarning):
    """localmem used something other than what the config asked for, and says what."""
