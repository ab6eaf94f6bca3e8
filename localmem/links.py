"""Links between memories: facts and contexts cite the episodes (messages) they come from.

A fact's ``sources`` and a context's ``sources`` are episode ids (pipeline.py, context.py). This
module is the one place that reads those links back and says what a change takes with it:

* a fact deleted leaves the episodes it was drawn from that no other fact cites (``orphaned_by``):
  ``Memory.delete`` deletes them too, so what was forgotten is not found again through its message;
* an episode deleted or rewritten takes the contexts that quote it (``contexts_quoting``): its
  words leave the store;
* an episode superseded (currency.py) passes that on to the facts drawn from it that speak of
  the same thing (``facts_drawn_from``, filtered by the caller).

Reads only: callers write what it returns through the Writer.
"""

from __future__ import annotations

from localmem.protocols import VectorStore
from localmem.records import CONTEXT, EPISODE, FACT, MemoryRecord


def orphaned_by(store: VectorStore, fact: MemoryRecord) -> list[MemoryRecord]:
    """The source episodes of ``fact`` that no other fact cites.

    Links are followed only within the fact's own scope, whatever the store holds (a store
    filled before imports were checked may hold a fact naming another user's message)."""
    if fact.kind != FACT or not fact.sources:
        return []
    still_cited = {s for f in store.citing(list(fact.sources), (FACT,))
                   if f.id != fact.id and f.scope == fact.scope for s in f.sources}
    return [e for e in store.get([s for s in fact.sources if s not in still_cited])
            if e.kind == EPISODE and e.scope == fact.scope]


def contexts_quoting(store: VectorStore, *records: MemoryRecord) -> list[MemoryRecord]:
    """The contexts that quote any of these records that are episodes (in the episode's scope: see
    ``orphaned_by``)."""
    scope_of = {r.id: r.scope for r in records if r.kind == EPISODE}
    if not scope_of:
        return []
    return [c for c in store.citing(list(scope_of), (CONTEXT,)) if any(scope_of.get(s) == c.scope for s in c.sources)]


def deleted_with(store: VectorStore, record: MemoryRecord) -> list[MemoryRecord]:
    """What deleting ``record`` deletes: itself, the episodes it leaves orphaned, and their contexts."""
    orphans = orphaned_by(store, record)
    return [record, *orphans, *contexts_quoting(store, record, *orphans)]


def facts_drawn_from(store: VectorStore, *episodes: MemoryRecord) -> list[MemoryRecord]:
    """The facts that cite any of these episodes (in the episode's scope: see ``orphaned_by``)."""
    scope_of = {r.id: r.scope for r in episodes if r.kind == EPISODE}
    if not scope_of:
        return []
    return [f for f in store.citing(list(scope_of), (FACT,)) if any(scope_of.get(s) == f.scope for s in f.sources)]
