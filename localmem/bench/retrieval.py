"""Full-product retrieval on LoCoMo dev: Memory.add(infer=False) + Memory.search, vs the floor.

Each turn "Speaker: text" is stored as a memory scoped to its conversation
(user_id = sample_id, one add() per session). Each category 1-4 question is searched
in its conversation; a result counts for every dialogue turn whose text it holds.
The floor is issue #2's yardstick: the same query embedding plus an exact numpy cosine
scan over the vectors Milvus holds for that conversation (read through `export`). Targets: search p50 at most
1.5x the floor's, hit@5 at least the floor's.
"""

from __future__ import annotations

import io
import json
import random
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from localmem import Memory, MemoryConfig
from localmem.bench import data, floor, metrics
from localmem.bench.embedding import Embedders
from localmem.bench.scoring import SCORE_DEPTH, distribution
from localmem.bench.timing import median_of_passes, summarize, time_interleaved
from localmem.config import VectorStoreConfig
from localmem.protocols import Vectors

SPEED_TARGET = 1.5
_DATED = re.compile(r"^\(\d{1,2} [A-Z][a-z]+ \d{4}\) ")
NEIGHBOURS = 3
DEPTH = max(metrics.KS)


def run(emb: Embedders, *, conversations: int | None, max_questions: int | None, seed: int, warmup: int,
        repeats: int, workdir: Path) -> dict[str, Any]:
    turns = data.locomo_turns()
    convs = sorted({t.conversation for t in turns})[:conversations]
    questions = [q for q in data.locomo_questions() if q.conversation in convs]
    if max_questions is not None:
        questions = random.Random(seed).sample(questions, min(max_questions, len(questions)))
    labels: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    sessions: dict[tuple[str, str], list[str]] = defaultdict(list)
    for t in turns:
        if t.conversation in convs:
            labels[t.conversation][t.text.strip()].add(t.dia_id)
            sessions[(t.conversation, t.dia_id.split(":")[0])].append(t.text)
    print(f"retrieval: {len(convs)} conversations, {len(questions)} questions", flush=True)
    config = MemoryConfig(vector_store=VectorStoreConfig(uri=str(workdir / "retrieval.db")))
    with Memory(config, embedder=emb.default) as memory:
        for (conv, _), texts in sessions.items():
            memory.add([{"role": "user", "content": t} for t in texts], user_id=conv, infer=False)
        matrices = stored_vectors(memory)
        found: dict[int, list[str]] = {}
        scored: dict[int, list[float]] = {}

        def product(i: int) -> None:
            q = questions[i]
            hits = memory.search(q.text, user_id=q.conversation, limit=DEPTH)["results"]
            found[i] = [h["memory"] for h in hits]
            scored[i] = [float(h["score"]) for h in hits]

        def floor_search(i: int) -> list[str]:
            q = questions[i]
            texts, matrix = matrices[q.conversation]
            rows = floor.unit_scan(matrix, emb.default.embed([q.text])[0], DEPTH)
            return [texts[r] for r in rows]

        cases = list(range(len(questions)))
        # The floor's scan needs BLAS at one thread (floor.py); Memory.search holds the same
        # limit around its own Lite search, so holding it for both measures the product as shipped.
        with floor.single_threaded_blas():
            product_passes, floor_passes = time_interleaved([product, floor_search], cases, warmup=warmup,
                                                            repeats=repeats)
        floor_found = {i: floor_search(i) for i in cases}
    product_stats, floor_stats = median_of_passes(product_passes), median_of_passes(floor_passes)

    def quality(results: dict[int, list[str]]) -> dict[str, Any]:
        per_query = [([labels[q.conversation][_said(m)] for m in results[i]], q.evidence)
                     for i, q in enumerate(questions)]
        out: dict[str, Any] = metrics.curves(per_query)
        out["hit_at_5_by_category"] = {
            str(c): metrics.mean([metrics.hit_at(r, e, 5) for (r, e), q in zip(per_query, questions, strict=True)
                                  if q.category == c]) for c in data.QA_CATEGORIES}
        return out

    product_q, floor_q = quality(found), quality(floor_found)
    # The default search's scores of an evidence turn and of the rest: what a threshold cuts through.
    relevant: list[float] = []
    unrelated: list[float] = []
    for i, q in enumerate(questions):
        for text, value in list(zip(found[i], scored[i], strict=True))[:SCORE_DEPTH]:
            (relevant if labels[q.conversation][_said(text)] & q.evidence else unrelated).append(value)
    ratio = product_stats.p50_ms / floor_stats.p50_ms
    return {
        "device": emb.device, "conversations": convs, "questions": len(questions),
        "memories": sum(len(m[0]) for m in matrices.values()),
        "product": {"latency": product_stats.to_dict(), "quality": product_q,
                    "scores": {**distribution(relevant, unrelated), "relevant_scores": [round(v, 4) for v in relevant],
                               "unrelated_scores": [round(v, 4) for v in unrelated]}},
        "floor": {"latency": floor_stats.to_dict(), "quality": floor_q},
        "targets": {
            "p50_ratio_to_floor": ratio, "p50_target": SPEED_TARGET, "p50_met": ratio <= SPEED_TARGET,
            "hit_at_5": product_q["hit"]["5"], "floor_hit_at_5": floor_q["hit"]["5"],
            "hit_at_5_met": product_q["hit"]["5"] >= floor_q["hit"]["5"],
        },
    }


