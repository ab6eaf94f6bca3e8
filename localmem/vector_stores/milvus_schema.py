"""The schema of localmem's Milvus collection: creating it, and checking an existing one.

Facts live in a partition of their own, messages in the default one. Milvus Lite scores BM25
with each segment's own statistics (document count, mean length, document frequencies, over
every row of the segment), and a segment never spans partitions: so facts' words, which name
their person in every fact, never make a message's words count less. Collections created
before this (no such partition) keep facts among the messages; export and import moves them.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from localmem.errors import LocalmemWarning, SchemaMismatchError
from localmem.protocols import EmbedderIdentity
from localmem.records import MAX_SCOPE_ID_LENGTH, SCOPE_KEYS
from localmem.vector_stores import milvus_migrations

PROP_SCHEMA = milvus_migrations.PROP_SCHEMA
PROP_EMBEDDER = "localmem.embedder"
# The memory text field: a VARCHAR's largest size. Milvus Lite and a server do not count
# it the same way (characters / bytes), so localmem enforces it as UTF-8 bytes, which fits both.
TEXT_BYTES = 65535
# BM25's analyzer: Milvus's "standard" one (Unicode word tokens, lower-cased), the plain
# BM25 that issue #16 measured; English stemming and stop words scored no better there.
ANALYZER: dict[str, Any] = {"type": "standard"}
FACTS_PARTITION = "facts"
MESSAGES_PARTITION = "_default"


def create(client: Any, name: str, *, embedder: EmbedderIdentity, index_type: str, metric: str, bm25: bool,
           version: int, facts_apart: bool) -> None:
    """An empty collection of schema ``version``; ``facts_apart`` adds the facts' partition."""
    from pymilvus import DataType, Function, FunctionType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, max_length=64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=embedder.dims)
    text: dict[str, Any] = {"enable_analyzer": True, "analyzer_params": ANALYZER} if bm25 else {}
    schema.add_field("memory", DataType.VARCHAR, max_length=TEXT_BYTES, **text)
    schema.add_field("hash", DataType.VARCHAR, max_length=64)
    for key in SCOPE_KEYS:
        # "" means unset: Milvus Lite cannot filter on NULL scalars portably.
        schema.add_field(key, DataType.VARCHAR, max_length=MAX_SCOPE_ID_LENGTH * 4)
    schema.add_field("metadata", DataType.JSON)
    schema.add_field("created_at", DataType.VARCHAR, max_length=64)
    schema.add_field("updated_at", DataType.VARCHAR, max_length=64)
    # Schema 2: episodes and facts (records.py), who and when, a fact's source episodes.
    schema.add_field("kind", DataType.VARCHAR, max_length=16)
    schema.add_field("speaker", DataType.VARCHAR, max_length=MAX_SCOPE_ID_LENGTH * 4)
    schema.add_field("timestamp", DataType.INT64)  # epoch seconds; 0 means unknown
    schema.add_field("sources", DataType.JSON)
    schema.add_field("covered", DataType.BOOL)
    index = client.prepare_index_params()
    # Build parameters are left to Milvus's defaults (HNSW M=16/efConstruction=200, IVF nlist=128).
    index.add_index(field_name="vector", index_type=index_type, metric_type=metric)
    if bm25:
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="memory_bm25", function_type=FunctionType.BM25,
                                     input_field_names=["memory"], output_field_names=["sparse"]))
        index.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    client.create_collection(
        name, schema=schema, consistency_level="Strong",
        properties={PROP_SCHEMA: str(version), PROP_EMBEDDER: json.dumps(embedder.to_dict())})
    if facts_apart:
        client.create_partition(name, FACTS_PARTITION)
    # The index last: a collection that can be loaded is complete (see __init__'s retry).
    client.create_index(name, index)


def bm25_supported(client: Any) -> bool:
    """Servers from 2.5 run the BM25 function (as Milvus Lite 3 does); older servers do not."""
    try:
        version = str(client.get_server_version())
    except Exception:
        return False
    numbers = [int(p) for p in version.lstrip("v").split("-")[0].split(".")[:2] if p.isdigit()]
    return tuple(numbers) >= (2, 5)


