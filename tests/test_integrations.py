"""The LangChain and LlamaIndex adapters against the real langchain-core and llama-index-core, over a
real Memory (Milvus Lite in tmp_path; the hashing embedder, so no model loads)."""

from __future__ import annotations

import asyncio

import pytest

from localmem import Memory
from localmem.embedders.fake import HashingEmbedder

from .conftest import MemoryFactory, plain


@pytest.fixture
def memory(make_memory: MemoryFactory) -> Memory:
    memory = make_memory(HashingEmbedder())
    memory.add("I love green tea", user_id="alice", infer=False)
    memory.add("My sister lives in Lisbon", user_id="alice", infer=False)
    memory.add("I love black coffee", user_id="bob", infer=False)
    return memory


def test_langchain_retriever_returns_the_scopes_memories_as_documents(memory: Memory) -> None:
    pytest.importorskip("langchain_core", reason="the [langchain] extra is not installed")
    from langchain_core.documents import Document

    from localmem.integrations.langchain import LocalmemRetriever

    retriever = LocalmemRetriever(memory=memory, user_id="alice", limit=1)
    docs = retriever.invoke("green tea")  # the Runnable interface every chain uses
    assert len(docs) == 1 and isinstance(docs[0], Document)
    assert plain(docs[0].page_content) == "I love green tea"
    assert docs[0].metadata["user_id"] == "alice" and "score" in docs[0].metadata and docs[0].id
    assert all(d.metadata["user_id"] == "alice" for d in LocalmemRetriever(memory=memory, user_id="alice",
                                                                           limit=10).invoke("coffee"))


def test_langchain_chat_history_gives_the_messages_back_in_order(memory: Memory) -> None:
    pytest.importorskip("langchain_core", reason="the [langchain] extra is not installed")
    from langchain_core.messages import AIMessage, HumanMessage

    from localmem.integrations.langchain import LocalmemChatMessageHistory

    history = LocalmemChatMessageHistory(memory, "s1", user_id="alice")
    said = [HumanMessage("I adopted a cat called Miso."), AIMessage("What a lovely name!"),
            HumanMessage("She is two years old.")]
    history.add_messages(said)
    assert history.messages == said
    other = LocalmemChatMessageHistory(memory, "s2", user_id="alice")
    assert other.messages == []  # sessions are separate scopes
    hits = memory.search("cat", user_id="alice", run_id="s1", limit=1)["results"]
    assert "Miso" in hits[0]["memory"]  # the messages are memories too
    history.clear()
    assert history.messages == [] and memory.get_all(user_id="alice")["results"]  # only the session went


def test_llama_index_memory_block_puts_and_gets_through_a_real_memory(memory: Memory, tmp_path) -> None:
    pytest.importorskip("llama_index.core", reason="the [llamaindex] extra is not installed")
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.memory import Memory as LlamaMemory
    from sqlalchemy.ext.asyncio import create_async_engine

    from localmem.integrations.llama_index import LocalmemMemoryBlock

    block = LocalmemMemoryBlock(memory=memory, user_id="alice", infer=False)

    async def scenario() -> tuple[str, str]:
        await block.aput([ChatMessage(role="user", content="I play the cello on Sundays")])
        direct = await block.aget([ChatMessage(role="user", content="cello")])
        # Through LlamaIndex's own Memory: a whitespace tokenizer keeps tiktoken (a download) out; its chat
        # store's engine is ours, so the test closes it.
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}")
        try:
            chat = LlamaMemory.from_defaults(session_id="s", memory_blocks=[block], tokenizer_fn=str.split,
                                             token_limit=40, token_flush_size=10, chat_history_token_ratio=0.5,
                                             async_engine=engine)
            for n in range(8):
                await chat.aput(ChatMessage(role="user", content=f"note number {n} about my garden roses"))
            shown = await chat.aget()
        finally:
            await engine.dispose()
        return direct, "\n".join(str(m.content) for m in shown)

    direct, shown = asyncio.run(scenario())
    assert direct.startswith("- ") and "cello" in direct.splitlines()[0]
    assert "<localmem>" in shown  # the block's text is in the prompt LlamaIndex builds
    stored = [m["memory"] for m in memory.get_all(user_id="alice", limit=100)["results"]]
    assert any("garden roses" in m for m in stored)  # flushed short-term messages reached localmem
