"""From a dense list and a word list to the hits a search returns, whoever drew the lists.

Both ways a store draws its lists (Milvus's searches, or a scope's copy in memory,
scopes.py) end here, so they rank and show memories the same way: fusion.py says
how two lists become one ranking of groups (a message and the facts drawn from it);
this module cuts the word list, fuses, and picks the row that shows each group.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from localmem.records import FACT, MemoryRecord, SearchHit
from localmem.vector_stores.fusion import Fusion


def groups(records: Mapping[str, MemoryRecord]) -> dict[str, str]:
    """Each fact drawn from a message, mapped to that message's id (the key of its group)."""
    return {r.id: r.sources[0] for r in records.values() if r.kind == FACT and r.sources}


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
               by_words: Sequence[tuple[str, float]], limit: int) -> list[SearchHit]:
    """The best ``limit`` groups; ``by_meaning`` holds similarities and ``by_words`` BM25 scores,
    each best first and cut to the depth fused; ``records`` holds every row of both."""
    group = groups(records)
    fused = fusion.fuse(by_meaning, by_words, group=group, keys=group.keys())
    # Each group is shown by its best fact (the memory; its message comes with it as a source),
    # or by the message itself when none of its facts was drawn.
    best: dict[str, str] = {}
    for key, _ in fusion.fuse(by_meaning, by_words):
        head = group.get(key, key)
        if head not in best or (key in group and best[head] not in group):
            best[head] = key
    return [SearchHit(record=records[best[key]], score=fusion.scale(raw), distance=raw)
            for key, raw in fused[:limit]]
