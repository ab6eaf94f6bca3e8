"""AsyncMemory: Memory's calls off the event loop, searches not queued behind writes."""

from __future__ import annotations

import asyncio

import pytest

from localmem import AsyncMemory, MemoryNotFoundError

from .conftest import MemoryFactory, plain


def test_async_memory_returns_memory_shapes(make_memory: MemoryFactory, hashing_embedder) -> None:
    memory = make_memory(hashing_embedder)

    async def scenario() -> None:
        async with AsyncMemory(memory=memory) as amem:
            added = await amem.add("likes green tea", user_id="ann", infer=False)
            memory_id = added["results"][0]["id"]
            results = await asyncio.gather(*(amem.search("tea", user_id="ann") for _ in range(8)))
            assert all(r["results"][0]["id"] == memory_id for r in results)
            assert await amem.get(memory_id) == memory.get(memory_id)
            await amem.update(memory_id, "likes black tea")
            assert [e["event"] for e in await amem.history(memory_id)] == ["ADD", "UPDATE"]
            await amem.delete(memory_id)
            with pytest.raises(MemoryNotFoundError):
                await amem.get(memory_id)

    asyncio.run(scenario())
    assert memory._closed  # the wrapper owns the memory it was given


def test_a_search_does_not_wait_for_a_blocked_write(make_memory: MemoryFactory, hashing_embedder) -> None:
    memory = make_memory(hashing_embedder)
    memory.add("the cat is called Tom", user_id="ann", infer=False)

    async def scenario() -> None:
        amem = AsyncMemory(memory=memory)
        memory._write_lock.acquire()  # a write that takes forever
        try:
            add = asyncio.ensure_future(amem.add("the dog is called Rex", user_id="ann", infer=False))
            await asyncio.sleep(0.05)
            hits = await asyncio.wait_for(amem.search("cat", user_id="ann", limit=1), timeout=10)
            assert plain(hits["results"][0]["memory"]) == "the cat is called Tom"
            assert not add.done()  # the write really was still waiting
        finally:
            memory._write_lock.release()
        assert (await asyncio.wait_for(add, timeout=10))["results"][0]["event"] == "ADD"
        await amem.close()

    asyncio.run(scenario())
