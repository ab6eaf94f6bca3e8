"""localmem: offline-first long-term memory for AI applications.

The public API mirrors Mem0's (``Memory.from_config``, add / get / get_all /
search / update / delete / delete_all / history / reset) on a local embedder,
an in-process llama.cpp model and a Milvus Lite file. Nothing is downloaded.

Importing the package is cheap (config and errors only): ``Memory`` and what it
pulls in (numpy, pymilvus, the embedder) load on first use, so ``import localmem``
and CLI commands that never touch a store stay fast.
"""

from __future__ import annotations

import typing as _typing

from localmem.config import EmbedderConfig, LlmConfig, MemoryConfig, VectorStoreConfig
from localmem.errors import (
    ChecksumError,
    ConfigError,
    DependencyError,
    ExtractionError,
    HistoryError,
    InvalidFilterError,
    InvalidInputError,
    LocalmemError,
    LocalmemWarning,
    MemoryNotFoundError,
    ModelError,
    PromptTooLongError,
    SchemaMismatchError,
    ServerUnavailableError,
    StoreError,
    StoreLockedError,
)
from localmem.threads import set_process_defaults

if _typing.TYPE_CHECKING:
    from localmem.async_memory import AsyncMemory
    from localmem.client import MemoryClient
    from localmem.memory import Memory

# Before anything can load an OpenMP runtime (torch, onnxruntime, Milvus Lite's engine):
# the modules above load none. Waiting threads then sleep instead of spinning (threads.py).
set_process_defaults()

__version__ = "0.1.0"

__all__ = [
    "AsyncMemory",
    "ChecksumError",
    "ConfigError",
    "DependencyError",
    "EmbedderConfig",
    "ExtractionError",
    "HistoryError",
    "InvalidFilterError",
    "InvalidInputError",
    "LlmConfig",
    "LocalmemError",
    "LocalmemWarning",
    "Memory",
    "MemoryClient",
    "MemoryConfig",
    "MemoryNotFoundError",
    "ModelError",
    "PromptTooLongError",
    "SchemaMismatchError",
    "ServerUnavailableError",
    "StoreError",
    "StoreLockedError",
    "VectorStoreConfig",
    "__version__",
]


# Loaded on first use: Memory pulls in numpy and pymilvus, MemoryClient httpx.
_LAZY = {"Memory": "localmem.memory", "AsyncMemory": "localmem.async_memory", "MemoryClient": "localmem.client"}


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'localmem' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
