"""The steps of add(): extract -> embed -> match -> decide -> write -> log.

Deterministic rules go first because they are more reliable than a small
model: an exact duplicate (same hash in the scope) or a near-duplicate
(cosine >= ``near_duplicate_threshold``) is never stored twice, and a fact
with no related memory is added without asking the model. Only a fact that
has related memories goes to the LLM, which sees them under small integer
ids and answers ADD / UPDATE / DELETE / NONE; an answer that names no shown
memory falls back to ADD. A stored memory that sets the same single-valued
attribute as the fact ("Lives in Paris" / "Moved to Berlin") counts as
related whatever its cosine: embeddings put such pairs far apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from localmem.config import MemoryConfig
from localmem.errors import ExtractionError
from localmem.extractors.rules import Slot, could_be_same_fact, slot_of
from localmem.protocols import Candidate, Embedder, LanguageModel, Vectors, VectorStore
from localmem.records import Change, Event, Fact, MemoryRecord, Message, Scope, SearchHit, now_iso, text_hash
from localmem.writer import Write, Writer

# Below this cosine a stored memory is unrelated to the new fact: no LLM call.
RELATED_THRESHOLD = 0.45
RAW_FALLBACK_FLAG = "unprocessed_raw_message"
UNRECONCILED_FLAG = "unreconciled"
# How many stored memories are searched for one that sets the same attribute as the fact.
SLOT_SEARCH_LIMIT = 20


@dataclass(frozen=True)
class AddRequest:
    messages: list[Message]
    scope: Scope
    metadata: dict[str, Any]
    infer: bool
    prompt: str | None = None


class AddPipeline:
    def __init__(self, config: MemoryConfig, embedder: Embedder, store: VectorStore, writer: Writer,
                 llm: Callable[[], LanguageModel]) -> None:
        self.config = config
        self.embedder = embedder
        self.store = store
        self.writer = writer
        self._llm = llm  # a factory: the model loads only when infer=True is first used

    def run(self, request: AddRequest) -> list[Change]:
        texts, flags = self._texts(request)
        if not texts:
            return []
        vectors = self.embedder.embed(texts)
        if request.infer and not flags:
            writes = self._reconcile(texts, vectors, request)
        else:
            writes = self._plain(texts, vectors, request, flags)
        self.writer.apply(writes)
        return [w.change() for w in writes]

    # -- extract -----------------------------------------------------------
    def _texts(self, request: AddRequest) -> tuple[list[str], tuple[str, ...]]:
        """The texts to store: extracted facts, or the raw messages (infer=False or fallback)."""
        raw = [m.content.strip() for m in request.messages if m.role != "system" and m.content.strip()]
        if not request.infer:
            return _unique(raw), ()
        prompt = request.prompt or self.config.custom_fact_extraction_prompt
        try:
            facts = self._llm().extract_facts(request.messages, prompt)
        except ExtractionError:
            if self.config.on_extraction_failure == "store_raw":
                return _unique(raw), (RAW_FALLBACK_FLAG,)
            raise
        return _unique([f.text.strip() for f in facts if f.text.strip()]), ()

    # -- infer=False -------------------------------------------------------
    def _plain(self, texts: list[str], vectors: Vectors, request: AddRequest,
               flags: tuple[str, ...]) -> list[Write]:
        metadata = dict(request.metadata)
        if flags:
            metadata["localmem_flags"] = list(flags)
        existing = self._existing_by_hash(texts, request.scope)
        writes = []
        for text, vector in zip(texts, vectors, strict=True):
            if (same := existing.get(text_hash(text))) is not None:
                writes.append(Write(Event.NONE, same, flags=("exact_duplicate",)))
            else:
                writes.append(Write(Event.ADD, _new_record(text, request.scope, metadata), vector[None, :],
                                    flags=flags))
        return writes

    # -- infer=True --------------------------------------------------------
    def _reconcile(self, texts: list[str], vectors: Vectors, request: AddRequest) -> list[Write]:
        existing = self._existing_by_hash(texts, request.scope)
        writes: list[Write] = []
        pending: list[tuple[MemoryRecord, Vectors]] = []  # ADDs of this call, matched like stored ones
        touched: set[str] = set()  # a stored memory is changed at most once per add()
        for text, vector in zip(texts, vectors, strict=True):
            if (same := existing.get(text_hash(text))) is not None:
                writes.append(Write(Event.NONE, same, flags=("exact_duplicate",)))
                continue
            slot = slot_of(text)
            limit = max(self.config.similarity_candidates, SLOT_SEARCH_LIMIT if slot else 0)
            hits = [h for h in self.store.search(vector[None, :], request.scope, None, limit)
                    if h.record.id not in touched]
            duplicate = self._near_duplicate(text, vector, hits, pending)
            if duplicate is not None:
                writes.append(Write(Event.NONE, duplicate, flags=("near_duplicate",)))
                continue
            related = _related(hits[:self.config.similarity_candidates], hits, slot)
            write = self._decide(text, vector, related, request) if related else None
            if write is None:
                write = Write(Event.ADD, _new_record(text, request.scope, request.metadata), vector[None, :])
            if write.event is Event.ADD:
                pending.append((write.record, vector))
            else:
                touched.add(write.record.id)
            writes.append(write)
        return writes

    def _near_duplicate(self, text: str, vector: Vectors, hits: Sequence[SearchHit],
                        pending: Sequence[tuple[MemoryRecord, Vectors]]) -> MemoryRecord | None:
        threshold = self.config.near_duplicate_threshold
        for hit in hits:
            if hit.score < threshold:
                break
            if could_be_same_fact(text, hit.record.memory):
                return hit.record
        for record, other in pending:
            if _cosine(vector, other) >= threshold and could_be_same_fact(text, record.memory):
                return record
        return None

    def _decide(self, text: str, vector: Vectors, related: Sequence[SearchHit],
                request: AddRequest) -> Write | None:
        candidates = [Candidate(key=i, text=h.record.memory) for i, h in enumerate(related)]
        try:
            decision = self._llm().reconcile(Fact(text), candidates, self.config.custom_update_memory_prompt)
        except ExtractionError:
            if self.config.on_extraction_failure == "raise":
                raise
            # The fact itself is sound; only its relation to stored ones is unknown: keep it, flagged.
            metadata = {**request.metadata, "localmem_flags": [UNRECONCILED_FLAG]}
            return Write(Event.ADD, _new_record(text, request.scope, metadata), vector[None, :],
                         flags=(UNRECONCILED_FLAG,))
        target = _target(decision.target_id, related)
        if decision.event is Event.ADD or target is None:
            return None  # ADD, or an answer naming no memory shown: add the fact as it is
        if decision.event is Event.NONE:
            return Write(Event.NONE, target)
        if decision.event is Event.DELETE:
            return Write.delete(target)
        new_text = decision.text.strip() or text
        if text_hash(new_text) == target.hash:
            return Write(Event.NONE, target)
        new_vector = vector[None, :] if new_text == text else self.embedder.embed([new_text])
        return Write.update(target, new_text, new_vector, metadata={**target.metadata, **request.metadata})

    def _existing_by_hash(self, texts: Sequence[str], scope: Scope) -> dict[str, MemoryRecord]:
        found = self.store.find_by_hash(sorted({text_hash(t) for t in texts}), scope)
        return {r.hash: r for r in found}


def _new_record(text: str, scope: Scope, metadata: dict[str, Any]) -> MemoryRecord:
    return MemoryRecord(id=str(uuid.uuid4()), memory=text, hash=text_hash(text), scope=scope,
                        metadata=dict(metadata), created_at=now_iso(), updated_at=None)


def _related(nearest: Sequence[SearchHit], hits: Sequence[SearchHit], slot: Slot | None) -> list[SearchHit]:
    """The nearest hits above RELATED_THRESHOLD, plus any hit that sets the fact's attribute."""
    related = [h for h in nearest if h.score >= RELATED_THRESHOLD]
    if slot is not None:
        seen = {h.record.id for h in related}
        related += [h for h in hits if h.record.id not in seen and _slot_name(h.record.memory) == slot.name]
    return related


def _slot_name(memory: str) -> str | None:
    other = slot_of(memory)
    return other.name if other is not None else None


def _target(key: str | None, related: Sequence[SearchHit]) -> MemoryRecord | None:
    if key is None or not key.isdigit() or int(key) >= len(related):
        return None
    return related[int(key)].record


def _unique(texts: list[str]) -> list[str]:
    return list(dict.fromkeys(texts))


def _cosine(a: Vectors, b: Vectors) -> float:
    denom = float(np.linalg.norm(a) * np.linalg.norm(b)) or 1.0
    return float(np.dot(a, b)) / denom
