"""From a dense list and a word list to the hits a search returns, whoever drew the lists.

Every way a store draws its lists (Milvus's searches, a scope's copy in memory,
scopes.py, the numpy reference store) ends in ``rank``, so they rank and show
memories the same way: fusion.py says how two lists become one ranking of groups
(a message and the facts drawn from it); this module orders ties, cuts the word
list, fuses, and picks the row that shows each group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from localmem.records import CONTEXT, EPISODE, FACT, MemoryRecord, SearchHit
from localmem.retrieval.fusion import Fusion
from localmem.retrieval.words import WordStats


def groups(records: Mapping[str, MemoryRecord]) -> dict[str, str]:
    """Each key (a fact or a context) drawn from a message, mapped to that message's id (its group's key)."""
    return {r.id: r.sources[0] for r in records.values() if r.kind != EPISODE and r.sources}


# Scores are compared at these many decimals, and ties go to the older memory (then the lower id):
# a list drawn by Milvus and one computed here then rank alike, float noise and ties included.
WORD_DIGITS = 9
DENSE_DIGITS = 6


def best_first(ranking: Iterable[tuple[str, float]], records: Mapping[str, MemoryRecord],
               digits: int) -> list[tuple[str, float]]:
    """(id, score) rows best first, ties broken the same way whoever drew them."""
    return sorted(ranking, key=lambda row: (-round(row[1], digits), records[row[0]].created_at, row[0]))


def messages_deep(ranking: Sequence[tuple[str, float]], group: Mapping[str, str],
                  depth: int) -> list[tuple[str, float]]:
    """The head of a ranking (best first) down to its ``depth``-th row not in ``group``: facts
    drawn from a message ride along without using up the depth."""
    rows = 0
    for end, (key, _) in enumerate(ranking):
        if key not in group:
            rows += 1
            if rows == depth:
                return list(ranking[:end + 1])
    return list(ranking)


def fused_hits(fusion: Fusion, records: Mapping[str, MemoryRecord], by_meaning: Sequence[tuple[str, float]],
               by_words: Sequence[tuple[str, float]], limit: int,
               fetch: Callable[[list[str]], Iterable[MemoryRecord]]) -> list[SearchHit]:
    """The best ``limit`` groups; ``by_meaning`` holds similarities and ``by_words`` BM25 scores,
    each best first and cut to the depth fused; ``records`` holds every row of both, and ``fetch``
    reads the messages of groups drawn only by their contexts."""
    group = groups(records)
    facts = {key for key in group if records[key].kind == FACT}
    fused = fusion.fuse(by_meaning, by_words, group=group, keys=group.keys(), silent=facts)
    # Each group is shown by its best fact (the memory; its message comes with it as a source),
    # else by the message itself: a context is a search key, never shown. A fact further from the
    # query in meaning than its own message is not shown for it ("Has a cat" for "what does she eat?").
    near = dict(by_meaning)
    best: dict[str, str] = {}
    for key, _ in fusion.fuse(by_meaning, by_words):
        head = group.get(key, key)
        if records[key].kind == CONTEXT:
            best.setdefault(head, head)
        elif head not in best or (key in facts and best[head] not in facts and not _strays(key, head, near)):
            best[head] = key
    shown = {key: records[key] for key in best.values() if key in records}
    missing = [key for key, _ in fused[:limit] if best[key] not in shown]
    if missing:
        # A message is shown for its contexts only in their scope, whatever the store holds.
        owner = {head: records[key].scope for key, head in group.items()}
        shown.update((r.id, r) for r in fetch(missing) if r.kind == EPISODE and owner.get(r.id) == r.scope)
    # Each group's similarity is that of its row closest in meaning (current.py reports it as the score).
    closest: dict[str, float] = {}
    for key, similarity in by_meaning:
        closest.setdefault(group.get(key, key), similarity)
    # A group whose message is gone (deleted since its context was drawn: contexts go with it) is skipped.
    hits = [SearchHit(record=shown[best[key]], score=fusion.scale(raw), distance=raw, similarity=closest.get(key))
            for key, raw in fused if best[key] in shown]
    return hits[:limit]


def similarity(metric: str, distance: float) -> float:
    """One meaning for every metric: higher is more similar.

    COSINE and IP: Milvus already returns the similarity. L2: Milvus returns
    the *squared* distance d; 1 - d/2 equals the cosine for unit vectors, so
    a threshold means the same under COSINE and L2 with normalised embeddings.
    """
    return 1.0 - distance / 2.0 if metric == "L2" else distance


def rescored(stats: WordStats, text: str, drawn: Sequence[tuple[str, float]],
             records: Mapping[str, MemoryRecord]) -> list[tuple[str, float]]:
    """Rows a store's own BM25 drew, scored again with the scope's statistics (words.py)."""
    keys = [key for key, _ in drawn]
    return list(zip(keys, stats.scores(text, [records[key].memory for key in keys]), strict=True))


def rank(fusion: Fusion, records: Mapping[str, MemoryRecord], dense: Iterable[tuple[str, float]],
         words: Iterable[tuple[str, float]], limit: int,
         fetch: Callable[[list[str]], Iterable[MemoryRecord]]) -> list[SearchHit]:
    """The hits of a hybrid search: ``dense`` holds (id, similarity), ``words`` (id, BM25 score) of
    the candidates drawn, in any order; ``records`` every row of both; ``fetch`` reads messages
    by id (for groups drawn by their keys alone). Rows without a word in common (score 0) are no
    word match; the word list is cut at the depth fused, counted in messages."""
    depth = max(limit, fusion.depth)
    by_meaning = best_first(dense, records, DENSE_DIGITS)
    by_words = messages_deep(best_first((row for row in words if row[1] > 0), records, WORD_DIGITS),
                             groups(records), depth)
    return fused_hits(fusion, records, by_meaning, by_words, limit, fetch)


def _strays(fact: str, message: str, similarity: Mapping[str, float]) -> bool:
    """Whether a fact is clearly further from the query in meaning than the message it was drawn from
    (by ``STRAY_MARGIN``: between two memories both unrelated to a query, which one shows is noise)."""
    return fact in similarity and message in similarity and similarity[fact] < similarity[message] - STRAY_MARGIN


STRAY_MARGIN = 0.1
