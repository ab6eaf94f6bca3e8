"""Hybrid retrieval on a real Milvus Lite store: dense + Milvus's BM25 function, RRF-fused.

The hashing embedder makes the dense side weak on purpose, so a word only BM25 can match
shows whether the BM25 side takes part.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from localmem import LocalmemWarning, Memory, MemoryConfig, VectorStoreConfig
from localmem.embedders.fake import HashingEmbedder
from localmem.query import strip_scope
from localmem.records import EPISODE, FACT, Kind, MemoryRecord, Scope, SearchHit
from localmem.retrieval.fusion import Fusion
from localmem.retrieval.results import assemble
from localmem.retrieval.words import WordStats
from localmem.vector_stores import milvus

from .conftest import MemoryFactory

MAY_8 = 1683504000  # 8 May 2023, 00:00 UTC

TEXTS = ["Caroline: I went to the LGBTQ support group", "Melanie: I painted a sunset by the lake",
         "Caroline: my friend Zephyrine gave me a pendant", "Melanie: we went camping with the kids"]


def _fill(memory: Memory) -> None:
    for text in TEXTS:
        memory.add(text, user_id="c", infer=False)


def test_scores_are_similarities_in_rank_order_and_threshold_cuts_them(make_memory: MemoryFactory,
                                                                        hashing_embedder: HashingEmbedder) -> None:
    memory = make_memory(hashing_embedder)
    _fill(memory)
    store: Any = memory.store
    assert store.hybrid
    query = "Who gave Caroline a pendant, Zephyrine?"
    hits = memory.search(query, user_id="c")["results"]
    assert "Zephyrine" in hits[0]["memory"]
    # One meaning: the cosine of the query (as searched: the scope's name left out) and the memory.
    vectors = store.get_vectors([h["id"] for h in hits])
    q = hashing_embedder.embed([strip_scope(query, Scope(user_id="c"))])[0]
    for hit in hits:
        assert hit["score"] == pytest.approx(float(np.dot(q, vectors[hit["id"]])), abs=1e-5)
        assert hit["distance"] == pytest.approx(hit["score"])  # COSINE: Milvus's value is the similarity
    cut = sorted((h["score"] for h in hits), reverse=True)[1]
    kept = memory.search(query, user_id="c", threshold=cut)["results"]
    assert [h["id"] for h in kept] == [h["id"] for h in hits if h["score"] >= cut]
    assert 2 <= len(kept) < len(hits)


def test_a_word_only_bm25_can_match_ranks_first(make_memory: MemoryFactory, hashing_embedder: HashingEmbedder) -> None:
    memory = make_memory(hashing_embedder)
    _fill(memory)
    hits = memory.search("camping", user_id="c", limit=1)["results"]
    assert "camping" in hits[0]["memory"]


def test_a_store_without_bm25_searches_dense_and_warns_once(tmp_path: Path, hashing_embedder: HashingEmbedder,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(milvus.MilvusStore, "_bm25_supported", lambda self: False)  # a Milvus 2.3 server
    config = MemoryConfig(vector_store=VectorStoreConfig(uri=str(tmp_path / "dense.db")))
    with pytest.warns(LocalmemWarning, match="BM25") as caught:
        memory = Memory(config, embedder=hashing_embedder)
    assert len([w for w in caught if "BM25" in str(w.message)]) == 1
    with memory, warnings.catch_warnings():
        warnings.simplefilter("error")  # searching must not warn again
        _fill(memory)
        hits = memory.search("Melanie painted a sunset by the lake", user_id="c")["results"]
        assert "sunset" in hits[0]["memory"]
        assert hits[0]["score"] == pytest.approx(hits[0]["distance"])  # the cosine, as before


def test_search_settings_come_from_the_config(tmp_path: Path, hashing_embedder: HashingEmbedder) -> None:
    """hybrid=false is dense only (no warning); rrf_k sets the fused score's scale."""
    uri = str(tmp_path / "settings.db")
    with Memory(MemoryConfig(vector_store=VectorStoreConfig(uri=uri)), embedder=hashing_embedder) as memory:
        _fill(memory)
    dense_only = MemoryConfig(vector_store=VectorStoreConfig(uri=uri, hybrid=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Memory(dense_only, embedder=hashing_embedder) as memory:
            hits = memory.search("camping", user_id="c")["results"]
    assert hits[0]["score"] == pytest.approx(hits[0]["distance"])  # a cosine, not a fused rank
    textbook = MemoryConfig(vector_store=VectorStoreConfig(uri=uri, rrf_k=60, fusion_depth=30))
    with Memory(textbook, embedder=hashing_embedder) as memory:
        top = memory.search("camping", user_id="c", limit=1)["results"][0]
    assert "camping" in top["memory"]
    assert top["score"] == pytest.approx(hits[0]["score"])  # a similarity whatever the fusion settings


def test_a_group_ranks_once_per_list_at_its_best_row() -> None:
    # Message x has three facts that the dense list ranks first; message e is fourth there and
    # first by words. Row by row, x's facts push e to fourth; as groups, e is second in dense.
    dense = [("x1", 0.9), ("x2", 0.8), ("x3", 0.7), ("e", 0.6), ("x", 0.5)]
    words = [("e", 3.0)]
    fusion = Fusion(k=5, key_weight=0.0)  # no facts among the keys here: the groups alone
    rows = dict(fusion.fuse(dense, words))
    assert rows["e"] == pytest.approx(1 / 9 + 1 / 6)
    grouped = fusion.fuse(dense, words, group={"x1": "x", "x2": "x", "x3": "x"})
    assert [key for key, _ in grouped] == ["e", "x"]
    assert [score for _, score in grouped] == pytest.approx([1 / 7 + 1 / 6, 1 / 6])


def test_a_context_adds_to_its_message_at_key_weight_and_a_fact_adds_nothing() -> None:
    # e and x tie on their own words; x's context c1 ranks first by meaning and breaks the tie,
    # adding key_weight of its rank among messages and contexts, without moving e down the messages' ranks.
    dense = [("c1", 0.9), ("e", 0.8), ("x", 0.7)]
    words = [("x", 2.0), ("e", 1.0)]
    fusion = Fusion(k=5, key_weight=0.15)
    fused = fusion.fuse(dense, words, group={"c1": "x"}, keys={"c1"})
    own = 1 / 6 + 1 / 7
    assert [key for key, _ in fused] == ["x", "e"]
    assert [score for _, score in fused] == pytest.approx([(own + 0.15 * (1 / 6 + 1 / 6)) / 1.15,
                                                           (own + 0.15 * (1 / 7 + 1 / 7)) / 1.15])
    assert fusion.scale(fused[0][1]) <= 1.0
    # The same row as a fact ranks nothing: the messages keep their tie, in the dense order.
    silent = fusion.fuse(dense, words, group={"c1": "x"}, keys={"c1"}, silent={"c1"})
    assert [key for key, _ in silent] == ["e", "x"]
    assert [score for _, score in silent] == pytest.approx([own, own])
    # Without keys the two terms rank alike: plain RRF, and first in both lists scores 1.
    plain_rrf = fusion.fuse([("a", 0.9), ("b", 0.8)], [("a", 3.0)])
    assert [key for key, _ in plain_rrf] == ["a", "b"] and fusion.scale(plain_rrf[0][1]) == pytest.approx(1.0)


def test_a_lone_fact_does_not_outrank_a_better_message() -> None:
    # The only fact in a scope is not "first among facts": it counts at its rank among all rows.
    dense = [("tennis", 0.5), ("exam-fact", 0.3), ("exam", 0.2)]
    words: list[tuple[str, float]] = []
    fused = Fusion().fuse(dense, words, group={"exam-fact": "exam"}, keys={"exam-fact"})
    assert [key for key, _ in fused] == ["tennis", "exam"]


def test_a_covered_message_is_shown_as_its_best_ranked_fact_or_else_as_itself() -> None:
    scope = Scope(user_id="c")

    def record(key: str, kind: Kind, *, sources: tuple[str, ...] = (), covered: bool = False) -> MemoryRecord:
        return MemoryRecord(id=key, memory=f"text of {key}", hash=key, scope=scope, kind=kind, sources=sources,
                            covered=covered)

    a, b = record("a", EPISODE, covered=True), record("b", EPISODE, covered=True)
    fact = record("fa", FACT, sources=("a",))
    hits = [SearchHit(a, 0.9, 0.9), SearchHit(b, 0.8, 0.8), SearchHit(fact, 0.7, 0.7)]
    shown = assemble(hits, 5, None, lambda ids: [r for r in (a, b) if r.id in ids])
    # a's fact ranked lower than a itself: it is shown at a's place, with a attached; b's facts
    # did not rank, so b (whose own words matched) is shown as itself.
    assert [(r["id"], r["kind"]) for r in shown] == [("fa", FACT), ("b", EPISODE)]
    assert [s["id"] for s in shown[0]["sources"]] == ["a"] and shown[0]["score"] == 0.9


def test_facts_leave_the_word_statistics_of_messages_alone(make_memory: MemoryFactory,
                                                           hashing_embedder: HashingEmbedder) -> None:
    # Milvus Lite scores BM25 with each segment's own statistics. Twenty facts that all name
    # Caroline, stored among the messages, would make her name a common word there and turn the
    # order of these two messages for "Caroline pottery"; facts are kept in a partition of their own.
    texts = ["Caroline: a fine day", "Melanie: the pottery class was fun and long and very good today"]
    query = "Caroline pottery"
    plain_store, with_facts = make_memory(hashing_embedder, name="plain.db"), make_memory(hashing_embedder)
    for memory in (plain_store, with_facts):
        for text in texts:
            memory.add(text, user_id="c", infer=False, timestamp=MAY_8)
    messages = with_facts.get_all(user_id="c")["results"]
    source = next(m["id"] for m in messages if "Caroline" in m["memory"])
    facts = [f"Caroline said thing {i}" for i in range(20)]
    records = [MemoryRecord(id=f"f{i}", memory=text, hash=f"h{i}", scope=Scope(user_id="c"), kind=FACT,
                            speaker="Caroline", timestamp=MAY_8, sources=(source,))
               for i, text in enumerate(facts)]
    with_facts.store.insert(records, hashing_embedder.embed(facts))

    def ranked(memory: Memory) -> list[tuple[str, float]]:
        vector = hashing_embedder.embed([query])
        hits = memory.store.search(vector, Scope(user_id="c"), None, 5, text=query, kinds=[EPISODE])
        return [(hit.record.memory, hit.score) for hit in hits]

    alone = ranked(plain_store)
    assert "Caroline" in alone[0][0]  # the shorter message, while her name is a rare word
    assert ranked(with_facts) == alone
    shown = with_facts.search(query, user_id="c")["results"]
    order = [h["sources"][0]["memory"] if h["kind"] == "fact" else h["memory"] for h in shown]
    assert order == [text for text, _ in alone]


WORDY = ["Caroline: the pottery class was fun", "Melanie: I went camping with the kids by the lake",
         "Caroline: my friend Zephyrine gave me a pendant", "Melanie: pottery and painting keep me calm",
         "Caroline: the support group met at the library", "Melanie: the kids loved the camping trip",
         "Caroline: I am researching adoption agencies", "Melanie: Zephyrine came to the pottery class too"]
QUERIES = ["pottery class", "camping with the kids", "Zephyrine pendant", "adoption agencies library"]


def _ranked(memory: Memory, query: str) -> list[tuple[str, float]]:
    return [(h["memory"], round(h["score"], 9)) for h in memory.search(query, user_id="c", limit=8)["results"]]


def test_word_scores_do_not_depend_on_when_rows_were_flushed(make_memory: MemoryFactory,
                                                             hashing_embedder: HashingEmbedder) -> None:
    # Milvus Lite scores BM25 per segment. One flush per add (a chatbot that searches between adds)
    # leaves segments of one message, whose words get the idf of a one-document corpus.
    one_by_one, at_once = make_memory(hashing_embedder, name="one.db"), make_memory(hashing_embedder)
    other_user = make_memory(hashing_embedder, name="other.db")
    for text in WORDY:
        one_by_one.add(text, user_id="c", infer=False, timestamp=MAY_8)
        one_by_one.store.flush()  # type: ignore[attr-defined]
        at_once.add(text, user_id="c", infer=False, timestamp=MAY_8)
    for text in WORDY[:3]:  # another user's words do not weigh in this user's scores
        other_user.add(text.replace("Caroline", "Bob"), user_id="someone else", infer=False, timestamp=MAY_8)
    for text in WORDY:
        other_user.add(text, user_id="c", infer=False, timestamp=MAY_8)
    for query in QUERIES:
        assert _ranked(one_by_one, query) == _ranked(at_once, query) == _ranked(other_user, query), query


def test_word_statistics_follow_adds_updates_and_deletes(tmp_path: Path, hashing_embedder: HashingEmbedder) -> None:
    config = MemoryConfig(vector_store=VectorStoreConfig(uri=str(tmp_path / "kept.db")))
    query = "pottery Zephyrine"
    with Memory(config, embedder=hashing_embedder) as memory:
        for text in ["Caroline: pottery day", "Melanie: Zephyrine came by for a long and lovely visit today",
                     "Caroline: hello", "Melanie: hi"]:
            memory.add(text, user_id="c", infer=False, timestamp=MAY_8)
        assert "pottery day" in _ranked(memory, query)[0][0]  # loads the scope's statistics
        # Pottery becomes a common word; counted as the rows are written, it weighs less than Zephyrine.
        for i in range(6):
            memory.add(f"Caroline: pottery lesson number {i}", user_id="c", infer=False, timestamp=MAY_8)
        listed = memory.get_all(user_id="c", include_episodes=True)["results"]  # greetings are not memories
        hello, hi = (r for r in listed if r["memory"].endswith(("hello", "hi")))
        memory.update(hello["id"], "Caroline: more pottery")
        memory.delete(hi["id"])
        kept = _ranked(memory, query)
    with Memory(config, embedder=hashing_embedder) as memory:  # a new handle counts every row afresh
        assert _ranked(memory, query) == kept


def test_bm25_with_the_scope_s_statistics() -> None:
    stats = WordStats()
    docs = ["the cat sat", "the dog sat down", "a bird"]
    stats.count(docs)
    # By hand: N 3, mean length 3; "cat" is in one document, "sat" in two.
    idf_cat, idf_sat = math.log((3 - 1 + 0.5) / 1.5 + 1), math.log((3 - 2 + 0.5) / 2.5 + 1)
    assert stats.scores("cat sat", ["the cat sat"]) == [pytest.approx(idf_cat + idf_sat)]
    assert stats.scores("fish", ["the cat sat"]) == [0.0]
    stats.count(["a bird"], -1)
    fresh = WordStats()
    fresh.count(docs[:2])
    assert stats == fresh
