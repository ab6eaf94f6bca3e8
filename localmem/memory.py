"""Memory: the facade users call, with Mem0's methods and return shapes.

It wires an embedder, a vector store, a history store and a (lazily loaded)
language model together and validates arguments; the algorithms live in
pipeline.py, writer.py and the backends.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from localmem import links, preload
from localmem.background import BackgroundExtractor, Progress
from localmem.config import MemoryConfig
from localmem.currency import is_chatter, is_own, words_of
from localmem.episodes import content_of
from localmem.errors import ConfigError, InvalidInputError, LocalmemWarning, MemoryNotFoundError, StoreError
from localmem.filters import Filter, names, parse_filters
from localmem.inputs import (
    check_limit,
    check_memory_id,
    check_metadata,
    check_text,
    check_threshold,
    parse_messages,
)
from localmem.jobs import AddRequest, Job
from localmem.pipeline import AddPipeline
from localmem.protocols import Embedder, HistoryStore, LanguageModel, VectorStore
from localmem.query import strip_scope
from localmem.records import CONTEXT, EPISODE, FACT, KINDS, MemoryRecord, Scope, SearchHit, text_hash
from localmem.retrieval.current import arrange, scored
from localmem.retrieval.results import assemble
from localmem.temporal import parse_timestamp
from localmem.writer import Write, Writer, checkpoint

# Memories are removed in pages of this size by delete_all (the store caps one query's result).
_PAGE = 1000
# A search draws this many more candidates than it returns: facts stand in for their episodes
# (results.py), so a few candidates collapse into one result.
_EXTRA_CANDIDATES = 20


class Memory:
    """Long-term memory for an AI application, fully offline.

    ``Memory()`` uses the embedded defaults: a Milvus Lite file ``./localmem.db``,
    all-MiniLM-L6-v2 and Gemma 3 270M. Any part can be passed in instead.
    """

    def __init__(self, config: MemoryConfig | None = None, *, embedder: Embedder | None = None,
                 store: VectorStore | None = None, history: HistoryStore | None = None,
                 llm: LanguageModel | None = None) -> None:
        self.config = config or MemoryConfig()
        self.config.validate()
        # The default store's client libraries load beside the embedder (see preload.py).
        store_modules_loaded = (preload.store_modules(self.config.vector_store.is_local_file)
                                if store is None and embedder is None else None)
        self.embedder = embedder or _default_embedder(self.config)
        if store_modules_loaded is not None:
            store_modules_loaded()
        self._warn_on_dims(self.config, self.embedder)
        _require_meaningful_scores(self.config, self.embedder)
        if store is None:
            # An embedder the caller passed is never swapped; the default one follows the store.
            self.embedder, self.store = _open_default(self.config, self.embedder, follow_store=embedder is None)
        else:
            self.store = store
        try:
            self.history_store = history or _default_history(self.config)
        except BaseException:
            # Release the store's file lock: a failed Memory() must not block the next attempt.
            self.store.close()
            raise
        self._llm = llm
        self._closed = False
        self._llm_lock = threading.Lock()
        self.writer = Writer(self.store, self.history_store)
        # One writer at a time keeps store and history in step across threads (import takes it too).
        self._write_lock = self.writer.lock
        try:
            self.writer.recover()  # finish any batch a crash left half-written
        except BaseException:
            self.history_store.close()
            self.store.close()
            raise
        self._pipeline = AddPipeline(self.config, self.embedder, self.store, self.writer, self._language_model)
        self._background = BackgroundExtractor(self.history_store.jobs, self._extract_jobs)
        try:
            if self.config.background_extraction and not self.history_store.keeps_jobs:
                raise ConfigError("background_extraction needs a history that keeps its queue: the server's history "
                                  "collection does not (processes would run each other's jobs); set "
                                  "history_db_path to an SQLite file")
            # Extraction acknowledged before a crash or close: run it now where this memory extracts in the
            # background, else with the first add() that loads the model (a `localmem search` never does).
            self._leftover_jobs = bool(self.history_store.jobs())
            if self._leftover_jobs and self.config.background_extraction:
                self.extract_queued()
        except BaseException:
            self.history_store.close()
            self.store.close()
            raise

    @classmethod
    def from_config(cls, config_dict: Mapping[str, Any]) -> Memory:
        """Build from Mem0's config dict shape (see MemoryConfig.from_dict)."""
        return cls(MemoryConfig.from_dict(config_dict))

    # -- writes ---------------------------------------------------------------
    def add(self, messages: Any, user_id: str | None = None, *, agent_id: str | None = None,
            run_id: str | None = None, metadata: dict[str, Any] | None = None, infer: bool = True,
            prompt: str | None = None, timestamp: int | float | str | datetime | None = None) -> dict[str, Any]:
        """Store what the messages say; returns ``{"results": [...], "relations": []}``.

        Each message is kept as an episode (its text dated and attributed: "(8 May 2023) Caroline: ...");
        with ``infer`` the extracted facts are stored too, linked to it. ``timestamp`` is when the
        messages were said (Unix seconds, ISO 8601 or datetime; default now). ``results`` lists the
        facts written, or the episodes where no fact was drawn (always, with infer=False).
        """
        scope = Scope(user_id, agent_id, run_id).require("add()")
        # Checked before anything is embedded: a refused 20 MB message must cost nothing.
        parsed = parse_messages(messages, self.store.limits.max_text_bytes)
        request = AddRequest(messages=parsed, scope=scope, metadata=check_metadata(metadata), infer=bool(infer),
                             prompt=prompt, moment=parse_timestamp(timestamp))
        with self._write_lock:
            changes = self._pipeline.run(request)
        if request.infer and (self.config.background_extraction or self._leftover_jobs):
            self.extract_queued()
        return {"results": [c.to_dict() for c in changes], "relations": []}

    def wait_for_extraction(self, timeout: float | None = None) -> bool:
        """With ``background_extraction``: block until the facts of every add() made so far are written.

        False when ``timeout`` (seconds) passed first, or when a job failed (it is logged on the
        "localmem" logger and stays queued, tried again on the next add or open). True at once
        when nothing is queued.
        """
        return self.extraction_progress(timeout).done

    def extraction_progress(self, timeout: float | None = 0.0, through: int | None = None) -> Progress:
        """``wait_for_extraction`` in detail: wait up to ``timeout`` seconds (default: just look) for the
        jobs up to ``through`` (default: all queued now); see ``background.Progress``."""
        if timeout is not None and not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout >= 0):
            raise InvalidInputError(f"timeout must be None or a number of seconds >= 0, got {timeout!r}")
        if through is not None and (isinstance(through, bool) or not isinstance(through, int)):
            raise InvalidInputError(f"through must be None or a job number from an earlier answer, got {through!r}")
        return self._background.wait(timeout, through)

    def extract_queued(self) -> None:
        """Start extracting, in the background, every add() still queued: those of this memory with
        ``background_extraction``, and any an earlier process or an import left (they also start with
        the first add(infer=True), or by themselves on an open with ``background_extraction``)."""
        self._leftover_jobs = False
        self._background.notify()

    def update(self, memory_id: str, data: str) -> dict[str, str]:
        text = check_text(data, "data", self.store.limits.max_text_bytes)
        with self._write_lock:
            old = self._record(memory_id)
            if text_hash(text) == old.hash:
                return {"message": "Memory updated successfully!"}
            # The contexts that quote the old words of a message go with them (context.py).
            # Whether it only acknowledges is a property of its words (currency.py): asked again.
            chatter = old.kind == EPISODE and is_chatter(content_of(text, old.speaker), old.role)
            self.writer.apply([Write.update(old, text, self.embedder.embed([text]), chatter=chatter),
                               *(Write.delete(c) for c in links.contexts_quoting(self.store, old))])
        return {"message": "Memory updated successfully!"}

    def delete(self, memory_id: str) -> dict[str, str]:
        """Delete a memory. Deleting a fact also deletes the episodes it was drawn from that no other
        fact draws on: what was forgotten is not found again through its message. Deleting an
        episode leaves the facts drawn from it (they no longer list it as a source) and deletes
        the contexts that quote it (context.py): its words leave the store."""
        with self._write_lock:
            self._delete(links.deleted_with(self.store, self._record(memory_id)))
        return {"message": "Memory deleted successfully!"}

    def delete_all(self, user_id: str | None = None, *, agent_id: str | None = None,
                   run_id: str | None = None) -> dict[str, str]:
        scope = Scope(user_id, agent_id, run_id).require("delete_all()")
        with self._write_lock:
            seen: set[str] = set()
            while page := self.store.records(scope, None, _PAGE):
                ids = {r.id for r in page}
                if ids & seen:  # the store did not drop what it was told to: stop, don't spin
                    raise StoreError(f"delete_all(): memories {sorted(ids & seen)[:3]} survived their deletion")
                seen |= ids
                self._delete(page)
        return {"message": "Memories deleted successfully!"}

    def reset(self) -> None:
        """Remove every memory and all history of this collection."""
        self.writer.reset()

    # -- reads ----------------------------------------------------------------
    def get(self, memory_id: str) -> dict[str, Any]:
        return self._with_sources([self._record(memory_id)])[0]

    def get_all(self, user_id: str | None = None, *, agent_id: str | None = None, run_id: str | None = None,
                filters: dict[str, Any] | None = None, limit: int = 100,
                include_episodes: bool = False) -> dict[str, Any]:
        """The facts, and the messages that yielded none (what Mem0 lists), oldest first.

        ``include_episodes=True`` lists every stored message as well. Each item's ``kind`` is
        ``"fact"`` or ``"episode"``; a fact lists its ``sources``.
        """
        scope = Scope(user_id, agent_id, run_id)
        parsed = parse_filters(filters)
        _require_scope_or_filters("get_all()", scope, parsed)
        limit = check_limit(limit, self.store.limits.max_results)
        if include_episodes:
            records = self.store.records(scope, parsed, limit, kinds=KINDS)
        else:
            # The scope's own memories: not chatter, not (in a user's scope) the assistant's replies (currency.py).
            has_user = scope.user_id is not None
            wanted = min(limit * 2 + 50, self.store.limits.max_results)
            while True:
                drawn = self.store.records(scope, parsed, wanted, kinds=KINDS, hide_covered=True)
                records = [r for r in drawn if r.kind != EPISODE or (not r.chatter and is_own(r.role, has_user))]
                if len(records) >= limit or len(drawn) < wanted or wanted == self.store.limits.max_results:
                    break
                wanted = self.store.limits.max_results
            records = records[:limit]
        return {"results": self._with_sources(records)}

    def search(self, query: str, user_id: str | None = None, *, agent_id: str | None = None,
               run_id: str | None = None, limit: int = 100, filters: dict[str, Any] | None = None,
               threshold: float | None = None) -> dict[str, Any]:
        """Memories for ``query``, best first: dense and BM25 (word) matches fused.

        Results come in rank order (meaning and words fused, what holds now first: results.py);
        ``score`` is the query's cosine similarity to the memory as matched, and ``threshold`` drops
        results scored below it. A fact comes with its ``sources``; a message shown as a fact's source
        is not repeated. ``filters`` may name ``speaker`` and a ``timestamp`` range.
        """
        text = check_text(query, "query", self.store.limits.max_text_bytes)
        scope = Scope(user_id, agent_id, run_id)
        parsed = parse_filters(filters)
        _require_scope_or_filters("search()", scope, parsed)
        limit = check_limit(limit, self.store.limits.max_results)
        minimum = check_threshold(threshold)
        if self.config.strip_scope_from_query:
            text = strip_scope(text, scope)
        vector = self.embedder.embed([text])
        candidates = min(limit + _EXTRA_CANDIDATES, self.store.limits.max_results)
        hits = self.store.search(vector, scope, parsed, candidates, text=words_of(text))

        def measure(found: list[SearchHit]) -> list[SearchHit]:
            return scored(found, vector, self.store.get_vectors, self._distance)

        hits = arrange(hits, query, scope, self.store.get, measure, any_speaker="speaker" in names(parsed))
        # Hits drawn by words alone have no similarity yet: their vectors are read in one call (about a
        # millisecond on a Lite folder); every hit is scored, so a threshold and assemble see them all.
        return {"results": assemble(measure(hits), limit, minimum, self.store.get)}

    def _distance(self, similarity: float) -> float:
        """The store's metric value for a similarity (unit vectors): L2 is squared, 2 - 2 cos."""
        metric = getattr(self.store, "metric", self.config.vector_store.metric_type)
        return 2.0 - 2.0 * similarity if metric == "L2" else similarity

    def history(self, memory_id: str) -> list[dict[str, Any]]:
        events = self.history_store.history(check_memory_id(memory_id))
        if not events:
            raise MemoryNotFoundError(memory_id)
        return [e.to_dict() for e in events]

    # -- lifecycle ------------------------------------------------------------
    def close(self) -> None:
        """Release the store (its file lock), the history database and the models. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._background.close()  # after the job under way; the rest stay queued for the next open
        with self._llm_lock:
            if self._llm is not None:
                self._llm.close()
        with self._write_lock:  # a write in another thread finishes first
            self.writer.close()
            self.store.close()
            self.history_store.close()
        self.embedder.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------
    def _extract_jobs(self, queued: list[tuple[int, str]]) -> None:
        """Queued extraction (background.py): the model outside the write lock, each job's writes under it."""
        jobs = [Job.from_json(body) for _, body in queued]
        results = self._pipeline.extract(jobs)
        checkpoint("extracted")
        for (job_id, _), job, (facts, flags) in zip(queued, jobs, results, strict=True):
            with self._write_lock:
                self._pipeline.finish(job_id, job, facts, flags)

    def _record(self, memory_id: str) -> MemoryRecord:
        found = self.store.get([check_memory_id(memory_id)])
        if not found or found[0].kind == CONTEXT:  # a context is a search key, not a memory (context.py)
            raise MemoryNotFoundError(memory_id)
        return found[0]

    def _with_sources(self, records: list[MemoryRecord]) -> list[dict[str, Any]]:
        wanted = sorted({s for r in records if r.kind == FACT for s in r.sources})
        episodes = {e.id: e for e in self.store.get(wanted)} if wanted else {}
        out = []
        for record in records:
            item = record.to_dict()
            if record.kind == FACT:
                item["sources"] = [e.source_dict() for s in record.sources if (e := episodes.get(s)) is not None
                                   and e.scope == record.scope]
            out.append(item)
        return out

    def _delete(self, records: list[MemoryRecord]) -> None:
        self.writer.apply([Write.delete(r) for r in records])

    def _language_model(self) -> LanguageModel:
        with self._llm_lock:
            if self._llm is None:
                from localmem.extractors.llama_cpp import LlamaCppModel

                self._llm = LlamaCppModel(self.config.llm)
            return self._llm

    @staticmethod
    def _warn_on_dims(config: MemoryConfig, embedder: Embedder) -> None:
        real = embedder.identity.dims
        for key, asked in (("vector_store.config.embedding_model_dims", config.vector_store.embedding_model_dims),
                           ("embedder.config.embedding_dims", config.embedder.embedding_dims)):
            if asked is not None and asked != real:
                warnings.warn(
                    f"{key}={asked} does not match the local embedder {embedder.identity.name!r}, which makes "
                    f"{real}-dimensional vectors; localmem uses {real}. Set it to {real} (or remove it) to "
                    "silence this warning.", LocalmemWarning, stacklevel=3)


