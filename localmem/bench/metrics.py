"""Retrieval quality measures over ranked lists (hit@k, recall@k, nDCG@k, overlap@k), and how two runs
compare query by query (paired, sign_test)."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

import numpy as np

KS = (1, 3, 5, 10, 20)


def hit_at(ranked: Sequence[Collection[str]], relevant: Collection[str], k: int) -> float:
    """1 if any of the first k results carries a relevant label. A result may carry several
    labels (a memory whose text occurs at two dialogue turns)."""
    return float(any(label in relevant for labels in ranked[:k] for label in labels))


def recall_at(ranked: Sequence[Collection[str]], relevant: Collection[str], k: int) -> float:
    if not relevant:
        return 0.0
    found = {label for labels in ranked[:k] for label in labels if label in relevant}
    return len(found) / len(relevant)


def ndcg_at(ranked: Sequence[str], grades: Mapping[str, int], k: int) -> float:
    """BEIR's nDCG: gain = grade, discount = log2(rank + 1); each document counted once."""
    dcg = sum(grades.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]))
    ideal = sorted(grades.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def overlap_at(a: Sequence[int], b: Sequence[int], k: int) -> float:
    """Share of the top k two rankings have in common (order ignored)."""
    top_a, top_b = set(a[:k]), set(b[:k])
    return len(top_a & top_b) / max(1, min(k, len(top_a), len(top_b)))


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def curves(per_query: Sequence[tuple[Sequence[Collection[str]], Collection[str]]],
           ks: Sequence[int] = KS) -> dict[str, dict[str, float]]:
    """Mean hit@k and recall@k over queries, for every k."""
    return {
        "hit": {str(k): mean([hit_at(r, rel, k) for r, rel in per_query]) for k in ks},
        "recall": {str(k): mean([recall_at(r, rel, k) for r, rel in per_query]) for k in ks},
    }


def sign_test(wins: int, losses: int) -> float:
    """Two-sided sign test: how likely a split at least this uneven is when neither side is better."""
    n, k = wins + losses, min(wins, losses)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / float(2 ** n))


def paired(before: Sequence[float], after: Sequence[float], *, resamples: int = 5000,
           seed: int = 0) -> dict[str, float]:
    """``after`` against ``before``, query by query: the mean difference with a bootstrap 95% interval,
    how many queries each side scores higher on, and the sign test of that split."""
    diff = np.asarray(after, dtype=np.float64) - np.asarray(before, dtype=np.float64)
    if diff.size == 0:
        raise ValueError("paired() needs at least one query")
    draws = np.random.default_rng(seed).integers(0, diff.size, size=(resamples, diff.size))
    low, high = np.percentile(diff[draws].mean(axis=1), [2.5, 97.5])
    better, worse = int((diff > 1e-12).sum()), int((diff < -1e-12).sum())
    return {"queries": int(diff.size), "mean_difference": float(diff.mean()), "ci95_low": float(low),
            "ci95_high": float(high), "after_better": better, "after_worse": worse,
            "sign_test_p": sign_test(better, worse)}
