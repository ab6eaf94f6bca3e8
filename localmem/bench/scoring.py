"""L2 vs cosine vs inner product, on unit vectors (the default) and on raw ones.

For SciFact (nDCG@10), LoCoMo QA (hit@k / recall@k, searched within the question's
conversation) and the generated fact set (synthetic.py: one relevant fact per question; it
needs no download, so this section runs on any machine) every (variant, metric) pair gets its own exact (FLAT) Milvus
Lite collection, so differences come from the metric alone, not from an index. We
record quality, per-query store latency, how much the top-10 lists of two metrics
agree, and the distribution of localmem's scores for relevant and irrelevant results,
which is what a ``threshold`` passed to search() cuts through.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from localmem.bench import data, floor, metrics, milvus_direct, synthetic
from localmem.bench.embedding import Embedders, normalise
from localmem.bench.timing import median_of_passes, time_each
from localmem.protocols import Vectors
from localmem.vector_stores import lite

VARIANTS = ("normalised", "raw")
DEPTH = max(metrics.KS)  # results fetched per query
SCORE_DEPTH = 10  # results whose scores feed the relevant/irrelevant distributions
_Q = (0.05, 0.25, 0.5, 0.75, 0.95)
GENERATED_QUERIES = 300  # questions over the generated facts (600 facts: 50 people x 12 attributes)


@dataclass(frozen=True)
class Dataset:
    name: str
    doc_raw: Vectors
    doc_labels: list[tuple[str, ...]]
    doc_users: list[str]
    query_raw: Vectors
    query_users: list[str | None]
    relevant: list[frozenset[str]]
    grades: list[dict[str, int]] | None  # graded relevance (SciFact) for nDCG


def load_datasets(emb: Embedders, *, scifact_queries: int | None, scifact_docs: int | None,
                  locomo_questions: int | None, locomo_conversations: int | None, seed: int) -> list[Dataset]:
    """The generated set always; SciFact and LoCoMo when their data are present."""
    gen = synthetic.labelled(GENERATED_QUERIES if scifact_queries is None else scifact_queries, seed)
    out = [Dataset("generated", emb.embed_raw_cached(gen.docs, progress=True), [(d,) for d in gen.doc_ids],
                   ["all"] * len(gen.docs), emb.embed_raw_cached(gen.queries), [None] * len(gen.queries),
                   [frozenset((r,)) for r in gen.relevant], None)]
    if data.has("scifact"):
        out.append(_scifact(emb, scifact_queries, scifact_docs, seed))
    if data.has("locomo"):
        out.append(_locomo(emb, locomo_questions, locomo_conversations, seed))
    return out


def _scifact(emb: Embedders, scifact_queries: int | None, scifact_docs: int | None, seed: int) -> Dataset:
    sf = data.scifact(max_queries=scifact_queries, max_docs=scifact_docs, seed=seed)
    return Dataset("scifact", emb.embed_raw_cached(sf.docs, progress=True), [(d,) for d in sf.doc_ids],
                      ["all"] * len(sf.docs), emb.embed_raw_cached(sf.queries), [None] * len(sf.queries),
                   [frozenset(sf.qrels[q]) for q in sf.query_ids], [sf.qrels[q] for q in sf.query_ids])


def _locomo(emb: Embedders, locomo_questions: int | None, locomo_conversations: int | None, seed: int) -> Dataset:
    turns = data.locomo_turns()
    convs = sorted({t.conversation for t in turns})[:locomo_conversations]
    turns = [t for t in turns if t.conversation in convs]
    questions = [q for q in data.locomo_questions() if q.conversation in convs]
    if locomo_questions is not None:
        questions = random.Random(seed).sample(questions, min(locomo_questions, len(questions)))
    return Dataset("locomo", emb.embed_raw_cached([t.text for t in turns], progress=True),
                   [(f"{t.conversation}|{t.dia_id}",) for t in turns], [t.conversation for t in turns],
                   emb.embed_raw_cached([q.text for q in questions]), [q.conversation for q in questions],
                   [frozenset(f"{q.conversation}|{e}" for e in q.evidence) for q in questions], None)


def run(emb: Embedders, *, scifact_queries: int | None, scifact_docs: int | None, locomo_questions: int | None,
        locomo_conversations: int | None, seed: int, warmup: int, workdir: Path
        ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Returns (figures for results.json, score samples for the histograms)."""
    out: dict[str, Any] = {"normalize_module_stripped": emb.normalize_module_found,
                           "normalise_matches_default_max_abs_diff": None, "datasets": {}}
    samples: dict[str, Any] = {}
    client = lite.open_client(workdir / "scoring.db")
    try:
        for ds in load_datasets(emb, scifact_queries=scifact_queries, scifact_docs=scifact_docs,
                                locomo_questions=locomo_questions, locomo_conversations=locomo_conversations,
                                seed=seed):
            print(f"scoring: {ds.name} ({len(ds.doc_raw)} docs, {len(ds.query_raw)} queries)", flush=True)
            out["datasets"][ds.name], samples[ds.name] = _dataset(client, ds, warmup)
    finally:
        lite.close_client(client, workdir / "scoring.db")  # stops the engine before the run removes the folder
    out["normalise_matches_default_max_abs_diff"] = emb.check_normalised(data.base_texts()[:32])
    return out, samples