def has_bm25(client: Any, name: str, where: str) -> bool:
    info = client.describe_collection(name)
    if any(f["name"] == "sparse" for f in info.get("fields", [])):
        return True
    warnings.warn(f"collection {name!r} at {where} has no BM25 index (Milvus before 2.5): "
                  "searches use dense vectors only, without word matching", LocalmemWarning, stacklevel=4)
    return False


def check_existing(client: Any, name: str, where: str, embedder: EmbedderIdentity,
                   alternatives: Sequence[EmbedderIdentity], metric: str, version: int,
                   create: Callable[[str], None]) -> tuple[EmbedderIdentity, str | None]:
    """Migrate an older schema (``create`` makes a collection of the old layout for a copy); refuse a newer
    one, or vectors of another size, model or metric. Returns the embedder that filled the collection and
    its vector index type."""
    info = client.describe_collection(name)
    found = milvus_migrations.stored_version(info.get("properties", {}), where)
    milvus_migrations.refuse_newer(found, version, where)
    embedder = check_vectors(client, name, info, where, embedder, alternatives)
    stored_metric, index_type = stored_index(client, name)
    if stored_metric is not None and stored_metric != metric:
        raise SchemaMismatchError(f"{where} is indexed with metric {stored_metric}, but metric_type={metric} was "
                                  f"asked for; set metric_type={stored_metric!r} or use another collection_name")
    # Last: a migration may copy every row (upgrade.py), which only makes sense into a compatible schema.
    if found != version:
        # Schema 1 had only facts, copied in one by one: they stay where a collection of then kept them.
        milvus_migrations.migrate(client, name, found, version, where, create)
    return embedder, index_type


def check_vectors(client: Any, name: str, info: dict[str, Any], where: str, embedder: EmbedderIdentity,
                  alternatives: Sequence[EmbedderIdentity]) -> EmbedderIdentity:
    """Refuse a collection not made by localmem, or vectors of another size or model; return which of
    ``embedder`` and ``alternatives`` filled it (recording its fingerprint if the record predates them)."""
    fields = {f["name"]: f for f in info.get("fields", [])}
    vector = fields.get("vector")
    missing = {"id", "vector", "memory", "hash", "metadata", *SCOPE_KEYS} - set(fields)
    if vector is None or missing:
        raise SchemaMismatchError(f"{where} was not created by localmem (missing fields: {sorted(missing)}); "
                                  "choose another collection_name")
    dims = int(vector.get("params", {}).get("dim", 0))
    if dims != embedder.dims:
        raise SchemaMismatchError(
            f"{where} holds {dims}-d vectors but the embedder {embedder.name!r} makes {embedder.dims}-d "
            "ones; use the embedder that filled it, another collection_name, or `localmem export`/`import` "
            "to re-embed")
    stored = info.get("properties", {}).get(PROP_EMBEDDER)
    if stored:
        # By content (a fingerprint of the weights), and the normalisation; see embedders/identity.py.
        from localmem.embedders.identity import bundled_fingerprint, compare

        recorded, bundled = json.loads(stored), bundled_fingerprint()
        verdict = compare(recorded, embedder, bundled)
        other = next((a for a in alternatives if not verdict.ok and compare(recorded, a, bundled).ok), None)
        if other is not None:
            embedder, verdict = other, compare(recorded, other, bundled)
        if not verdict.ok:
            raise SchemaMismatchError(
                f"{where} {verdict.problem}: their vectors are not comparable; use that embedder, another "
                "collection_name, or `localmem export`/`import` to re-embed")
        if verdict.upgrade:  # a record from before content identities: write the fingerprint
            client.alter_collection_properties(
                name, properties={PROP_EMBEDDER: json.dumps(embedder.to_dict())})
    return embedder


def stored_index(client: Any, name: str) -> tuple[str | None, str | None]:
    """(metric, index type) of the existing collection's vector index."""
    for index_name in client.list_indexes(name):
        index = client.describe_index(name, index_name)
        if index.get("field_name") == "vector":
            return str(index.get("metric_type")), str(index.get("index_type"))
    return None, None
