"""Hybrid retrieval on a real Milvus Lite store: dense + Milvus's BM25 function, RRF-fused.

The hashing embedder makes the dense side weak on purpose, so a word only BM25 can match
shows whether the BM25 side takes part.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from localmem import LocalmemWarning, Memory, MemoryConfig, VectorStoreConfig
from localmem.embedders.fake import HashingEmbedder
from localmem.records import EPISODE, FACT, Kind, MemoryRecord, Scope, SearchHit
from localmem.results import assemble
from localmem.vector_stores import milvus
from localmem.vector_stores.fusion import RRF, Fusion

from .conftest import MemoryFactory

MAY_8 = 1683504000  # 8 May 2023, 00:00 UTC

TEXTS = ["Caroline: I went to the LGBTQ support group", "Melanie: I painted a sunset by the lake",
         "Caroline: my friend Zephyrine gave me a pendant", "Melanie: we went camping with the kids"]


def _fill(memory: Memory) -> None:
    for text in TEXTS:
        memory.add(text, user_id="c", infer=False)


def test_fused_scores_are_higher_is_better_in_0_1_and_threshold_cuts_them(make_memory: MemoryFactory,
                                                                           hashing_embedder: HashingEmbedder) -> None:
    memory = make_memory(hashing_embedder)
    _fill(memory)
    store: Any = memory.store
    assert store.hybrid
    hits = memory.search("Who gave Caroline a pendant, Zephyrine?", user_id="c")["results"]
    assert "Zephyrine" in hits[0]["memory"]
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True) and all(0 < s <= 1.0 + 1e-6 for s in scores)
    assert hits[0]["score"] == pytest.approx(RRF.scale(hits[0]["distance"]))
    kept = memory.search("Who gave Caroline a pendant, Zephyrine?", user_id="c", threshold=scores[1])["results"]
    assert [h["id"] for h in kept] == [h["id"] for h in hits if h["score"] >= scores[1]]
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


def test_a_fact_adds_to_its_message_at_key_weight_and_never_takes_a_place() -> None:
    # e and x tie on their own words; x's fact f1 ranks first by meaning and breaks the tie,
    # adding key_weight of its rank among all rows, without moving e down the messages' ranks.
    dense = [("f1", 0.9), ("e", 0.8), ("x", 0.7)]
    words = [("x", 2.0), ("e", 1.0)]
    fusion = Fusion(k=5, key_weight=0.15)
    fused = fusion.fuse(dense, words, group={"f1": "x"}, keys={"f1"})
    own = 1 / 6 + 1 / 7
    assert [key for key, _ in fused] == ["x", "e"]
    assert [score for _, score in fused] == pytest.approx([own + 0.15 * (1 / 6 + 1 / 6), own + 0.15 * (1 / 7 + 1 / 7)])
    assert fusion.scale(fused[0][1]) <= 1.0
    # Without facts the two terms rank alike: plain RRF, and first in both lists scores 1.
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
