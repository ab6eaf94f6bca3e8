"""Numbered schema migrations for a localmem Milvus collection.

A collection records the schema version it was created with (the collection
property ``localmem.schema_version``); opening it compares that with
``SCHEMA_VERSION`` in milvus.py. A newer collection is refused (this localmem
cannot know its fields); an older one is brought up to date here, one step at
a time, each step recorded as soon as it is done. Milvus has no transactions
across schema changes, so a step must be safe to run again: a crash after the
step and before its record repeats the step on the next open.

Append a step for each new version; never edit one that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from localmem.errors import SchemaMismatchError

PROP_SCHEMA = "localmem.schema_version"
# (client, collection name) -> None: a pymilvus MilvusClient and the collection to upgrade.
Migration = Callable[[Any, str], None]

# The step that turns version N-1 into version N, keyed by N. Version 1 is the
# schema milvus.py creates first; there is nothing to migrate to it yet.
MIGRATIONS: dict[int, Migration] = {}


def stored_version(properties: dict[str, Any], where: str) -> int:
    """The schema version a collection records; collections from before versioning are version 1."""
    raw = properties.get(PROP_SCHEMA)
    if raw in (None, ""):
        return 1
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise SchemaMismatchError(f"{where} records schema version {raw!r}, which is not a number: it was not "
                                  "written by localmem; choose another collection_name") from None


def migrate(client: Any, name: str, found: int, target: int, where: str) -> list[int]:
    """Run the steps from ``found`` to ``target``; return the versions applied now."""
    if found > target:
        raise SchemaMismatchError(
            f"{where} has schema version {found}, newer than this localmem understands (version {target}): "
            "upgrade localmem, or use another collection_name")
    applied = []
    for version in range(found + 1, target + 1):
        step = MIGRATIONS.get(version)
        if step is None:
            raise SchemaMismatchError(f"{where} has schema version {version - 1} and this localmem has no "
                                      f"migration to version {version}: export it with the localmem that wrote it "
                                      "and import it here")
        step(client, name)
        client.alter_collection_properties(name, properties={PROP_SCHEMA: str(version)})
        applied.append(version)
    return applied
