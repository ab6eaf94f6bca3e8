"""AsyncMemory: Mem0's asyncio API as a thin wrapper that runs a sync memory in worker threads.

There is one implementation of memory logic (``Memory``, or ``MemoryClient`` for a server);
this class only moves each call off the event loop, so searches proceed while a write
holds Memory's write lock. ``localmem serve`` and the MCP tools are built on it too.
Arguments are passed through unchanged: every option of ``Memory`` works here.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from localmem.background import Progress
    from localmem.config import MemoryConfig

_T = TypeVar("_T")
# Enough threads that a few searches run while writers wait for the write lock.
DEFAULT_WORKERS = 16


class SyncMemory(Protocol):
    """What ``Memory`` and ``MemoryClient`` both offer (``*args, **kwargs``: any signature fits)."""

    def add(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...
    def get(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...
    def get_all(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...
    def search(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...
    def update(self, *args: Any, **kwargs: Any) -> dict[str, str]: ...
    def delete(self, *args: Any, **kwargs: Any) -> dict[str, str]: ...
    def delete_all(self, *args: Any, **kwargs: Any) -> dict[str, str]: ...
    def history(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]: ...
    def wait_for_extraction(self, timeout: float | None = None) -> bool: ...
    def extraction_progress(self, timeout: float | None = 0.0, through: int | None = None) -> Progress: ...
    def reset(self) -> None: ...
    def close(self) -> None: ...


class AsyncMemory:
    """``await memory.add(...)`` etc., with ``Memory``'s arguments and return shapes.

    ``AsyncMemory()`` builds a ``Memory`` from ``config``; ``AsyncMemory(memory=...)`` wraps
    one you already have (a ``Memory`` or a ``MemoryClient``), which it then owns and closes.
    """

    def __init__(self, config: MemoryConfig | None = None, *, memory: SyncMemory | None = None,
                 max_workers: int = DEFAULT_WORKERS) -> None:
        if memory is None:
            from localmem.memory import Memory

            memory = Memory(config)
        self.sync: SyncMemory = memory
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="localmem")
        # Waits for background extraction block for as long as the caller allows: their own threads,
        # so that no number of waiting callers can hold up a search.
        self._waiters = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="localmem-wait")

    @classmethod
    def from_config(cls, config_dict: Mapping[str, Any]) -> AsyncMemory:
        from localmem.memory import Memory

        return cls(memory=Memory.from_config(config_dict))

    async def add(self, messages: Any, **kwargs: Any) -> dict[str, Any]:
        return await self._run(self.sync.add, messages, **kwargs)

    async def get(self, memory_id: str) -> dict[str, Any]:
        return await self._run(self.sync.get, memory_id)

    async def get_all(self, **kwargs: Any) -> dict[str, Any]:
        return await self._run(self.sync.get_all, **kwargs)

    async def search(self, query: str, **kwargs: Any) -> dict[str, Any]:
        return await self._run(self.sync.search, query, **kwargs)

    async def update(self, memory_id: str, data: str) -> dict[str, str]:
        return await self._run(self.sync.update, memory_id, data)

    async def delete(self, memory_id: str) -> dict[str, str]:
        return await self._run(self.sync.delete, memory_id)

    async def delete_all(self, **kwargs: Any) -> dict[str, str]:
        return await self._run(self.sync.delete_all, **kwargs)

    async def history(self, memory_id: str) -> list[dict[str, Any]]:
        return await self._run(self.sync.history, memory_id)

    async def wait_for_extraction(self, timeout: float | None = None) -> bool:
        """See ``Memory.wait_for_extraction``."""
        return await self._wait(self.sync.wait_for_extraction, timeout)

    async def extraction_progress(self, timeout: float | None = 0.0, through: int | None = None) -> Progress:
        """See ``Memory.extraction_progress``."""
        return await self._wait(self.sync.extraction_progress, timeout, through)

    async def reset(self) -> None:
        await self._run(self.sync.reset)

    async def close(self) -> None:
        """Wait for running calls, then release the memory (its store lock and models)."""
        await asyncio.get_running_loop().run_in_executor(None, self.close_sync)

    def close_sync(self) -> None:
        self._executor.shutdown(wait=True)
        self.sync.close()  # ends the waits too (a closed memory extracts no more)
        self._waiters.shutdown(wait=True)

    async def __aenter__(self) -> AsyncMemory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _run(self, call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(call, *args, **kwargs))

    async def _wait(self, call: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._waiters, functools.partial(call, *args))
