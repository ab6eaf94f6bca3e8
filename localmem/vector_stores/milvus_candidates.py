"""The candidates Milvus draws for the retrieval core: rows nearest a vector, rows sharing a word with a text.

Each list comes back best first by Milvus's own scores, with the rows' fields; ranking them is
the core's (retrieval/ranking.py). Fusion runs in localmem, on two plain searches, rather than
in Milvus Lite's ``hybrid_search``: on an 838-row collection filtered to one scope the two
searches took 7.3 ms + 4.0 ms, ``hybrid_search`` 165 ms.
"""

from __future__ import annotations

from typing import Any

from localmem.protocols import Vectors
from localmem.records import EPISODE, KEY_KINDS
from localmem.vector_stores.milvus_rows import RECORD_FIELDS, all_of, kinds_expression
from localmem.vector_stores.milvus_schema import FACTS_PARTITION, MESSAGES_PARTITION

# A wide beam keeps HNSW close to exact when the scope filter drops most neighbours.
HNSW_EF = 256


def search_params(index_type: str, metric: str, limit: int) -> dict[str, Any]:
    params: dict[str, Any] = {"ef": max(HNSW_EF, limit)} if index_type in ("HNSW", "AUTOINDEX") else {}
    return {"metric_type": metric, "params": params}


def dense(client: Any, name: str, query: Vectors, expression: str, limit: int,
          params: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows nearest ``query`` that ``expression`` selects, best first, with their fields."""
    hits: list[dict[str, Any]] = list(client.search(
        name, data=[query.tolist()], filter=expression, limit=limit, output_fields=RECORD_FIELDS,
        anns_field="vector", search_params=params)[0])
    return hits


def words(client: Any, name: str, text: str, expression: str, limit: int,
          partition: str | None) -> list[dict[str, Any]]:
    """The rows BM25 matches with ``text``, best first by Milvus's scores, with their fields."""
    hits: list[dict[str, Any]] = list(client.search(
        name, data=[text], filter=expression, limit=limit, output_fields=RECORD_FIELDS,
        anns_field="sparse", search_params={"metric_type": "BM25"},
        partition_names=[partition] if partition else None)[0])
    return hits


def hybrid(client: Any, name: str, query: Vectors, text: str, expression: str, *, depth: int, draw: int,
           keyed: bool, apart: bool, params: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(dense, word) candidates of a hybrid search. ``keyed``: messages and keys (facts, contexts) are
    drawn apart, so keys never shorten the messages' lists; ``apart``: each kind's words from its own
    partition, else one list drawn twice as deep (the caller cuts it after its ``draw``-th message)."""
    found = dense(client, name, query, all_of(expression, kinds_expression([EPISODE])) if keyed else expression,
                  depth, params)
    if keyed:
        found += dense(client, name, query, all_of(expression, kinds_expression(KEY_KINDS)), depth, params)
    if apart:
        matched = [*words(client, name, text, expression, draw, MESSAGES_PARTITION),
                   *words(client, name, text, expression, depth, FACTS_PARTITION)]
    else:
        matched = words(client, name, text, expression, draw * 2 if keyed else draw, None)
    return found, matched
