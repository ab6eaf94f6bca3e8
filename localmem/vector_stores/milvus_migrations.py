"""Numbered schema migrations for a localmem Milvus collection.

A collection records the schema version it was created with (the collection
property ``localmem.schema_version``); opening it compares that with
``SCHEMA_VERSION`` in milvus.py. A newer collection is refused (this localmem
cannot know its fields); an older one is brought up to date here, one step at
a time, each step recorded as soon as it is done. Milvus has no transactions
across schema changes, so a step must be safe to run again: a crash after the
step and before its record repeats the step on the next open.

A step gets the client, the collection's name and the store's ``create(name)``,
which makes an empty collection of the current schema: Milvus cannot add an
analyzer or a function to a collection, so a step may have to copy the rows
into a new one (upgrade.py does, for 1 -> 2).

Append a step for each new version; never edit one that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from localmem.errors import SchemaMismatchError
from localmem.vector_stores import upgrade

PROP_SCHEMA = upgrade.PROPERTY
# (client, collection name, create) -> None: a pymilvus MilvusClient, the collection to upgrade,
# and a function that creates an empty collection of the current schema under a given name.
Migration = Callable[[Any, str, Callable[[str], None]], None]

# The step that turns version N-1 into version N, keyed by N. Version 1 is the
# schema milvus.py created first (localmem 0.1).
MIGRATIONS: dict[int, Migration] = {2: upgrade.v1_to_v2}


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


def refuse_newer(found: int, target: int, where: str) -> None:
    if found > target:
        raise SchemaMismatchError(
            f"{where} has schema version {found}, newer than this localmem understands (version {target}): "
            "upgrade localmem, or use another collection_name")


def migrate(client: Any, name: str, found: int, target: int, where: str,
            create: Callable[[str], None]) -> list[int]:
    """Run the steps from ``found`` to ``target``; return the versions applied now."""
    refuse_newer(found, target, where)
    applied = []
    for version in range(found + 1, target + 1):
        step = MIGRATIONS.get(version)
        if step is None:
            raise SchemaMismatchError(f"{where} has schema version {version - 1} and this localmem has no "
                                      f"migration to version {version}: export it with the localmem that wrote it "
                                      "and import it here")
        step(client, name, create)
        client.alter_collection_properties(name, properties={PROP_SCHEMA: str(version)})
        applied.append(version)
    return applied
