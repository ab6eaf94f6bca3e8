"""Links between memories: facts and contexts cite the episodes (messages) they come from.

A fact's ``sources`` and a context's ``sources`` are episode ids (pipeline.py, context.py). This
module is the one place that reads those links back and says what a change takes with it:

* a fact deleted leaves the episodes it was drawn from that no other fact cites (``orphaned_by``):
  ``Memory.delete`` deletes them too, so what was forgotten is not found again through its message;
* an episode deleted or rewritten takes the contexts that quote it (``contexts_quoting``): its
  words leave the store.

Reads only: callers write what it returns through the Writer.
"""

from __future__ import annotations

from localmem.protocols import VectorStore
from localmem.records import CONTEXT, EPISODE, FACT, MemoryRecord


def orphaned_by(store: VectorStore, fact: MemoryRecord) -> list[MemoryRecord]:
    """The source episodes of ``fact`` that no other fact cites."""
    if fact.kind != FACT or not fact.sources:
        return []
    still_cited = {s for f in store.citing(list(fact.sources), (FACT,)) if f.id != fact.id for s in f.sources}
    return [e for e in store.get([s for s in fact.sources if s not in still_cited]) if e.kind == EPISODE]


def contexts_quoting(store: VectorStore, *records: MemoryRecord) -> list[MemoryRecord]:
    """The contexts that quote any of these records that are episodes."""
    episodes = [r.id for r in records if r.kind == EPISODE]
    return store.citing(episodes, (CONTEXT,)) if episodes else []


def deleted_with(store: VectorStore, record: MemoryRecord) -> list[MemoryRecord]:
    """What deleting ``record`` deletes: itself, the episodes it leaves orphaned, and their contexts."""
    orphans = orphaned_by(store, record)
    return [record, *orphans, *contexts_quoting(store, record, *orphans)]
