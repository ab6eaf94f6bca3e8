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
Before that, ``arrange`` decides what holds now and whose it is (currency.py): chatter and, in a
user's scope, the assistant's replies are left out (unless the query asks the assistant about its own
words); for a query about the present, a memory superseded by a later one comes right after it (the
later one fetched if the ranking did not draw it); a query about the past keeps the plain ranking.

``score`` is one number with one meaning everywhere: the cosine similarity of the query to the memory
as the ranking matched it (the closest of the message, its contexts and its facts). The order is the
ranking's (meaning and words fused, then what holds now), so scores need not descend; ``threshold``
drops results whose score is below it. ``distance`` is the store's metric value for that similarity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from localmem.currency import asks_assistant, asks_past, is_own, is_request, latest, topics
from localmem.episodes import content_of
from localmem.protocols import Vectors
from localmem.records import EPISODE, FACT, MemoryRecord, Scope, SearchHit

# The threshold that drops results unrelated to the query: on the LoCoMo dev turns (first 200 of each,
# infer=False) it kept all 203 evidence results of the top 5 (0.30 kept 99.5%, 0.35 94.6%); docs/search.md.
RECOMMENDED_THRESHOLD = 0.25


def arrange(hits: Sequence[SearchHit], query: str, scope: Scope, fetch: Callable[[list[str]], list[MemoryRecord]],
            measure: Callable[[list[SearchHit]], list[SearchHit]], *, any_speaker: bool = False) -> list[SearchHit]:
    """The ranking with what is not the scope's own left out and what holds now first (module docstring).

    ``hits`` carry their similarity; ``measure`` gives it to hits of records fetched here. ``any_speaker``:
    the search filters by speaker, so every role's messages may be shown."""
    heads = {h.record.id: _head(h.record) for h in hits}
    episodes = {h.record.id: h.record for h in hits if h.record.kind == EPISODE}
    missing = sorted({head for head in heads.values() if head not in episodes})
    if missing:
        episodes.update((r.id, r) for r in fetch(missing) if r.kind == EPISODE)
    has_user = scope.user_id is not None
    to_assistant = any_speaker or asks_assistant(query)

    def shown(hit: SearchHit) -> bool:
        episode = episodes.get(heads[hit.record.id])
        if episode is None:
            return hit.record.kind != EPISODE
        return not episode.chatter and (to_assistant or is_own(episode.role, has_user))

    kept = [h for h in hits if shown(h)]
    if asks_past(query):
        return kept
    if not to_assistant and any(e.role == "assistant" for e in episodes.values()):
        # In a chat with an assistant, what the user asked it ("Can you suggest a walk near home?")
        # says less about the user than what they stated: statements first, in rank order.
        asking = {h.record.id for h in kept if (e := episodes.get(heads[h.record.id])) is not None
                  and e.role != "assistant" and is_request(content_of(e.memory, e.speaker))}
        kept = [h for h in kept if h.record.id not in asking] + [h for h in kept if h.record.id in asking]
    later = {r.id: r.superseded_by for r in episodes.values()}
    for _ in range(_CHAIN):  # the records at the end of each chain, fetched where the ranking did not draw them
        ends = {latest(r.superseded_by, later) for r in [*episodes.values(), *(h.record for h in kept)]
                if r.superseded_by}
        absent = sorted(end for end in ends if end not in episodes)
        if not absent:
            break
        found = [r for r in fetch(absent) if r.kind == EPISODE]
        episodes.update((r.id, r) for r in found)
        later.update((r.id, r.superseded_by) for r in found)
        if not found:
            break
    by_head: dict[str, SearchHit] = {}
    for hit in kept:
        by_head.setdefault(heads[hit.record.id], hit)
    out: list[SearchHit] = []
    placed: set[str] = set()
    for hit in kept:
        head = heads[hit.record.id]
        if head in placed:
            continue
        stale = hit.record.superseded_by or (episodes[head].superseded_by if head in episodes else None)
        if stale:
            end = latest(stale, later)
            # Only a memory of the same scope (an imported link may name any id: never another user's).
            if end not in placed and end in episodes and end != head and episodes[end].scope == hit.record.scope:
                current = by_head.get(end) or measure([SearchHit(record=episodes[end], score=0.0, distance=0.0)])[0]
                if _answers(query, current, hit):
                    out.append(current)
                    placed.add(end)
        out.append(hit)
        placed.add(head)
    # Rows of a group already placed (a second fact of one message) keep their places after it.
    return out + [h for h in kept if heads[h.record.id] in placed and h not in out]


def _answers(query: str, current: SearchHit, stale: SearchHit) -> bool:
    """Whether the memory that holds now answers the query the superseded one matched: it speaks of
    the query's topic; or the superseded one did (and so, having superseded it, does the current one,
    in other words) or the query has no known topic, and it is about as close to the query in meaning."""
    asked = topics(query)
    if asked & topics(current.record.memory):
        return True
    close = (current.similarity or 0.0) >= (stale.similarity or 0.0) - _CLOSE_ENOUGH
    return close and (not asked or bool(asked & topics(stale.record.memory)))


def scored(hits: Sequence[SearchHit], query: Vectors, vectors: Callable[[list[str]], Mapping[str, Vectors]],
           distance: Callable[[float], float]) -> list[SearchHit]:
    """The hits with ``score`` set to their similarity (module docstring), computed from the stored
    vector where the ranking did not measure it; ``distance`` is the store's value for it."""
    unknown = [h.record.id for h in hits if h.similarity is None]
    stored = vectors(unknown) if unknown else {}
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    out = []
    for hit in hits:
        similarity = hit.similarity
        if similarity is None:
            v = stored.get(hit.record.id)
            similarity = _cosine(q, np.asarray(v, dtype=np.float32).reshape(-1)) if v is not None else hit.score
        out.append(replace(hit, score=similarity, distance=distance(similarity), similarity=similarity))
    return out


# How much less similar to a topic-less query the current memory may be and still come first.
_CLOSE_ENOUGH = 0.1
# Supersessions followed from a shown memory to the one that holds now (a longer chain is cut there).
_CHAIN = 4


def _head(record: MemoryRecord) -> str:
    """The message a row stands for: an episode itself, a fact or context its first source."""
    return record.id if record.kind == EPISODE or not record.sources else record.sources[0]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    denom = float(np.linalg.norm(a) * np.linalg.norm(b)) or 1.0
    return float(np.dot(a, b)) / denom


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
        if record.kind == EPISODE and record.covered and record.id in fact_of:
            record = fact_of[record.id]
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
            item["sources"] = [episodes[s].source_dict() for s in record.sources if s in episodes]
        out.append(item)
    return out

