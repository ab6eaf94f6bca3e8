"""How dense and BM25 result lists become one ranking, and what the fused score means.

Reciprocal rank fusion (RRF) adds 1/(k + rank) over the lists a memory appears
in (rank 1 is the best); it needs no calibration between a cosine and a BM25
score, which live on unrelated scales. localmem reports the fused sum divided by
its largest possible value (first in every list, see ``Fusion.scale``), so a score
is in (0, 1]: 1.0 is "ranked first by both", 0.5 "first in one list and absent
from the other".
``threshold`` compares against this number. The weighted alternative maps both
scores into [0, 1] (cosine as (1 + cos)/2, BM25 as 2·arctan(s)/π, as Milvus's
WeightedRanker does) and averages them; the benchmark compares the two.

Fusion runs here, on two plain searches, rather than in Milvus Lite's
``hybrid_search``: on an 838-row collection filtered to one scope the two searches
took 7.3 ms + 4.0 ms, ``hybrid_search`` 165 ms.

The settings were chosen on the LoCoMo dev turns (issue #16; dated episodes, one
conversation per scope, top 5). A small k trusts the top of each list more, and a
deeper draw lets a turn that one list ranks 35th and the other 1st win; evidence
hit@5 / answer recall@5, first 200 turns of each conversation, then whole ones:
k 60 depth 30 (the textbook setting): 0.633 / 0.576 and 0.560 / 0.533 (numpy);
k 5 depth 40: 0.694 / 0.618 (the library); k 5 depth 50 in numpy 0.687 / 0.610
and 0.605 / 0.566. With BM25 scored on the scope's own statistics
(milvus.py, words.py), every row scored (scopes.py): k 5 depth 40 0.683 / 0.616 and
0.604 / 0.567, k 60 depth 30 0.648 / 0.594 and 0.560 / 0.532. Depth costs time where Milvus
answers (each list's rows come back with their fields), little from a scope's copy.

A list ranks **groups**, not rows: a fact or a context (a message restated in its
conversation, context.py) is a search key for the message it was drawn from (issue
#17), so keys and their source message share one group, and a group's rank in a
list is that of its best row. Three keys of one message then count once: they
cannot push another message down a list three places. A message's rank among
messages alone decides; its rank among messages and contexts adds ``key_weight``
of that. Facts rank nothing (a fact is shown for its group, its message attached,
but does not move it). Once a collection holds keys the store searches messages
and keys apart, by meaning (two lists merged by score) and by words (each kind
from its partition, milvus.py): keys never shorten the lists a message is ranked
from.

The weights were measured on the LoCoMo dev turns, first 200 of each conversation
(281 questions), contexts of the two messages before, facts from the bundled 270M
model (an offline replay of this fusion over the same rows; evidence hit@5 / answer
recall@5; messages alone 0.683 / 0.616):
| contexts | facts | hit@5 / recall@5 |
|---|---|---|
| 1.0 | 0 | 0.772 / 0.698 |
| 1.0 | 0.3 | 0.776 / 0.691 |
| 1.0 | 1.0 | 0.754 / 0.678 |
| 0 | 1.0 | 0.701 / 0.628 |
With contexts of one message before: weight 1.0 0.747 / 0.676, 0.5 0.730 / 0.658, 1.5 0.737 / 0.666.
Through the library (memory_quality, the same turns): contexts only 0.769 / 0.691, with
the model's facts shown 0.765 / 0.688.
With contexts present the model's facts add nothing to the ranking (more on
multi-hop questions, less on single-hop ones), so they stay out of it. BM25's
statistics would still differ: Milvus Lite scores BM25 with each segment's own
statistics, over every row of the segment (a row with empty text too), and keys'
words would count in them (every fact names its person, so a name would weigh
less in every message). Keys are written to a partition of their own (milvus.py),
and a segment never spans partitions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Fusion:
    method: Literal["rrf", "weighted"] = "rrf"
    k: int = 5
    dense_weight: float = 0.5
    # Candidates drawn from each list before fusing (at least the limit asked for).
    depth: int = 40
    # What a group's rank among messages and contexts weighs beside its rank among messages (see above).
    key_weight: float = 1.0

    def fuse(self, dense: Sequence[tuple[str, float]], words: Sequence[tuple[str, float]],
             group: Mapping[str, str] | None = None, keys: AbstractSet[str] = frozenset(),
             silent: AbstractSet[str] = frozenset()) -> list[tuple[str, float]]:
        """(key, raw fused score) best first, from (id, score) lists each best first.

        ``dense`` scores are similarities (higher is better), ``words`` BM25 scores (positive).
        ``group`` maps an id to its group's key (an id not in it is its own group); each list
        then counts a group once, at its best row, and the result is keyed by group. A group's
        score is its rank among rows not in ``keys`` (the messages) plus ``key_weight`` times its
        rank among the rows not in ``silent`` (messages and contexts; ``silent`` holds the facts).
        Without keys both terms rank alike: plain RRF.
        Ties keep the dense order, then the word order, of the rows not in ``keys``: deterministic.
        """
        fused: dict[str, float] = {}
        own_rows = ([h for h in dense if h[0] not in keys], [h for h in words if h[0] not in keys])
        own = (_grouped(own_rows[0], group), _grouped(own_rows[1], group))
        heard = (_grouped([h for h in dense if h[0] not in silent], group),
                 _grouped([h for h in words if h[0] not in silent], group))
        for weight, lists in ((1.0, own), (self.key_weight, heard)):
            for key, score in self._scores(*lists).items():
                # A weighted mean of the two terms: without keys, exactly the plain fused score.
                fused[key] = fused.get(key, 0.0) + weight * score / (1.0 + self.key_weight)
        # Ties go by the messages' own order, so that keys leave even those alone.
        groups = _grouped([*own_rows[0], *own_rows[1], *dense, *words], group)
        for key, _ in groups:  # a group drawn by its facts alone (its message deleted) comes last
            fused.setdefault(key, 0.0)
        order = {key: i for i, (key, _) in enumerate(groups)}
        return sorted(fused.items(), key=lambda item: (-item[1], order[item[0]]))

    def _scores(self, dense: Sequence[tuple[str, float]], words: Sequence[tuple[str, float]]) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.method == "rrf":
            for ranking in (dense, words):
                for rank, (key, _) in enumerate(ranking, start=1):
                    out[key] = out.get(key, 0.0) + 1.0 / (self.k + rank)
            return out
        for key, similarity in dense:
            out[key] = out.get(key, 0.0) + self.dense_weight * (1.0 + similarity) / 2.0
        for key, bm25 in words:
            out[key] = out.get(key, 0.0) + (1.0 - self.dense_weight) * 2.0 * math.atan(max(bm25, 0.0)) / math.pi
        return out

    def scale(self, raw: float) -> float:
        """A fused score as localmem reports it, in (0, 1]: divided by its largest possible value,
        2/(k+1) for RRF (first in every list), 1 weighted."""
        top = 2.0 / (self.k + 1) if self.method == "rrf" else 1.0
        return raw / top


def _grouped(ranking: Sequence[tuple[str, float]], group: Mapping[str, str] | None) -> list[tuple[str, float]]:
    """The ranking with each id replaced by its group's key, each group at its first (best) place."""
    if group is None:
        return list(ranking)
    out: dict[str, float] = {}
    for key, score in ranking:
        out.setdefault(group.get(key, key), score)
    return list(out.items())


RRF = Fusion()
