"""One ranked list of search results from ranked facts and episodes, each fact with its sources.

The store ranks facts and episodes together. Walking that ranking:
- a fact is shown with ``sources``: the episodes it was drawn from (id, text, speaker, time, metadata);
- an episode whose message yielded a fact ("covered") is shown as the best-ranked fact drawn from
  it, at the episode's own rank: the fact is the memory, the episode its evidence, and a fact is
  never a rival that pushes its message down (fusion.py). When none of its facts ranked,
  the episode is shown as itself: its own words matched the query, and finding its facts would take
  a scan of every fact's sources (in Milvus Lite ~20 ms per 700 rows, growing with the store);
- an episode is never repeated: not as a result once it is attached to one, nor twice attached,
  and a fact whose messages are all already shown (another fact of the same message ranked
  higher) is left out: one result per message, so facts cannot crowd out other messages;
- an episode whose message yielded no fact (every one, with infer=False) is shown as itself.
The hits come in the order current.py arranged them, scored as it says; ``threshold`` (``minimum``)
drops those scored below it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from localmem.records import EPISODE, FACT, MemoryRecord, SearchHit


def assemble(hits: Sequence[SearchHit], limit: int, minimum: float | None,
             fetch: Callable[[list[str]], list[MemoryRecord]]) -> list[dict[str, Any]]:
    """The results of a search; ``fetch`` gets episodes by id."""
    hits = [h for h in hits if minimum is None or h.score >= minimum]
    fact_of: dict[str, MemoryRecord] = {}
    for hit in hits:  # in rank order: each episode's best-ranked fact
        if hit.record.kind == FACT:
            for source in hit.record.sources:
                fact_of.setdefault(source, hit.record)
    shown: set[str] = set()
    chosen: list[tuple[MemoryRecord, SearchHit]] = []
    for hit in hits:
        record = hit.record
        # A fact stands in for its message only in its own scope, whatever the store holds.
        fact = fact_of.get(record.id)
        if record.kind == EPISODE and record.covered and fact is not None and fact.scope == record.scope:
            record = fact
        if record.id in shown:
            continue
        if record.kind == FACT and record.sources and shown.issuperset(record.sources):
            continue  # another fact of the same message(s) ranked higher: one result per message
        shown.add(record.id)
        if record.kind == FACT:
            shown.update(record.sources)
        chosen.append((record, hit))
        if len(chosen) == limit:
            break
    wanted = sorted({s for record, _ in chosen for s in record.sources})
    episodes = {r.id: r for r in fetch(wanted)} if wanted else {}
    out = []
    for record, hit in chosen:
        item = record.to_dict()
        item["score"] = hit.score
        item["distance"] = hit.distance
        if record.kind == FACT:
            item["sources"] = [e.source_dict() for s in record.sources
                               if (e := episodes.get(s)) is not None and e.scope == record.scope]
        out.append(item)
    return out

