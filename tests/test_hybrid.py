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
from localmem.vector_stores import milvus
from localmem.vector_stores.fusion import RRF

from .conftest import MemoryFactory

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
    assert hits[0]["score"] == pytest.approx(hits[0]["distance"] * (RRF.k + 1) / 2)
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