def infer_subset(emb: Embedders, *, n_questions: int, seed: int, workdir: Path) -> dict[str, Any]:
    """add(infer=True) vs add(infer=False) retrieval on a small haystack, with the default LLM.

    The LLM costs about a second per add() on 2 cores, so this uses a few single-hop and
    multi-hop questions of the first conversation, and as haystack their evidence turns plus
    NEIGHBOURS turns either side (the context that makes retrieval non-trivial). A memory
    counts for the turn whose add() created or updated it.
    """
    try:
        from localmem.extractors.llama_cpp import LlamaCppModel
    except ImportError as exc:
        return {"skipped": f"the llama.cpp extractor is not importable ({exc})"}
    turns = data.locomo_turns()
    conv = sorted({t.conversation for t in turns})[0]
    turns = [t for t in turns if t.conversation == conv]
    pool = [q for q in data.locomo_questions() if q.conversation == conv and q.category in (1, 4)]
    questions = random.Random(seed).sample(pool, min(n_questions, len(pool)))
    position = {t.dia_id: i for i, t in enumerate(turns)}
    keep = sorted({j for q in questions for e in q.evidence if e in position
                   for j in range(position[e] - NEIGHBOURS, position[e] + NEIGHBOURS + 1) if 0 <= j < len(turns)})
    haystack = [turns[j] for j in keep]
    out: dict[str, Any] = {"conversation": conv, "questions": len(questions), "turns": len(haystack),
                           "neighbours": NEIGHBOURS}
    llm = LlamaCppModel()
    try:
        for infer in (False, True):
            config = MemoryConfig(vector_store=VectorStoreConfig(uri=str(workdir / f"infer_{infer}.db")))
            with Memory(config, embedder=emb.default, llm=llm if infer else None) as memory:
                memory.add("Warm-up.", user_id="warmup", infer=infer)  # loads the model outside the timings
                owner: dict[str, set[str]] = defaultdict(set)
                times = []
                for t in haystack:
                    start = time.perf_counter()
                    changes = memory.add(t.text, user_id=conv, infer=infer)["results"]
                    times.append(time.perf_counter() - start)
                    for c in changes:
                        if c["event"] in ("ADD", "UPDATE"):
                            owner[c["id"]].add(t.dia_id)
                ranked = [[owner[h["id"]] for h in memory.search(q.text, user_id=conv, limit=DEPTH)["results"]]
                          for q in questions]
                out["infer" if infer else "raw"] = {
                    "memories": len(memory.get_all(user_id=conv, limit=16_384)["results"]),
                    "add_latency": summarize(times).to_dict(),
                    "quality": metrics.curves([(r, q.evidence) for r, q in zip(ranked, questions, strict=True)]),
                }
    finally:
        llm.close()
    return out


def _said(memory: str) -> str:
    """A stored episode's text without the date localmem writes before it: the turn as said."""
    return _DATED.sub("", memory, count=1).strip()


def stored_vectors(memory: Memory) -> dict[str, tuple[list[str], Vectors]]:
    """Each conversation's texts and the very vectors Milvus holds, read as `localmem export --vectors` does."""
    from localmem.transfer import export_store

    out = io.StringIO()
    export_store(memory, out, with_vectors=True)
    rows: dict[str, tuple[list[str], list[list[float]]]] = defaultdict(lambda: ([], []))
    for line in out.getvalue().splitlines():
        item = json.loads(line)
        if item.get("type") == "memory":
            texts, vectors = rows[item["user_id"]]
            texts.append(item["memory"])
            vectors.append(item["vector"])
    return {conv: (texts, np.asarray(vectors, dtype=np.float32)) for conv, (texts, vectors) in rows.items()}
