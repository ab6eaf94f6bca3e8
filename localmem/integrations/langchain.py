"""LangChain: a retriever over ``search`` and a chat-message history kept as memories.

``pip install -e '.[langchain]'`` (langchain-core). ``memory`` is a ``Memory`` or a ``MemoryClient``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.chat_history import BaseChatMessageHistory
    from langchain_core.documents import Document
    from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict
    from langchain_core.retrievers import BaseRetriever
except ImportError as exc:  # one line that says what to install
    from localmem.dist import extra_hint
    from localmem.errors import DependencyError

    raise DependencyError(f"localmem.integrations.langchain needs langchain-core: {extra_hint('langchain')}") from exc

# The key in a memory's metadata that keeps the LangChain message as it was (type, content, extras):
# the stored text is dated and attributed for search, so it cannot give the message back exactly.
MESSAGE_KEY = "langchain_message"
# LangChain's message types, as the roles Memory.add takes.
_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "tool"}


class LocalmemRetriever(BaseRetriever):
    """``retriever.invoke("what does she like?")``: the scope's memories most similar to the query,
    as Documents (``page_content``: the memory; ``metadata``: its other fields, ``score`` among them)."""

    memory: Any
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    limit: int = 5
    filters: dict[str, Any] | None = None
    threshold: float | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = self.memory.search(query, user_id=self.user_id, agent_id=self.agent_id, run_id=self.run_id,
                                  limit=self.limit, filters=self.filters, threshold=self.threshold)["results"]
        return [Document(page_content=hit["memory"], id=hit["id"],
                         metadata={k: v for k, v in hit.items() if k != "memory"}) for hit in hits]


class LocalmemChatMessageHistory(BaseChatMessageHistory):
    """A session's messages (``run_id`` = ``session_id``), each stored as a memory, so they are also found
    by ``search``. ``infer=True`` extracts facts from them too. A message repeated word for word in
    the same session on the same day is kept once: the store keeps each thing said once."""

    MAX_MESSAGES = 10_000

    def __init__(self, memory: Any, session_id: str, *, user_id: str | None = None, agent_id: str | None = None,
                 infer: bool = False) -> None:
        self.memory = memory
        self.scope = {"run_id": session_id, "user_id": user_id, "agent_id": agent_id}
        self.infer = infer

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]  # LangChain declares an attribute
        items = self.memory.get_all(**self.scope, include_episodes=True, limit=self.MAX_MESSAGES)["results"]
        kept = sorted((i for i in items if i.get("kind") == "episode" and MESSAGE_KEY in (i.get("metadata") or {})),
                      key=lambda i: i["created_at"])
        return messages_from_dict([i["metadata"][MESSAGE_KEY] for i in kept])

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        # One add() a message: the metadata that gives a message back belongs to that message alone.
        for message in messages:
            content = message.content if isinstance(message.content, str) else message.text
            self.memory.add([{"role": _ROLES.get(message.type, "user"), "content": content}], **self.scope,
                            metadata={MESSAGE_KEY: message_to_dict(message)}, infer=self.infer)

    def clear(self) -> None:
        """Deletes every memory of the session (its facts too); their history is kept."""
        self.memory.delete_all(**self.scope)
