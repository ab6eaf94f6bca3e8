"""A scope's copy in memory (retrieval/scopes.py) ranks as Milvus Lite's own searches do.

The copy answers every unfiltered search of a Lite store, so the rest of the suite tests it;
these tests compare it with the store that keeps none (``cache_rows=0``), on a real
conversation with the bundled embedder, and check its pieces against their references.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from localmem import Memory, MemoryConfig, VectorStoreConfig
from localmem.bench import data, memory_quality
from localmem.embedders.sentence_transformers import SentenceTransformerEmbedder
from localmem.records import EPISODE, FACT, MemoryRecord, Scope
from localmem.retrieval.scopes import ScopeCache, ScopeIndex
from localmem.retrieval.words import WordStats
from localmem.temporal import parse_locomo_datetime
from localmem.vector_stores import milvus

TURNS = 150


def test_the_copy_ranks_as_milvus_does_on_a_real_conversation(tmp_path: Path, shared_data: Path,
                                                               real_embedder: SentenceTransformerEmbedder,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # Milvus's BM25 draws 80 rows for rescoring, by its per-segment scores: 2 of these 64 questions
    # then rank differently from the copy, which scores every row. Drawn deep enough to take every
    # row, both must agree exactly.
    monkeypatch.setattr(milvus, "_WORD_DRAW", 20)
    data.use_root(shared_data)
    try:
        turns, questions = memory_quality.load(TURNS)
    finally:
        data.use_root(None)
    conv, kept = next(iter(turns.items()))
    asked = [q.text for q in questions if q.conversation == conv]
    assert len(asked) >= 20
    uri = str(tmp_path / "copy.db")
    with Memory(MemoryConfig(vector_store=VectorStoreConfig(uri=uri)), embedder=real_embedder) as memory:
        for t in kept:
            memory.add([{"role": "user", "content": t.said}], user_id=conv, infer=False,
                       metadata={"dia_id": t.dia_id}, timestamp=parse_locomo_datetime(t.when))
        # Facts drawn from every fifth message, and one that stands for none: both kinds of row.
        episodes = memory.get_all(user_id=conv, limit=1000, include_episodes=True)["results"]
        facts = [MemoryRecord(id=f"fact-{i}", memory=f"{e['speaker']} talked about {e['memory'][-60:]}",
                              hash=f"h{i}", scope=Scope(user_id=conv), kind=FACT, sources=(e["id"],))
                 for i, e in enumerate(episodes[::5])]
        facts.append(MemoryRecord(id="fact-alone", memory="Caroline paints sunsets by the lake", hash="alone",
                                  scope=Scope(user_id=conv), kind=FACT))
        memory.store.insert(facts, real_embedder.embed([f.memory for f in facts]))
        copied = [memory.search(q, user_id=conv, limit=5)["results"] for q in asked]
        dense = [[h.record.id for h in memory.store.search(real_embedder.embed([q]), Scope(user_id=conv), None, 5,
                                                           kinds=[EPISODE])] for q in asked]
    uncopied_config = MemoryConfig(vector_store=VectorStoreConfig(uri=uri, cache_rows=0))
    with Memory(uncopied_config, embedder=real_embedder) as memory:
        uncopied = [memory.search(q, user_id=conv, limit=5)["results"] for q in asked]
        milvus_dense = [[h.record.id for h in memory.store.search(real_embedder.embed([q]), Scope(user_id=conv), None,
                                                                  5, kinds=[EPISODE])] for q in asked]
    assert any(h["kind"] == FACT for hits in copied for h in hits)  # facts took part
    assert dense == milvus_dense
    for question, mine, theirs in zip(asked, copied, uncopied, strict=True):
        assert [h["id"] for h in mine] == [h["id"] for h in theirs], question
        assert [h["score"] for h in mine] == pytest.approx([h["score"] for h in theirs]), question
        assert [[s["id"] for s in h.get("sources", [])] for h in mine] == \
            [[s["id"] for s in h.get("sources", [])] for h in theirs], question


U = Scope(user_id="u")


def _record(key: str, text: str, kind: str = EPISODE, sources: tuple[str, ...] = (),
            scope: Scope = U) -> MemoryRecord:
    return MemoryRecord(id=key, memory=text, hash=key, scope=scope, kind=kind,  # type: ignore[arg-type]
                        sources=sources)


def test_word_scores_of_the_copy_are_the_statistics_scores() -> None:
    texts = ["the cat sat on the mat", "a dog and a cat", "birds sing at dawn", "the the the cat"]
    index = ScopeIndex(Scope(user_id="u"), 2, full=True)
    for i, text in enumerate(texts):
        index.put(_record(f"m{i}", text), [1.0, 0.0])
    index.put(_record("f", "the cat of Caroline", FACT, sources=("m0",)), [0.0, 1.0])
    stats = WordStats()
    stats.count(texts)  # the fact drawn from m0 is not counted, only scored
    assert index.stats == stats
    expected = dict(zip(["m0", "m1", "m2", "m3", "f"], stats.scores("cat dawn", [*texts, "the cat of Caroline"]),
                        strict=True))
    got = dict(index.words("cat dawn", 10, None))
    assert got == pytest.approx({k: v for k, v in expected.items() if v > 0})
    # Down to the 2nd row that ranks alone: the fact rides along without using up the depth.
    assert len([k for k, _ in index.words("cat dawn", 2, None) if k != "f"]) == 2
    assert [k for k, _ in index.words("cat", 10, [FACT])] == ["f"]


def test_the_copy_follows_puts_and_removes_and_leaves_other_scopes_out() -> None:
    index = ScopeIndex(Scope(user_id="u"), 2, full=True)
    for i in range(40):  # past the first allocation: the arrays grow
        index.put(_record(f"m{i}", f"word{i} common"), [np.cos(i), np.sin(i)])
    index.put(_record("x", "common elsewhere", scope=Scope(user_id="v")), [1.0, 0.0])
    assert len(index) == 40 and index.record("x") is None
    index.put(_record("m3", "replaced text"), [1.0, 0.0])
    index.remove("m4")
    assert index.record("m3") is not None and index.record("m3").memory == "replaced text"  # type: ignore[union-attr]
    assert index.record("m4") is None and len(index) == 39
    assert [k for k, _ in index.dense(np.array([1.0, 0.0]), "COSINE", 1, None)] in (["m3"], ["m0"])
    assert "m4" not in dict(index.words("common word4", 50, None))
    assert index.stats.docs == 39
    fresh = WordStats()
    fresh.count([f"word{i} common" for i in range(40) if i not in (3, 4)] + ["replaced text"])
    assert index.stats == fresh


def test_the_least_recently_searched_scopes_leave_first() -> None:
    cache = ScopeCache(max_rows=5)
    scopes = [Scope(user_id=name) for name in "abc"]
    for scope in scopes:
        index = ScopeIndex(scope, 2, full=True)
        for i in range(2):
            index.put(_record(f"{scope.user_id}{i}", "text", scope=scope), [1.0, 0.0])
        cache.keep(scope, index)
        if scope.user_id == "b":
            cache.get(scopes[0])  # a is searched again: b is now the oldest
    assert scopes[0] in cache and scopes[1] not in cache and scopes[2] in cache


def test_copies_grown_by_writes_past_the_bound_leave_too() -> None:
    cache = ScopeCache(max_rows=3)
    scope = Scope(user_id="u")
    cache.keep(scope, ScopeIndex(scope, 2, full=True))
    records = [_record(f"m{i}", "text") for i in range(4)]
    cache.written(records[:3], [[1.0, 0.0]] * 3, [])
    assert scope in cache
    cache.written(records[3:], [[1.0, 0.0]], [])
    assert scope not in cache  # searched in Milvus until a search loads it again (as statistics only)


def test_the_duplicate_check_reads_the_copy_for_the_exact_scope() -> None:
    index = ScopeIndex(U, 2, full=True)
    agent = Scope(user_id="u", agent_id="x")
    for key, scope in (("a", U), ("b", agent)):
        index.put(MemoryRecord(id=key, memory="same text", hash="h", scope=scope), [1.0, 0.0])
    assert [r.id for r in index.by_hash(["h", "other"], U)] == ["a"]
    assert [r.id for r in index.by_hash(["h"], agent)] == ["b"]
    index.remove("a")
    assert index.by_hash(["h"], U) == [] and [r.id for r in index.by_hash(["h"], agent)] == ["b"]


def test_two_memories_on_one_folder_see_each_other_s_writes(tmp_path: Path) -> None:
    """A copy is exact only while its store makes every write: a second store of this process
    on the folder (a second Memory on the same path) turns the first one's copies off."""
    from localmem.embedders.fake import HashingEmbedder

    embedder = HashingEmbedder()
    config = MemoryConfig(vector_store=VectorStoreConfig(uri=str(tmp_path / "one.db")))
    first = Memory(config, embedder=embedder)
    try:
        first.add("Caroline likes pottery", user_id="u", infer=False)
        assert len(first.search("pottery", user_id="u")["results"]) == 1  # copies the scope
        with Memory(config, embedder=embedder) as second:
            second.add("Caroline went camping", user_id="u", infer=False)
            assert len(first.search("camping", user_id="u")["results"]) == 2
            first.add("Melanie paints sunsets", user_id="u", infer=False)
            assert len(second.search("sunsets", user_id="u")["results"]) == 3
            again = second.add("Melanie paints sunsets", user_id="u", infer=False)["results"]
            assert [(r["event"], r["flags"]) for r in again] == [("NONE", ["exact_duplicate"])]
        first.add("Melanie runs", user_id="u", infer=False)  # alone again: copies come back, exact
        shown = " | ".join(h["memory"] for h in first.search("runs", user_id="u")["results"])
        assert "Melanie runs" in shown and "Caroline went camping" in shown
    finally:
        first.close()
