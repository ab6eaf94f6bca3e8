"""Rows of localmem's Milvus collection: a MemoryRecord to a row and back, and the expressions that select them.

Every value reaching an expression goes through ``literal()`` (milvus_filters.py): ids
too, never pymilvus's ``ids=``, which quotes string keys without escaping.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from localmem.filters import as_filter
from localmem.protocols import Filters
from localmem.records import EPISODE, SCOPE_KEYS, Kind, MemoryRecord, Scope
from localmem.vector_stores.milvus_filters import literal, render

# A fact's source episode ids live under this key of the JSON field "sources": a Milvus 2.3
# server accepts only an object at the top of a JSON field, not a list.
SOURCE_IDS = "ids"
# Beside them, in the same JSON field: an episode's role, whether it only acknowledges, and what superseded it.
ROLE, CHATTER, SUPERSEDED_BY, VALID_UNTIL = "role", "chatter", "superseded_by", "valid_until"
RECORD_FIELDS = ["id", "memory", "hash", *SCOPE_KEYS, "metadata", "created_at", "updated_at",
                 "kind", "speaker", "timestamp", "sources", "covered"]
# What the word statistics of a scope count (retrieval/words.py).
WORD_FIELDS = ["id", "memory", "kind", "sources", *SCOPE_KEYS]
# What a scope's copy in memory holds (retrieval/scopes.py): whole rows.
COPY_FIELDS = [*RECORD_FIELDS, "vector"]
IDS_PER_CALL = 1000


def select(scope: Scope, filters: Filters) -> str:
    return render(scope, as_filter(filters))


def ids_expression(ids: Sequence[str]) -> str:
    """``id in [...]`` with every id rendered by literal(): quoted and escaped, whatever it holds."""
    return f"id in [{', '.join(literal(i) for i in ids)}]"


def chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    # Keeps each expression short and each result under the query window.
    for start in range(0, len(ids), IDS_PER_CALL):
        yield list(ids[start:start + IDS_PER_CALL])


def to_row(record: MemoryRecord, vector: list[float]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": record.id,
        "vector": vector,
        "memory": record.memory,
        "hash": record.hash,
        "metadata": record.metadata,
        "created_at": record.created_at,
        "updated_at": record.updated_at or "",
        "kind": record.kind,
        "speaker": record.speaker or "",
        "timestamp": record.timestamp or 0,
        "sources": sources_field(record),
        "covered": record.covered,
    }
    for key in SCOPE_KEYS:
        row[key] = getattr(record.scope, key) or ""
    return row


def ranks_alone(row: dict[str, Any]) -> bool:
    """A message, or a fact that stands for no message (not a key to one): the rows whose words the
    statistics count."""
    return row.get("kind") == EPISODE or not source_ids(row)


def sources_field(record: MemoryRecord) -> dict[str, Any]:
    """The JSON field "sources": a fact's source ids, and an episode's role and currency (currency.py).
    Kept in one JSON field so that older collections (and a Milvus 2.3 server) need no new column."""
    links: dict[str, Any] = {SOURCE_IDS: list(record.sources)}
    if record.role is not None:
        links[ROLE] = record.role
    if record.chatter:
        links[CHATTER] = True
    if record.superseded_by is not None:
        links[SUPERSEDED_BY] = record.superseded_by
        links[VALID_UNTIL] = record.valid_until
    return links


def links_of(row: dict[str, Any]) -> dict[str, Any]:
    """A row's "sources" JSON field as a dict, however the backend returned it (an old row: a list)."""
    sources = row.get("sources") or {}
    if isinstance(sources, (str, bytes)):
        sources = json.loads(sources)
    if isinstance(sources, list):
        sources = {SOURCE_IDS: sources}
    return sources if isinstance(sources, dict) else {}


def source_ids(row: dict[str, Any]) -> list[str]:
    """A row's source episode ids, however the backend returned its JSON field."""
    return [str(s) for s in links_of(row).get(SOURCE_IDS) or []]


def to_record(row: dict[str, Any]) -> MemoryRecord:
    scope = Scope(**{key: row.get(key) or None for key in SCOPE_KEYS})
    metadata = row.get("metadata") or {}
    if isinstance(metadata, (str, bytes)):
        metadata = json.loads(metadata)
    links = links_of(row)
    superseded_by, valid_until = links.get(SUPERSEDED_BY), links.get(VALID_UNTIL)
    return MemoryRecord(id=row["id"], memory=row["memory"], hash=row["hash"], scope=scope, metadata=metadata,
                        created_at=row.get("created_at") or "", updated_at=row.get("updated_at") or None,
                        kind=row.get("kind") or "fact", speaker=row.get("speaker") or None,
                        timestamp=int(row["timestamp"]) if row.get("timestamp") else None,
                        sources=tuple(str(s) for s in links.get(SOURCE_IDS) or []), covered=bool(row.get("covered")),
                        role=str(links[ROLE]) if links.get(ROLE) else None, chatter=bool(links.get(CHATTER)),
                        superseded_by=str(superseded_by) if superseded_by else None,
                        valid_until=int(valid_until) if valid_until is not None and superseded_by else None)


def all_of(*parts: str) -> str:
    present = [p for p in parts if p]
    return " and ".join(f"({p})" for p in present) if len(present) > 1 else (present[0] if present else "")


def kinds_expression(kinds: Sequence[Kind] | None) -> str:
    if kinds is None:
        return ""
    return f"kind in [{', '.join(literal(k) for k in kinds)}]"