def _require_meaningful_scores(config: MemoryConfig, embedder: Embedder) -> None:
    """The near-duplicate and related-memory thresholds are cosines: refuse settings that make them not."""
    metric = config.vector_store.metric_type
    if not embedder.identity.normalized and metric != "COSINE":
        raise ConfigError(
            f"embedder.config.normalize is false with vector_store.config.metric_type={metric!r}: scores would not "
            f"be cosines, so near_duplicate_threshold ({config.near_duplicate_threshold}) and the related-memory "
            "threshold would mean nothing; use metric_type 'COSINE' or normalize: true")


def _require_scope_or_filters(operation: str, scope: Scope, filters: Filter | None) -> None:
    if scope.is_empty and filters is None:
        raise InvalidInputError(f"{operation} needs user_id, agent_id, run_id or filters")


def _default_embedder(config: MemoryConfig) -> Embedder:
    from localmem.embedders.select import build_embedder

    return build_embedder(config.embedder)


def _open_default(config: MemoryConfig, embedder: Embedder, *, follow_store: bool) -> tuple[Embedder, VectorStore]:
    """The default store, and an embedder of the vectors it holds.

    With ``follow_store``, a collection filled with the bundled model at another precision than this
    process would pick (int8, opted into by the application that filled it; fp32 where int8 is the
    choice) is embedded for with that precision; otherwise a collection of other vectors is refused.
    """
    from localmem.embedders.select import alternatives, build_embedder
    from localmem.vector_stores.milvus import MilvusStore

    others = alternatives(config.embedder, embedder.identity) if follow_store else ()
    store = MilvusStore(config.vector_store, embedder.identity, others)
    if store.embedder.fingerprint == embedder.identity.fingerprint:
        return embedder, store
    try:
        embedder.close()
        return build_embedder(config.embedder, identity=store.embedder), store
    except BaseException:
        store.close()
        raise


def _default_history(config: MemoryConfig) -> HistoryStore:
    if config.history_db_path is None and not config.vector_store.is_local_file:
        # A server is shared by many processes: history lives beside the memories, on the server.
        from localmem.history.milvus import MilvusHistory

        return MilvusHistory(config.vector_store)
    from localmem.history.sqlite import SQLiteHistory

    return SQLiteHistory(config.resolved_history_path())
