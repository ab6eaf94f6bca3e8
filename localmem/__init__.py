"""localmem: offline-first long-term memory for AI applications.

The public API mirrors Mem0's (``Memory.from_config``, add / get / get_all /
search / update / delete / delete_all / history / reset) on a local embedder,
an in-process llama.cpp model and a Milvus Lite file. Nothing is downloaded.
"""

from localmem.async_memory import AsyncMemory
from localmem.client import MemoryClient
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
from localmem.memory import Memory

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
