"""The retrieval core (localmem/retrieval/): one engine per deployment, and bounded state.

On a Lite folder a scope's copy ranks every search of the scope, filtered or not; on a
server the statistics the client keeps per scope are bounded, and no scope is loaded under
the lock every request takes.
"""

from __future__ import annotations

import threading
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from localmem import Memory, MemoryConfig, VectorStoreConfig
from localmem.bench import data, memory_quality
from localmem.embedders.fake import HashingEmbedder
from localmem.embedders.sentence_transformers import SentenceTransformerEmbedder
from localmem.records import EPISODE, MemoryRecord, Scope
from localmem.retrieval.scopes import STATS_ROW_BYTES, ScopeCache, ScopeIndex
from localmem.retrieval.words import WordStats
from localmem.temporal import parse_locomo_datetime
from localmem.vector_stores import milvus

from .conftest import MemoryFactory

TEXTS = ["Caroline: I went to the LGBTQ support group", "Melanie: I painted a sunset by the lake",
         "Caroline: my friend Zephyrine gave me a pendant", "Melanie: we went camping with the kids",
         "Caroline: the adoption agency called back", "Melanie: the kids loved the pottery class"]
EVERY_ROW = {"NOT": [{"session": "never"}]}  # true on every row: filtered, yet the same rows


