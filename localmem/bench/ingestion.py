"""Ingestion throughput through the public API, and the store's bulk path underneath it.

Three ways to write the same LoCoMo turns, each into a fresh Milvus Lite folder:
one ``Memory.add(infer=False)`` per message; one add() per batch of messages (a list
in one call); and, as the floor, pymilvus's own ``insert`` of the precomputed vectors and
texts into a bare collection of the same shape (a text field feeding Milvus's BM25
function, a FLAT index; no embedding, no duplicate check, no history): what add() could
reach on this store. The benchmark uses localmem's public API only; the floor uses Milvus's.
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
from localmem.vector_stores import lite

BATCH = 50  # messages per add() call in the batched mode
BULK = 1000  # rows per pymilvus insert call in the floor


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
    out["store_bulk"] = milvus_floor(texts[:n_batched], vectors, workdir / "ingest_floor.db")
    out["infer"] = (extraction(conversations=extraction_conversations, turns=extraction_turns, seed=seed)
                    if data.has("locomo") else {"skipped": f"needs LoCoMo ({FETCH_HINT} locomo)"})
    return out


def milvus_floor(texts: list[str], vectors: Any, path: Path) -> dict[str, Any]:
    """pymilvus inserting the rows ``BULK`` per call into a fresh Lite folder, then the flush a first
    search would pay: the store's own pace, with nothing of localmem's in between."""
    from pymilvus import DataType, Function, FunctionType

    # Through lite.py, as the store opens a folder: pymilvus's own Lite server listens on a loopback
    # port with 10 s keepalive pings, which a loaded machine answers with GOAWAY too_many_pings lines.
    client = lite.open_client(path)
    try:
        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(vectors.shape[1]))
        schema.add_field("memory", DataType.VARCHAR, max_length=65535, enable_analyzer=True)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                     input_field_names=["memory"], output_field_names=["sparse"]))
        index = client.prepare_index_params()
        index.add_index("vector", index_type="FLAT", metric_type="COSINE")
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection("floor", schema=schema, index_params=index)
        rows = [{"id": str(uuid.UUID(int=i)), "vector": v, "memory": t}
                for i, (t, v) in enumerate(zip(texts, vectors.tolist(), strict=True))]
        start = time.perf_counter()
        for lo in range(0, len(rows), BULK):
            client.insert("floor", rows[lo:lo + BULK])
        inserted = time.perf_counter()
        client.flush("floor")
        done = time.perf_counter()
    finally:
        lite.close_client(client, path)
    return {"records": len(rows), "memories_per_s": len(rows) / (done - start),
            "insert_s": inserted - start, "flush_s": done - inserted}


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
