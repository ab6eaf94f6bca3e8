"""The contracts between localmem's parts.

``Memory`` talks to an embedder, a vector store, a history store and a language
model only through these protocols, so any of them can be passed in
(``Memory(embedder=..., store=...)``) and unit tests can use the small fakes
shipped beside the real implementations.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from localmem.filters import Filter
from localmem.records import Decision, Fact, HistoryEvent, Kind, MemoryRecord, Message, Scope, SearchHit

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class EmbedderIdentity:
    """What filled a collection: stored with it so a mismatch is caught, not mixed."""

    name: str  # a label for people; comparisons use the fingerprint
    dims: int
    normalized: bool
    # sha256 over the files that decide the vectors (see embedders/identity.py); "" for an
    # embedder that cannot tell, which is then compared by name.
    fingerprint: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dims": self.dims, "normalized": self.normalized,
                "fingerprint": self.fingerprint}


@runtime_checkable
class Embedder(Protocol):
    @property
    def identity(self) -> EmbedderIdentity: ...

    @property
    def device(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Return one float32 row per text, shape (len(texts), dims)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class StoreLimits:
    """What one store can hold and return; the facade checks input against these before embedding,
    so a too-long text is refused in microseconds, the same way on every backend."""

    max_text_bytes: int  # UTF-8 bytes of one memory's text
    max_results: int  # rows one search or list returns at most


@dataclass(frozen=True)
class StoreHealth:
    """What ``localmem doctor`` reports about a store: found by reading, never by creating it."""

    status: Literal["ok", "warn", "fail"]
    where: str
    detail: str


# A Mem0 filters dict, or one already parsed by localmem.filters.parse_filters.
Filters = dict[str, Any] | Filter | None


@runtime_checkable
class VectorStore(Protocol):
    @property
    def limits(self) -> StoreLimits: ...

    def insert(self, records: Sequence[MemoryRecord], vectors: Vectors) -> None: ...

    def upsert(self, records: Sequence[MemoryRecord], vectors: Vectors) -> None: ...

    def get(self, ids: Sequence[str]) -> list[MemoryRecord]: ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def search(self, vector: Vectors, scope: Scope, filters: Filters, limit: int, *,
               text: str | None = None, kinds: Sequence[Kind] | None = None) -> list[SearchHit]:
        """Best first, higher score better; with ``text`` a store may fuse word matches (BM25) in."""
        ...

    def records(self, scope: Scope, filters: Filters, limit: int, *,
                kinds: Sequence[Kind] | None = None, hide_covered: bool = False) -> list[MemoryRecord]:
        """Memories of the scope that pass the filters, oldest first."""
        ...

    def latest(self, scope: Scope, since: int, until: int, count: int, *,
               kinds: Sequence[Kind] | None = None) -> list[MemoryRecord]:
        """The ``count`` latest memories of the scope timed from ``since`` to ``until`` (epoch seconds,
        both included), by timestamp then creation, oldest first."""
        ...

    def citing(self, episode_ids: Sequence[str], kinds: Sequence[Kind]) -> list[MemoryRecord]:
        """Records of these kinds (facts, contexts) whose sources include any of these episodes."""
        ...

    def get_vectors(self, ids: Sequence[str]) -> dict[str, Vectors]: ...

    def find_by_hash(self, hashes: Sequence[str], scope: Scope) -> list[MemoryRecord]:
        """Memories in exactly this scope whose text hash is one of ``hashes``."""
        ...

    def iterate(self, *, with_vectors: bool = False,
                batch_size: int = 1000) -> Iterator[tuple[MemoryRecord, Vectors | None]]:
        """Every memory of the collection, page by page; vectors only when asked for."""
        ...

    def count(self) -> int: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class HistoryStore(Protocol):
    def record(self, events: Sequence[HistoryEvent]) -> None:
        """Append events atomically: all of them or none."""
        ...

    def history(self, memory_id: str) -> list[HistoryEvent]: ...

    def all_events(self) -> list[HistoryEvent]:
        """Every event of every memory, oldest first (export reads this)."""
        ...

    def event_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of these event ids are already recorded (import skips them)."""
        ...

    # The write journal (journal.py), kept in the same database so that clearing an
    # intent and appending its history are one transaction.
    def begin(self, intent: str) -> int:
        """Record an intent durably; return its id."""
        ...

    def commit(self, intent_id: int | None, events: Sequence[HistoryEvent], *, reset: bool = False,
               queue: Sequence[str] = (), done: Sequence[int] = ()) -> None:
        """Append ``events`` (after emptying the history when ``reset``), add the jobs ``queue`` to the
        extraction queue, remove the jobs ``done`` and clear the intent (if any), atomically."""
        ...

    def mark(self, intent_id: int, intent: str) -> None: ...

    def discard(self, intent_id: int) -> None: ...

    def intents(self) -> list[tuple[int, str]]:
        """Intents left behind, oldest first."""
        ...

    # The background extraction queue (background.py), changed only through ``commit``.
    keeps_jobs: bool  # False: ``commit`` refuses ``queue`` and ``done``

    def jobs(self) -> list[tuple[int, str]]:
        """Queued jobs, oldest first."""
        ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Candidate:
    """A stored memory shown to the reconciler under a small integer id, never its uuid."""

    key: int
    text: str


@runtime_checkable
class LanguageModel(Protocol):
    """The two LLM steps of add(infer=True)."""

    def extract_facts(self, messages: Sequence[Message], custom_prompt: str | None = None) -> list[Fact]: ...

    def reconcile(self, fact: Fact, candidates: Sequence[Candidate],
                  custom_prompt: str | None = None) -> Decision: ...

    def close(self) -> None: ...


@runtime_checkable
class ManyExtractor(Protocol):
    """A LanguageModel that also reads several conversations in one batch (background extraction
    uses it when the model has it; otherwise one ``extract_facts`` per add() call)."""

    def extract_many(self, conversations: Sequence[Sequence[Message]],
                     custom_prompt: str | None = None) -> list[list[Fact]]:
        """``extract_facts`` of each conversation, in order."""
        ...
