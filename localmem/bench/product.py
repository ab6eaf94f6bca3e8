"""Memory.search and add() as an application calls them, on a generated multi-session conversation.

Needs no data set, so the first run a user makes reports the numbers they came for. Two people talk
over sessions of 20 turns (synthetic.conversation); every other turn states a fact about someone
else, once. Into one scope, one add() per turn:

- ``add(infer=False)``: every turn, timed call by call, growing the store; at each of ``sizes``
  memories stored, ``Memory.search`` (default settings, limit 10) answers generated questions whose
  one relevant turn is in the store, timed alternately with the floor: the same query embedding plus
  an exact numpy cosine scan over the vectors the store holds for that scope (as retrieval.py does).
- ``add()`` with the default ``infer=True`` (the bundled model) on the first ``infer_turns`` turns,
  into a fresh store: the model costs seconds a turn, so a few dozen turns in a quick run.

The scores of the top 10 at the largest size, split into the relevant turn and the rest, are kept:
the distribution a ``threshold`` passed to search() cuts through. Generated figures compare with
other generated runs only; retrieval.py and the quality section measure real conversations.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from localmem import LocalmemError, Memory, MemoryConfig
from localmem.bench import floor, synthetic
from localmem.bench.embedding import Embedders
from localmem.bench.retrieval import stored_vectors
from localmem.bench.scoring import distribution
from localmem.bench.timing import median_of_passes, summarize, time_interleaved
from localmem.config import VectorStoreConfig

USER = "maya"
K = 10
_DAY = 86_400
_START = 1_700_000_000  # the first session's time; one session a day after it


def _said(turn: synthetic.Said) -> str:
    return f"{turn.speaker}: {turn.text}"


def _when(turn: synthetic.Said) -> int:
    return _START + turn.session * _DAY


def run(emb: Embedders, *, sizes: list[int], infer_turns: int, queries: int, seed: int, warmup: int,
        repeats: int, workdir: Path) -> dict[str, Any]:
    sizes = sorted(set(sizes))
    turns = synthetic.conversation(sizes[-1], seed)
    # Questions about facts stated within the smallest store: the same questions at every size.
    facts = [(i, t.fact) for i, t in enumerate(turns[:sizes[0]]) if t.fact is not None]
    asked = sorted(random.Random(seed).sample(facts, min(queries, len(facts))))
    print(f"Memory.search / add(): generated conversation of {len(turns)} turns, {len(asked)} questions",
          flush=True)
    out: dict[str, Any] = {"corpus": "generated", "device": emb.device, "turns": len(turns),
                           "sessions": turns[-1].session + 1, "questions": len(asked), "k": K,
                           "repeats": repeats, "sizes": {}}
    config = MemoryConfig(vector_store=VectorStoreConfig(uri=str(workdir / "product.db")))
    with Memory(config, embedder=emb.default) as memory:
        memory.add("warm-up", user_id="warm-up", infer=False)
        times = []
        for i, turn in enumerate(turns):
            start = time.perf_counter()
            memory.add(_said(turn), user_id=USER, metadata={"turn": i}, timestamp=_when(turn), infer=False)
            times.append(time.perf_counter() - start)
            if i + 1 in sizes:
                out["sizes"][str(i + 1)] = _search(memory, emb, asked, warmup=warmup, repeats=repeats,
                                                   keep_scores=i + 1 == sizes[-1])
    out["add_infer_false"] = {"turns": len(times), "latency": summarize(times).to_dict()}
    out["add_infer_true"] = _add_infer(emb, turns[:infer_turns], workdir / "product_infer.db")
    return out


def _search(memory: Memory, emb: Embedders, asked: list[tuple[int, str]], *, warmup: int, repeats: int,
            keep_scores: bool) -> dict[str, Any]:
    texts, matrix = stored_vectors(memory)[USER]
    questions = [synthetic.question(fact) for _, fact in asked]
    found: dict[int, list[dict[str, Any]]] = {}

    def product(i: int) -> None:
        found[i] = memory.search(questions[i], user_id=USER, limit=K)["results"]

    def floor_search(i: int) -> None:
        floor.unit_scan(matrix, emb.default.embed([questions[i]])[0], K)

    cases = list(range(len(questions)))
    with floor.single_threaded_blas():  # as in retrieval.py: the floor's scan needs it, search() holds it too
        product_passes, floor_passes = time_interleaved([product, floor_search], cases, warmup=warmup,
                                                        repeats=repeats)
    search, base = median_of_passes(product_passes), median_of_passes(floor_passes)
    relevant: list[float] = []
    unrelated: list[float] = []
    hits = []
    for i, (turn, _) in enumerate(asked):
        results = found[i]
        hits.append(any(r.get("metadata", {}).get("turn") == turn for r in results[:5]))
        for r in results:
            (relevant if r.get("metadata", {}).get("turn") == turn else unrelated).append(float(r["score"]))
    entry: dict[str, Any] = {"memories": len(texts), "search": search.to_dict(), "floor": base.to_dict(),
                             "ratio_to_floor": search.ratio(base), "hit_at_5": sum(hits) / max(1, len(hits))}
    if keep_scores:
        # distribution(): quantiles of each group and the threshold keeping 90% of the relevant; the
        # scores themselves feed the figure.
        entry["scores"] = {**distribution(relevant, unrelated), "relevant_scores": [round(s, 4) for s in relevant],
                           "unrelated_scores": [round(s, 4) for s in unrelated]}
    return entry


def _add_infer(emb: Embedders, turns: list[synthetic.Said], path: Path) -> dict[str, Any]:
    """The default add(): infer=True with the bundled model, one call per turn, the model loaded first."""
    if not turns:
        return {"skipped": "no turns asked for (infer_turns=0)"}
    try:
        with Memory(MemoryConfig(vector_store=VectorStoreConfig(uri=str(path))), embedder=emb.default) as memory:
            memory.add("Warm-up: I like tea.", user_id="warm-up")  # loads the model outside the timings
            times = []
            for i, turn in enumerate(turns):
                start = time.perf_counter()
                memory.add(_said(turn), user_id=USER, metadata={"turn": i}, timestamp=_when(turn))
                times.append(time.perf_counter() - start)
            stored = memory.get_all(user_id=USER, limit=16_384)["results"]
    except LocalmemError as exc:  # e.g. the model is not prepared: the rest of the run keeps its figures
        return {"skipped": f"add(infer=True) not measured: {type(exc).__name__}: {exc}"}
    return {"turns": len(times), "latency": summarize(times).to_dict(), "s_per_turn": sum(times) / len(times),
            "memories_listed": len(stored)}
