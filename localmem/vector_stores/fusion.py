"""How dense and BM25 result lists become one ranking, and what the fused score means.

Reciprocal rank fusion (RRF) adds 1/(k + rank) over the lists a memory appears
in; it needs no calibration between a cosine and a BM25 score, which live on
unrelated scales. localmem reports the RRF sum divided by its largest possible
value, 2/(k + 1), so a score is in (0, 1]: 1.0 is "ranked first by both", about
0.5 "first in one list and absent from the other". ``threshold`` compares
against this number. The weighted alternative (Milvus's WeightedRanker, scores
normalised by arctan) is kept for the benchmark's comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Fusion:
    method: Literal["rrf", "weighted"] = "rrf"
    k: int = 60
    dense_weight: float = 0.5
    # Candidates drawn from each list before fusing: a memory past this depth in both lists
    # could not reach a top-10 under RRF anyway.
    depth: int = 50

    def ranker(self) -> Any:
        from pymilvus import RRFRanker, WeightedRanker

        if self.method == "rrf":
            return RRFRanker(self.k)
        return WeightedRanker(self.dense_weight, 1.0 - self.dense_weight, norm_score=True)

    def scale(self, raw: float) -> float:
        """The store's fused score as localmem reports it (higher is better)."""
        if self.method == "rrf":
            return raw * (self.k + 1) / 2.0
        return raw


RRF = Fusion()
WEIGHTED = Fusion(method="weighted")
