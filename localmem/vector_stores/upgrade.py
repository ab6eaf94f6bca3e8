"""Upgrading a collection written by an older localmem to the current schema, in place.

Schema 1 (localmem 0.1) had no episodes, speakers, times or BM25 field. Milvus
cannot add an analyzer or a function to an existing collection, so the upgrade
copies: create ``<name>__upgrade`` with the current schema, copy every row with
its vector, check the counts, drop the old collection, rename the copy. Every
crash point leaves a whole collection behind: before the drop the old one is
intact (a half-made copy is dropped and redone next time); after the drop the
copy is complete, and the next open only finishes the rename
(``finish_interrupted``). Memories of schema 1 become facts without sources
(that schema kept no messages), with their creation time as their time.
It is step 2 of milvus_migrations.py, run when an old collection is opened;
``finish_interrupted`` runs on every open, before the version is read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from localmem.errors import StoreError
from localmem.records import SCOPE_KEYS

PROPERTY = "localmem.schema_version"
_SUFFIX = "__upgrade"
_V1_FIELDS = ["id", "vector", "memory", "hash", *SCOPE_KEYS, "metadata", "created_at", "updated_at"]
_PAGE = 1000


def finish_interrupted(client: Any, name: str) -> None:
    """Complete an upgrade that stopped between dropping the old collection and renaming the copy."""
    copy = name + _SUFFIX
    if not client.has_collection(copy):
        return
    if client.has_collection(name):
        client.drop_collection(copy)  # the old collection is whole; the copy may not be: redo it
    else:
        client.rename_collection(copy, name)


def v1_to_v2(client: Any, name: str, create: Callable[[str], None]) -> None:
    """Copy a schema-1 collection into one made by ``create`` (the current schema), then swap them."""
    copy = name + _SUFFIX
    create(copy)
    client.load_collection(copy)
    client.load_collection(name)
    copied = 0
    iterator = client.query_iterator(name, batch_size=_PAGE, filter="", output_fields=_V1_FIELDS)
    try:
        while page := iterator.next():
            client.insert(copy, [_from_v1(row) for row in page])
            copied += len(page)
    finally:
        iterator.close()
    client.flush(copy)
    before = _count(client, name)
    after = _count(client, copy)
    if before != after or copied != before:
        client.drop_collection(copy)
        raise StoreError(f"upgrading collection {name!r} copied {after} of {before} memories; nothing was "
                         "changed, the old collection is intact. Try again, or export it with an older localmem")
    client.release_collection(name)
    client.drop_collection(name)
    client.rename_collection(copy, name)


def _from_v1(row: dict[str, Any]) -> dict[str, Any]:
    out = {key: row[key] for key in _V1_FIELDS}
    out.update(kind="fact", speaker="", timestamp=_epoch(str(row.get("created_at") or "")), sources={"ids": []},
               covered=False)
    return out


def _epoch(iso: str) -> int:
    try:
        return int(datetime.fromisoformat(iso).timestamp())
    except ValueError:
        return 0


def _count(client: Any, name: str) -> int:
    rows = client.query(name, filter="", output_fields=["count(*)"])
    return int(rows[0]["count(*)"]) if rows else 0
