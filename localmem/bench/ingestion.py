"""Ingestion throughput through the public API, and the store's bulk path underneath it.

Three ways to write the same LoCoMo turns, each into a fresh Milvus Lite folder:
one ``Memory.add(infer=False)`` per message; one add() per batch of messages (a list
in one call); and ``store.insert`` of prepared records with precomputed vectors (no
embedding, no duplicate check, no history), which bounds what add() could reach.
add(infer=True) needs the language model and is measured by localmem/bench/extraction.py.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from localmem import LocalmemError, Memory, MemoryConfig
from localmem.bench import data
from localmem.bench.datasets import FETCH_HINT
from localmem.bench.embedding import Embedders, normalise
from localmem.bench.timing import summarize
from localmem.config import VectorStoreConfig
from localmem.records import MemoryRecord, Scope, now_iso, text_hash
from localmem.vector_stores.milvus import MilvusStore

BATCH = 50  # messages per add() call in the batched mode
BULK = 1000  # records per store.insert call


def _memory(emb: Embedders, path: Path) -> Memory:
    return Memory(MemoryConfig(vector_store=VectorStoreConfig(uri=str(path))), embedder=emb.default)


def run(emb: Embedders, *, n_single: int, n_batched: int | None, extraction_conversations: int | None,
        extraction_turns: int | None, seed: int, workdir: Path) -> dict[str, Any]:
    texts = data.ingest_texts()
    n_single = min(n_single, len(texts))
    n_batched = len(texts) if n_batched is None else min(n_batched, len(texts))
    out: dict[str, Any] = {"device": emb.device, "batch_messages": BATCH, "bulk_records": BULK,
                           "texts": "locomo" if data.has("locomo") else "generated"}

    with _memory(emb, workdir / "ingest_single.db") as memory:
        memory.add("warm-up", user_id="warmup", infer=False)
        times = []
        for text in texts[:n_single]:
            start = time.perf_counter()
            memory.add(text, user_id="bench", infer=False)
            times.append(time.perf_counter() - start)
        stats = summarize(times)
        out["single"] = {"messages": n_single, "memories_per_s": n_single / sum(times), "per_add": stats.to_dict()}

    with _memory(emb, workdir / "ingest_batched.db") as memory:
        memory.add("warm-up", user_id="warmup", infer=False)
        chunks = [texts[i:i + BATCH] for i in range(0, n_batched, BATCH)]
        start = time.perf_counter()
        for chunk in chunks:
            memory.add([{"role": "user", "content": t} for t in chunk], user_id="bench", infer=False)
        elapsed = time.perf_counter() - start
        out["batched"] = {"messages": n_batched, "memories_per_s": n_batched / elapsed,
                          "per_add_ms": 1000 * elapsed / len(chunks)}

    vectors = normalise(emb.embed_raw_cached(texts[:n_batched]))
    with _memory(emb, workdir / "ingest_bulk.db") as memory:
        stamp = now_iso()
        records = [MemoryRecord(str(uuid.UUID(int=i)), t, text_hash(t), Scope(user_id="bench"), {}, stamp)
                   for i, t in enumerate(texts[:n_batched])]
        start = time.perf_counter()
        for lo in range(0, n_batched, BULK):
            memory.store.insert(records[lo:lo + BULK], vectors[lo:lo + BULK])
        inserted = time.perf_counter()
        assert isinstance(memory.store, MilvusStore)
        memory.store.flush()  # count the flush a first search would pay, so the figure is end to end
        done = time.perf_counter()
        out["store_bulk"] = {"records": n_batched, "memories_per_s": n_batched / (done - start),
                             "insert_s": inserted - start, "flush_s": done - inserted}
    out["infer"] = (extraction(conversations=extraction_conversations, turns=extraction_turns, seed=seed)
                    if data.has("locomo") else {"skipped": f"needs LoCoMo ({FETCH_HINT} locomo)"})
    return out


def extraction(*, conversations: int | None, turns: int | None, seed: int) -> dict[str, Any]:
    """add(infer=True) latency and extraction quality, from localmem/bench/extraction.py."""
    from localmem.bench.extraction import measure_extraction

    start = time.perf_counter()
    try:
        # The first turns of each conversation: every turn of every conversation would take hours.
        per_conversation = max(1, (turns or 200) // (conversations or 6))
        result = dict(measure_extraction(per_conversation, 5, conversations))
    except LocalmemError as exc:  # e.g. the model is not prepared: the rest of the run keeps its figures
        return {"skipped": f"add(infer=True) not measured: {type(exc).__name__}: {exc}"}
    result["elapsed_s"] = time.perf_counter() - start
    return result