def test_a_filtered_search_on_lite_is_ranked_by_the_scope_copy(make_memory: MemoryFactory,
                                                              hashing_embedder: HashingEmbedder,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    memory = make_memory(hashing_embedder)
    for i, text in enumerate(TEXTS):
        memory.add(text, user_id="c", infer=False, metadata={"session": f"s{i % 2}"})
    plain = memory.search("Who went camping with the kids?", user_id="c")["results"]

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a search of a copied scope reached Milvus's own search")

    monkeypatch.setattr(milvus.MilvusStore, "_hybrid", refuse)
    monkeypatch.setattr(milvus.MilvusStore, "_dense", refuse)
    filtered = memory.search("Who went camping with the kids?", user_id="c", filters=EVERY_ROW)["results"]
    assert [(h["id"], h["score"]) for h in filtered] == [(h["id"], h["score"]) for h in plain]
    one_session = memory.search("Who went camping with the kids?", user_id="c", filters={"session": "s1"})["results"]
    assert {h["metadata"]["session"] for h in one_session} == {"s1"}
    assert [h["memory"] for h in one_session] == [h["memory"] for h in plain if h["metadata"]["session"] == "s1"]


def test_filtered_and_unfiltered_rank_alike_on_a_real_conversation(tmp_path: Path, shared_data: Path,
                                                                   real_embedder: SentenceTransformerEmbedder) -> None:
    data.use_root(shared_data)
    try:
        turns, questions = memory_quality.load(120)
    finally:
        data.use_root(None)
    conv, kept = next(iter(turns.items()))
    asked = [q.text for q in questions if q.conversation == conv]
    config = MemoryConfig(vector_store=VectorStoreConfig(uri=str(tmp_path / "one.db")))
    with Memory(config, embedder=real_embedder) as memory:
        for t in kept:
            memory.add([{"role": "user", "content": t.said}], user_id=conv, infer=False,
                       metadata={"dia_id": t.dia_id}, timestamp=parse_locomo_datetime(t.when))
        for question in asked:
            plain = memory.search(question, user_id=conv, limit=5)["results"]
            filtered = memory.search(question, user_id=conv, limit=5, filters={"dia_id": "*"})["results"]
            assert [(h["id"], h["score"]) for h in filtered] == [(h["id"], h["score"]) for h in plain], question


def test_statistics_kept_for_a_server_are_bounded_least_recently_searched_first() -> None:
    cache = ScopeCache(max_rows=0, max_counted=180)  # ten scopes of ten rows, each entry weighing 8 more
    for user in range(1000):
        index = ScopeIndex(Scope(user_id=f"u{user}"), 4, full=False)
        index.stats.count([f"message {n} of user {user}" for n in range(10)])
        cache.keep(index.scope, index)
        if user == 500:
            cache.keep(Scope(user_id="huge"), None)  # a scope too large to count weighs one row
    assert len(cache) == 10
    assert Scope(user_id="u999") in cache and Scope(user_id="u989") not in cache


def test_a_counted_row_costs_what_the_cache_documents(shared_data: Path) -> None:
    data.use_root(shared_data)
    try:
        turns, _ = memory_quality.load(200)
    finally:
        data.use_root(None)
    texts = [t.said for t in next(iter(turns.values()))]  # one scope: each word is new to it once
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    stats = WordStats()
    stats.count(texts)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(texts) == 200
    assert grown / len(texts) <= STATS_ROW_BYTES


def _store(tmp_path: Path) -> milvus.MilvusStore:
    from localmem.protocols import EmbedderIdentity

    return milvus.MilvusStore(VectorStoreConfig(uri=str(tmp_path / "locks.db")),
                              EmbedderIdentity(name="t", dims=4, normalized=True))


def _rows(user: str, n: int, start: int = 0) -> tuple[list[MemoryRecord], np.ndarray]:
    records = [MemoryRecord(id=f"{user}-{i}", memory=f"{user} said thing {i}", hash=f"{user}{i}",
                            scope=Scope(user_id=user), created_at=f"2026-01-01T00:00:{i:02d}+00:00", kind=EPISODE)
               for i in range(start, start + n)]
    vectors = np.random.default_rng(start).standard_normal((n, 4)).astype(np.float32)
    return records, vectors


def test_a_scope_loads_without_holding_the_lock_and_a_write_meanwhile_is_not_lost(tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        store.insert(*_rows("a", 3))
        store.insert(*_rows("b", 3))
        query = np.ones((1, 4), dtype=np.float32)
        store.search(query, Scope(user_id="a"), None, 10, text="thing")  # a is copied
        loading, release = threading.Event(), threading.Event()
        load = store._load

        def slow_load(scope: Scope, alone: bool) -> ScopeIndex | None:
            index = load(scope, alone)
            if scope.user_id == "b" and not release.is_set():
                loading.set()
                assert release.wait(30)
            return index

        store._load = slow_load  # type: ignore[method-assign]
        found: list[set[str]] = []
        worker = threading.Thread(target=lambda: found.append(
            {h.record.id for h in store.search(query, Scope(user_id="b"), None, 10, text="thing")}))
        worker.start()
        assert loading.wait(30)
        # While b loads, other requests go on: a search of a, a get, and a write to b itself.
        assert {h.record.id for h in store.search(query, Scope(user_id="a"), None, 10, text="thing")} == \
            {"a-0", "a-1", "a-2"}
        assert [r.id for r in store.get(["a-1"])] == ["a-1"]
        store.insert(*_rows("b", 1, start=3))
        release.set()
        worker.join(30)
        assert found == [{"b-0", "b-1", "b-2", "b-3"}]  # the load that missed the write was not kept
    finally:
        store.close()


CONVERSATION = [
    "Caroline: I went to the LGBTQ support group yesterday and it was powerful",
    "Melanie: That's great! I painted a sunset by the lake last weekend",
    "Caroline: My friend Zephyrine gave me a pendant from Sweden",
    "Melanie: We went camping with the kids in the mountains",
    "Caroline: I'm researching adoption agencies for next year",
    "Melanie: The kids loved the pottery class, we made bowls",
    "Caroline: I want to study counseling and mental health",
    "Melanie: I run every morning to clear my head",
    "Caroline: The pendant reminds me of my grandmother in Sweden",
    "Melanie: My daughter's birthday party is on Saturday",
]
QUESTIONS = ["Who gave Caroline a pendant?", "What did Melanie paint?", "Where did Melanie go camping?",
             "What is Caroline researching?", "What does Melanie do every morning?", "kids"]


def test_the_reference_store_ranks_as_milvus_lite_through_the_core(tmp_path: Path,
                                                                   hashing_embedder: HashingEmbedder) -> None:
    from localmem.vector_stores.reference import ReferenceStore, forget

    def run(memory: Memory) -> list[list[tuple[str, str, float]]]:
        for i, text in enumerate(CONVERSATION):
            memory.add(text, user_id="c", infer=False, metadata={"turn": i}, timestamp=1683504000 + 60 * i)
        episodes = memory.get_all(user_id="c", include_episodes=True)["results"]
        facts = [MemoryRecord(id=f"fact-{i}", memory=f"{e['speaker'] or 'someone'} mentioned {e['memory'][-30:]}",
                              hash=f"h{i}", scope=Scope(user_id="c"), kind="fact", sources=(e["id"],),
                              created_at=f"2026-01-02T00:00:{i:02d}+00:00")
                 for i, e in enumerate(episodes[::3])]
        memory.store.insert(facts, hashing_embedder.embed([f.memory for f in facts]))
        out = []
        for question in QUESTIONS:
            for filters in (None, {"turn": {"gte": 3}}):
                hits = memory.search(question, user_id="c", limit=5, filters=filters)["results"]
                out.append([(h["memory"], h["kind"], round(h["score"], 9)) for h in hits])
        return out

    config = MemoryConfig(vector_store=VectorStoreConfig(uri=str(tmp_path / "lite.db")))
    with Memory(config, embedder=hashing_embedder) as memory:
        on_lite = run(memory)
    config = MemoryConfig(vector_store=VectorStoreConfig(uri=str(tmp_path / "ref.db"), collection_name="ranking"))
    store = ReferenceStore(config.vector_store, hashing_embedder.identity)
    try:
        with Memory(config, embedder=hashing_embedder, store=store) as memory:
            on_reference = run(memory)
    finally:
        forget("ranking")
    assert any(kind == "fact" for hits in on_lite for _, kind, _ in hits)  # facts took part
    assert on_reference == on_lite