def _dataset(client: Any, ds: Dataset, warmup: int) -> tuple[dict[str, Any], dict[str, Any]]:
    norms = np.linalg.norm(ds.doc_raw, axis=1)
    res: dict[str, Any] = {"docs": len(ds.doc_raw), "queries": len(ds.query_raw),
                           "raw_norms": {"min": float(norms.min()), "p50": float(np.median(norms)),
                                         "max": float(norms.max())},
                           "variants": {}}
    samples: dict[str, Any] = {}
    rankings: dict[tuple[str, str], list[list[int]]] = {}
    for variant in VARIANTS:
        docs = normalise(ds.doc_raw) if variant == "normalised" else ds.doc_raw
        queries = normalise(ds.query_raw) if variant == "normalised" else ds.query_raw
        per_metric: dict[str, Any] = {}
        samples[variant] = {}
        for metric in milvus_direct.METRICS:
            ranked, scores, passes = _search_all(client, ds, docs, queries, metric, warmup)
            rankings[(variant, metric)] = ranked
            exact = [_exact(docs, queries[i], metric, ds, i) for i in range(len(queries))]
            per_metric[metric] = {
                "quality": _quality(ds, ranked),
                "store_latency": median_of_passes(passes).to_dict(),
                "agreement_with_exact_numpy_at_10": metrics.mean(
                    [metrics.overlap_at(r, e, 10) for r, e in zip(ranked, exact, strict=True)]),
            }
            relevant, irrelevant = _score_split(ds, ranked, scores)
            per_metric[metric]["scores"] = distribution(relevant, irrelevant)
            samples[variant][metric] = (relevant, irrelevant)
        per_metric["agreement_at_10"] = {
            f"{a}~{b}": metrics.mean([metrics.overlap_at(x, y, 10) for x, y in
                                      zip(rankings[(variant, a)], rankings[(variant, b)], strict=True)])
            for a, b in itertools.combinations(milvus_direct.METRICS, 2)}
        res["variants"][variant] = per_metric
    res["normalised_vs_raw_at_10"] = {
        m: metrics.mean([metrics.overlap_at(x, y, 10) for x, y in
                         zip(rankings[("normalised", m)], rankings[("raw", m)], strict=True)])
        for m in milvus_direct.METRICS}
    return res, samples


def _search_all(client: Any, ds: Dataset, docs: Vectors, queries: Vectors, metric: str, warmup: int
                ) -> tuple[list[list[int]], list[list[float]], list[list[float]]]:
    name = f"score_{ds.name}_{metric.lower()}"
    milvus_direct.create(client, name, docs, ds.doc_users, "FLAT", metric)
    qlists = [q.tolist() for q in queries]
    found: dict[int, list[tuple[int, float]]] = {}

    def call(i: int) -> None:
        found[i] = milvus_direct.search(client, name, qlists[i], DEPTH, "FLAT", metric, ds.query_users[i])

    passes = time_each(call, list(range(len(queries))), warmup=warmup, repeats=1)
    client.drop_collection(name)
    ranked = [[row for row, _ in found[i]] for i in range(len(queries))]
    scores = [[milvus_direct.to_score(metric, d) for _, d in found[i]] for i in range(len(queries))]
    return ranked, scores, passes


def _exact(docs: Vectors, query: Vectors, metric: str, ds: Dataset, i: int) -> list[int]:
    user = ds.query_users[i]
    rows = np.arange(len(docs)) if user is None else np.flatnonzero(np.asarray(ds.doc_users) == user)
    return [int(x) for x in rows[floor.top_k(floor.scores(metric, docs[rows], query), DEPTH)]]


def _quality(ds: Dataset, ranked: list[list[int]]) -> dict[str, Any]:
    labelled = [([ds.doc_labels[r] for r in rows], rel) for rows, rel in zip(ranked, ds.relevant, strict=True)]
    out: dict[str, Any] = metrics.curves(labelled)
    if ds.grades is not None:
        out["ndcg_at_10"] = metrics.mean([
            metrics.ndcg_at([ds.doc_labels[r][0] for r in rows], grades, 10)
            for rows, grades in zip(ranked, ds.grades, strict=True)])
    return out


def _score_split(ds: Dataset, ranked: list[list[int]], scores: list[list[float]]) -> tuple[list[float], list[float]]:
    relevant: list[float] = []
    irrelevant: list[float] = []
    for rows, vals, rel in zip(ranked, scores, ds.relevant, strict=True):
        for row, score in zip(rows[:SCORE_DEPTH], vals[:SCORE_DEPTH], strict=True):
            (relevant if any(label in rel for label in ds.doc_labels[row]) else irrelevant).append(score)
    return relevant, irrelevant


def distribution(relevant: list[float], irrelevant: list[float]) -> dict[str, Any]:
    def quantiles(values: list[float]) -> dict[str, float]:
        if not values:
            return {}
        return {f"p{int(q * 100)}": float(np.quantile(values, q)) for q in _Q} | {
            "min": float(min(values)), "max": float(max(values)), "n": len(values)}

    # The threshold that keeps 90% of the relevant results in the top 10, and what it lets through.
    cut = float(np.quantile(relevant, 0.1)) if relevant else float("nan")
    above = float(np.mean(np.asarray(irrelevant) >= cut)) if irrelevant and relevant else float("nan")
    return {"relevant": quantiles(relevant), "irrelevant": quantiles(irrelevant),
            "threshold_keeping_90pct_relevant": cut, "irrelevant_share_above_that_threshold": above}
