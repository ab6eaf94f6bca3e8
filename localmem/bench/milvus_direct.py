"""Thin helpers over pymilvus's MilvusClient for the index sweep and the metric study.

The benchmarks talk to Milvus Lite directly here (not through MilvusStore) so every
index type and metric can be built side by side in one file; the product path is
measured separately in retrieval.py. Scores follow localmem's mapping, higher is
better for every metric: COSINE -> similarity, IP -> inner product, L2 -> 1 - d/2
where d is the squared distance Milvus returns.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

from localmem.protocols import Vectors

INSERT_BATCH = 5000
HNSW_BUILD = {"M": 16, "efConstruction": 200}
HNSW_SEARCH = {"ef": 64}
IVF_NPROBE = 16
INDEX_TYPES = ("FLAT", "HNSW", "IVF_FLAT", "AUTOINDEX")
METRICS = ("COSINE", "IP", "L2")


def ivf_nlist(n: int) -> int:
    # The usual rule of thumb (about 4*sqrt(N) lists), bounded so tiny corpora still train.
    return max(1, min(1024, int(4 * math.sqrt(n)), n // 39 or 1))


def build_params(index_type: str, n: int) -> dict[str, Any]:
    if index_type == "HNSW":
        return dict(HNSW_BUILD)
    if index_type == "IVF_FLAT":
        return {"nlist": ivf_nlist(n)}
    return {}


def search_params(index_type: str, metric: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if index_type == "HNSW":
        params = dict(HNSW_SEARCH)
    elif index_type == "IVF_FLAT":
        params = {"nprobe": IVF_NPROBE}
    return {"metric_type": metric, "params": params}


def to_score(metric: str, distance: float) -> float:
    return 1.0 - distance / 2.0 if metric == "L2" else distance


@dataclass(frozen=True)
class BuildTimes:
    rows: int
    insert_s: float
    flush_s: float
    index_s: float
    load_s: float

    def to_dict(self) -> dict[str, float]:
        return {"rows": self.rows, "insert_s": self.insert_s, "flush_s": self.flush_s, "index_s": self.index_s,
                "load_s": self.load_s, "insert_rows_per_s": self.rows / self.insert_s if self.insert_s else 0.0}


def create(client: Any, name: str, vectors: Vectors, users: list[str], index_type: str, metric: str) -> BuildTimes:
    """A fresh collection (id, user_id, vector): insert in batches, flush, index, load."""
    from pymilvus import DataType, MilvusClient

    if client.has_collection(name):
        client.drop_collection(name)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("user_id", DataType.VARCHAR, max_length=64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(vectors.shape[1]))
    client.create_collection(name, schema=schema)
    start = time.perf_counter()
    for lo in range(0, len(vectors), INSERT_BATCH):
        rows = [{"id": i, "user_id": users[i], "vector": vectors[i].tolist()}
                for i in range(lo, min(len(vectors), lo + INSERT_BATCH))]
        client.insert(name, rows)
    inserted = time.perf_counter()
    client.flush(name)
    flushed = time.perf_counter()
    index = client.prepare_index_params()
    params = build_params(index_type, len(vectors))
    # pymilvus 3 flattens ``params`` into separate key/values, but Milvus Lite 3.2 reads only a
    # JSON ``params`` key and silently uses its defaults otherwise: send both shapes.
    index.add_index("vector", index_type=index_type, metric_type=metric, params={**params, "params": params})
    client.create_index(name, index)
    indexed = time.perf_counter()
    client.load_collection(name)
    loaded = time.perf_counter()
    return BuildTimes(len(vectors), inserted - start, flushed - inserted, indexed - flushed, loaded - indexed)


def search(client: Any, name: str, query: list[float], k: int, index_type: str, metric: str,
           user: str | None = None) -> list[tuple[int, float]]:
    """Top-k (id, raw distance) for one query, optionally filtered on user_id."""
    kwargs: dict[str, Any] = {"limit": k, "search_params": search_params(index_type, metric)}
    if user is not None:
        # Milvus Lite has no filter templates; json.dumps quotes and escapes the literal.
        kwargs["filter"] = f"user_id == {json.dumps(user)}"
    hits = client.search(name, [query], **kwargs)[0]
    return [(int(h["id"]), float(h["distance"])) for h in hits]
