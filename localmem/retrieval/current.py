"""What a search shows: the scope's own memories, what holds now first, each scored by its similarity.

Between the ranking (vector_stores/: meaning and words fused) and the results (results.py):

- ``arrange`` leaves out what is not the scope's own (currency.py): chatter always and, in a user's
  scope, the assistant's replies, unless the query asks the assistant about its own words or filters
  by speaker. In a chat with an assistant the user's requests come after their statements. For a
  query about the present, a memory superseded by a later one comes right after the one that holds
  now (fetched if the ranking did not draw it), when that one answers the same query; a query about
  the past keeps the plain ranking, so the old value is found.
- ``scored`` gives ``score`` one meaning everywhere: the cosine similarity of the query to the memory
  as the ranking matched it (the closest of the message, its contexts and its facts). The order is
  the ranking's, so scores need not descend; ``distance`` is the store's metric value for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import numpy as np

from localmem.currency import asks_assistant, asks_past, is_own, is_request, latest, topics
from localmem.episodes import content_of
from localmem.protocols import Vectors
from localmem.records import EPISODE, MemoryRecord, Scope, SearchHit

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
    to_assistant = any_speaker or asks_assistant(query)
    kept = [h for h in hits if _shown(episodes.get(heads[h.record.id]), h, to_assistant, scope.user_id is not None)]
    if asks_past(query):
        return kept
    if not to_assistant and any(e.role == "assistant" for e in episodes.values()):
        kept = _statements_first(kept, heads, episodes)
    later = _chains(episodes, kept, fetch)
    return _current_first(kept, heads, episodes, later, query, measure)


def _shown(episode: MemoryRecord | None, hit: SearchHit, to_assistant: bool, has_user: bool) -> bool:
    """Whether a hit may be shown: its message is no chatter, and the scope's own unless asked for."""
    if episode is None:
        return hit.record.kind != EPISODE
    return not episode.chatter and (to_assistant or is_own(episode.role, has_user))


def _statements_first(kept: list[SearchHit], heads: Mapping[str, str],
                      episodes: Mapping[str, MemoryRecord]) -> list[SearchHit]:
    """In a chat with an assistant, what the user asked it ("Can you suggest a walk near home?") says
    less about the user than what they stated: statements first, each part in rank order."""
    asking = {h.record.id for h in kept if (e := episodes.get(heads[h.record.id])) is not None
              and e.role != "assistant" and is_request(content_of(e.memory, e.speaker))}
    return [h for h in kept if h.record.id not in asking] + [h for h in kept if h.record.id in asking]


def _chains(episodes: dict[str, MemoryRecord], kept: Sequence[SearchHit],
            fetch: Callable[[list[str]], list[MemoryRecord]]) -> dict[str, str | None]:
    """Which message superseded which, the ends of the chains the shown ones start fetched into ``episodes``."""
    later = {r.id: r.superseded_by for r in episodes.values()}
    for _ in range(_CHAIN):
        ends = {latest(r.superseded_by, later) for r in [*episodes.values(), *(h.record for h in kept)]
                if r.superseded_by}
        absent = sorted(end for end in ends if end not in episodes)
        found = [r for r in fetch(absent) if r.kind == EPISODE] if absent else []
        if not found:
            break
        episodes.update((r.id, r) for r in found)
        later.update((r.id, r.superseded_by) for r in found)
    return later


def _current_first(kept: Sequence[SearchHit], heads: Mapping[str, str], episodes: Mapping[str, MemoryRecord],
                   later: Mapping[str, str | None], query: str,
                   measure: Callable[[list[SearchHit]], list[SearchHit]]) -> list[SearchHit]:
    """Each superseded memory right after the one that holds now, where that one answers the query."""
    by_head: dict[str, SearchHit] = {}
    for hit in kept:
        by_head.setdefault(heads[hit.record.id], hit)
    # The current memories the ranking did not draw, measured in one call (each needs its stored vector).
    ends = {latest(stale, later) for h in kept if (stale := _superseder(h, heads, episodes))}
    drawn = [SearchHit(record=episodes[end], score=0.0, distance=0.0) for end in sorted(ends)
             if end in episodes and end not in by_head]
    fetched = {h.record.id: h for h in measure(drawn)} if drawn else {}
    out: list[SearchHit] = []
    placed: set[str] = set()
    for hit in kept:
        head = heads[hit.record.id]
        if head in placed:
            continue
        stale = _superseder(hit, heads, episodes)
        end = latest(stale, later) if stale else None
        # Only a memory of the same scope (an imported link may name any id: never another user's).
        if end is not None and end not in placed and end in episodes and end != head \
                and episodes[end].scope == hit.record.scope:
            current = by_head.get(end) or fetched[end]
            if _answers(query, current, hit):
                out.append(current)
                placed.add(end)
        out.append(hit)
        placed.add(head)
    # Rows of a group already placed (a second fact of one message) keep their places after it.
    return out + [h for h in kept if heads[h.record.id] in placed and h not in out]


def _superseder(hit: SearchHit, heads: Mapping[str, str], episodes: Mapping[str, MemoryRecord]) -> str | None:
    """What superseded a hit: its own record, or the message it stands for."""
    episode = episodes.get(heads[hit.record.id])
    return hit.record.superseded_by or (episode.superseded_by if episode is not None else None)


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
