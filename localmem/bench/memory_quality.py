"""Memory quality on the LoCoMo dev conversations: is what was said findable, with who and when?

``python -m localmem.bench.memory_quality [--quick] [--infer-conversations N] [--infer-turns N]``

Every turn is added as a chatbot would: one ``add()`` per turn, ``"Speaker: text"`` as a user
message, ``metadata={"dia_id": ...}``, the session's time as ``timestamp``, user_id = the
conversation. Each category 1-4 question whose evidence lies in the added turns is searched
with ``limit=5`` in its conversation. Two measures (issue #16):

- evidence hit@5: share of questions with a top-5 result whose ``dia_id`` (its own metadata's,
  or that of a source returned with it) is one of the question's evidence turns;
- answer recall@5: mean share of the answer's tokens (lower-cased words, stop words removed)
  found in the text of the top-5 results (their ``memory`` and their sources' ``memory``).

Rows: raw turns ("Speaker: text", no time) searched by exact dense cosine, by BM25 (k1 1.2,
b 0.75, lower-cased word tokens) and by both fused with RRF (k 60), all in numpy; then the
library with ``infer=False`` (the default fused search, and its dense-only, weighted-fusion and
textbook-RRF variants, which is how the fusion was chosen), and the default ``infer=True`` on a subset
(the 270M model costs seconds a turn), compared with ``infer=False`` and with ``infer=True`` without the
model's facts (``extract_facts: false``: the contexts that rules write) on exactly that subset.
``--quick`` adds the first 200 turns of each conversation; the full run adds them all.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from localmem import Memory, MemoryConfig
from localmem.bench import data, metrics
from localmem.bench.publish import folder, publish
from localmem.bench.timing import summarize
from localmem.config import EmbedderConfig, VectorStoreConfig
from localmem.embedders.select import BACKENDS, build_embedder
from localmem.progress import bar
from localmem.protocols import Embedder, LanguageModel
from localmem.temporal import parse_locomo_datetime

# The usual RRF setting, kept as a row: the default's k and depth were chosen against it.
TEXTBOOK_RRF = {"rrf_k": 60, "fusion_depth": 30}

K = 5
QUICK_TURNS = 200
# Default results folder: the committed one when run from the checkout root, else ./localmem-bench-...
# A common English stop-word list (the function words of NLTK's list): answer tokens only.
_STOP_TEXT = """
a about above after again against all am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here hers
herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
once only or other our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself yourselves
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Turn:
    conversation: str
    dia_id: str
    speaker: str
    text: str
    when: str  # the session's time, as LoCoMo writes it

    @property
    def said(self) -> str:
        return f"{self.speaker}: {self.text}"


@dataclass(frozen=True)
class Question:
    conversation: str
    text: str
    answer: str
    category: int
    evidence: frozenset[str]


@dataclass(frozen=True)
class Found:
    """One search result as the measures see it: the dia_ids it carries and its text."""

    labels: frozenset[str]
    text: str


def load(max_turns: int | None) -> tuple[dict[str, list[Turn]], list[Question]]:
    raw = json.loads(data.locomo_path().read_text())
    turns: dict[str, list[Turn]] = {}
    questions = []
    for sample in raw:
        conv = str(sample["sample_id"])
        talk = sample["conversation"]
        sessions = sorted((k for k, v in talk.items() if re.fullmatch(r"session_\d+", k) and isinstance(v, list)),
                          key=lambda k: int(k.split("_")[1]))
        kept = [Turn(conv, str(t["dia_id"]), str(t["speaker"]), str(t["text"]), str(talk[f"{key}_date_time"]))
                for key in sessions for t in talk[key]][:max_turns]
        turns[conv] = kept
        present = {t.dia_id for t in kept}
        for q in sample["qa"]:
            evidence = data.normalise_evidence(q.get("evidence", []))
            if q["category"] in data.QA_CATEGORIES and evidence and evidence <= present:
                questions.append(Question(conv, str(q["question"]), str(q.get("answer", "")), int(q["category"]),
                                          evidence))
    return turns, questions


def answer_tokens(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS}


def score(questions: Sequence[Question], found: Sequence[Sequence[Found]]) -> dict[str, Any]:
    """Evidence hit@5 and answer recall@5, overall and per category."""
    hits: dict[str, list[float]] = defaultdict(list)
    recalls: dict[str, list[float]] = defaultdict(list)
    for q, results in zip(questions, found, strict=True):
        top = results[:K]
        hit = float(any(r.labels & q.evidence for r in top))
        wanted = answer_tokens(q.answer)
        seen = set(_WORD.findall(" ".join(r.text for r in top).lower()))
        recall = len(wanted & seen) / len(wanted) if wanted else 0.0
        for key in ("all", str(q.category)):
            hits[key].append(hit)
            recalls[key].append(recall)
    out: dict[str, Any] = {key: {"questions": len(hits[key]), "evidence_hit_at_5": float(np.mean(hits[key])),
                                 "answer_recall_at_5": float(np.mean(recalls[key]))}
                           for key in ["all", *sorted(k for k in hits if k != "all")]}
    # Each question's hit, in order ("1"/"0"): two runs over the same questions compare pairwise (compare()).
    out["all"]["evidence_hits"] = "".join(str(int(h)) for h in hits["all"])
    return out


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Per row of both result files: questions only ``after`` finds, only ``before`` finds, and how
    likely a split at least that uneven is when neither is better (two-sided sign test)."""
    lines = ["| row | hit@5 before / after | found only after | only before | sign test p |", "|---|---|---|---|---|"]
    rows_b = _rows(after)
    for name, row in _rows(before).items():
        a, b = row["all"].get("evidence_hits"), rows_b.get(name, {}).get("all", {}).get("evidence_hits")
        if not a or not b or len(a) != len(b):
            continue  # a row one side lacks, or files from before per-question hits were kept
        gained = sum(x == "0" and y == "1" for x, y in zip(a, b, strict=True))
        lost = sum(x == "1" and y == "0" for x, y in zip(a, b, strict=True))
        lines.append(f"| {name} | {a.count('1') / len(a):.3f} / {b.count('1') / len(b):.3f} | {gained} | {lost} | "
                     f"{metrics.sign_test(gained, lost):.2f} |")
    return lines


def _rows(results: dict[str, Any]) -> dict[str, Any]:
    subset = (results.get("infer_subset") or {}).get("rows", {})
    return {**results.get("rows", {}), **{f"{name} (infer subset)": row for name, row in subset.items()}}


# -- raw turns, in numpy -----------------------------------------------------------------
class BM25:
    """Okapi BM25 (k1 1.2, b 0.75, Lucene's idf) over lower-cased word tokens."""

    def __init__(self, texts: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        self.docs = [Counter(_WORD.findall(t.lower())) for t in texts]
        self.lengths = np.array([sum(d.values()) for d in self.docs], dtype=np.float64)
        self.avg = float(self.lengths.mean()) if len(self.docs) else 0.0
        df: Counter[str] = Counter(w for d in self.docs for w in d)
        n = len(self.docs)
        self.idf = {w: math.log(1 + (n - c + 0.5) / (c + 0.5)) for w, c in df.items()}
        self.k1, self.b = k1, b

    def scores(self, query: str) -> np.ndarray[Any, np.dtype[np.float64]]:
        out = np.zeros(len(self.docs))
        norm = self.k1 * (1 - self.b + self.b * self.lengths / max(self.avg, 1e-9))
        for word in set(_WORD.findall(query.lower())):
            if word not in self.idf:
                continue
            tf = np.array([d.get(word, 0) for d in self.docs], dtype=np.float64)
            out += self.idf[word] * tf * (self.k1 + 1) / (tf + norm)
        return out


def rrf(rankings: Sequence[Sequence[int]], k: int = 60) -> list[int]:
    fused: dict[int, float] = defaultdict(float)
    for ranking in rankings:
        for rank, row in enumerate(ranking):
            fused[row] += 1.0 / (k + rank + 1)
    return sorted(fused, key=lambda r: -fused[r])


def raw_rows(embedder: Embedder, turns: dict[str, list[Turn]],
             questions: Sequence[Question]) -> dict[str, list[list[Found]]]:
    out: dict[str, list[list[Found]]] = {"raw dense": [], "raw BM25": [], "raw hybrid (RRF)": []}
    by_conv: dict[str, tuple[list[Turn], Any, BM25]] = {}
    for conv, kept in turns.items():
        by_conv[conv] = (kept, embedder.embed([t.said for t in kept]), BM25([t.said for t in kept]))
    query_vectors = embedder.embed([q.text for q in questions])
    for q, vector in zip(questions, query_vectors, strict=True):
        kept, matrix, bm25 = by_conv[q.conversation]
        dense = list(np.argsort(-(matrix @ vector), kind="stable")[:50])
        words = list(np.argsort(-bm25.scores(q.text), kind="stable")[:50])
        for name, rows in (("raw dense", dense), ("raw BM25", words), ("raw hybrid (RRF)", rrf([dense, words]))):
            out[name].append([Found(frozenset({kept[r].dia_id}), kept[r].said) for r in rows[:K]])
    return out


# -- the library ---------------------------------------------------------------------------
class PrimedEmbedder:
    """The same embedder, with vectors of known texts computed up front in batches.

    On 2 shared cores, 1,200 one-text embeddings cost minutes that 20 batched calls do not, and
    the vectors are identical (same model, same normalisation). Quality figures only: add() and
    search() latency is measured by the ingestion and retrieval sections, not here.
    """

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self._cache: dict[str, Any] = {}

    @property
    def identity(self) -> Any:
        return self.inner.identity

    @property
    def device(self) -> str:
        return self.inner.device

    def prime(self, texts: Sequence[str]) -> None:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            self._cache.update(zip(missing, self.inner.embed(missing), strict=True))

    def embed(self, texts: Sequence[str]) -> Any:
        self.prime(texts)
        return np.stack([self._cache[t] for t in texts]).astype(np.float32)

    def close(self) -> None:
        """The inner embedder belongs to the caller."""


def stored_texts(turns: dict[str, list[Turn]]) -> list[str]:
    """The texts add() will embed: each turn as an episode renders it (to prime the embedder)."""
    from localmem.episodes import said
    from localmem.records import Message, Scope

    return [said([Message("user", t.said)], Scope(user_id=t.conversation), parse_locomo_datetime(t.when))[0].text
            for kept in turns.values() for t in kept]


def found_in(result: dict[str, Any]) -> Found:
    labels = {str(result["metadata"]["dia_id"])} if "dia_id" in result.get("metadata", {}) else set()
    texts = [result["memory"]]
    for source in result.get("sources", []):
        if "dia_id" in source.get("metadata", {}):
            labels.add(str(source["metadata"]["dia_id"]))
        texts.append(source["memory"])
    return Found(frozenset(labels), " ".join(texts))


def library(embedder: Embedder, turns: dict[str, list[Turn]], questions: Sequence[Question], workdir: Path, *,
            infer: bool, variants: dict[str, dict[str, Any]], llm: LanguageModel | None = None,
            progress: str = "", extract_facts: bool = True) -> tuple[dict[str, list[list[Found]]], dict[str, Any]]:
    """Add every turn (one add() each), then search every question under each search variant.

    A variant is a set of ``vector_store.config`` search settings (``hybrid``, ``fusion``, ``rrf_k``,
    ``fusion_depth``): the same folder is opened again with them, as a user would.
    """
    store_config = VectorStoreConfig(uri=str(workdir / f"quality_{infer}.db"))
    add_times: list[float] = []
    found: dict[str, list[list[Found]]] = {}
    search_times: dict[str, list[float]] = {}
    stored: dict[str, int] = {}
    with Memory(MemoryConfig(vector_store=store_config, extract_facts=extract_facts), embedder=embedder,
                llm=llm) as memory:
        total = sum(len(t) for t in turns.values())
        # A bar on a terminal; a log or a pipe gets none (the section's own lines say what runs).
        with bar(total, f"{progress or 'adding'}: turns", unit="turn", quiet=not progress) as step:
            for conv, kept in turns.items():
                for turn in kept:
                    start = time.perf_counter()
                    memory.add([{"role": "user", "content": turn.said}], user_id=conv,
                               metadata={"dia_id": turn.dia_id}, timestamp=parse_locomo_datetime(turn.when),
                               infer=infer)
                    add_times.append(time.perf_counter() - start)
                    step(1)
    for name, settings in variants.items():
        config = MemoryConfig(vector_store=dataclasses.replace(store_config, **settings))
        with Memory(config, embedder=embedder) as memory:
            rows, times = [], []
            for q in questions:
                start = time.perf_counter()
                results = memory.search(q.text, user_id=q.conversation, limit=K)["results"]
                times.append(time.perf_counter() - start)
                rows.append([found_in(r) for r in results])
            found[name], search_times[name] = rows, times
            if infer and extract_facts and not settings:  # what the facts alone find: the default search, filtered
                found[f"{name}, facts only"] = [
                    [found_in(r) for r in memory.search(q.text, user_id=q.conversation, limit=K,
                                                        filters={"kind": "fact"})["results"]]
                    for q in questions]
            if not settings:  # what a user lists: the same whatever the search settings, so counted once
                stored = {conv: len(memory.get_all(user_id=conv, limit=16_384)["results"]) for conv in turns}
    timing = {"add": summarize(add_times).to_dict(),
              "search": {name: summarize(t).to_dict() for name, t in search_times.items()},
              "memories_listed": stored}
    return found, timing


def run(*, quick: bool, infer_conversations: int, infer_turns: int, workdir: Path, infer_only: bool = False,
        backend: str = "torch", progress: Callable[[str], None] = print,
        conversations: int | None = None, turns_each: int | None = None) -> dict[str, Any]:
    """``conversations`` and ``turns_each``: only the first N conversations, and turns of each (default: all, or
    QUICK_TURNS when ``quick``); ``localmem bench --quick`` measures a subset this way."""
    max_turns = turns_each if turns_each is not None else QUICK_TURNS if quick else None
    turns, questions = load(max_turns)
    if conversations is not None:
        turns = dict(list(turns.items())[:conversations])
        questions = [q for q in questions if q.conversation in turns]
    progress(f"memory quality: {sum(len(t) for t in turns.values())} turns, {len(questions)} questions")
    out: dict[str, Any] = {"turns": {c: len(t) for c, t in turns.items()}, "questions": len(questions), "rows": {},
                           "embedder_backend": backend}
    # torch in batches of 64 as the other benchmarks embed (the same vectors as any batch size).
    chosen = build_embedder(EmbedderConfig(backend=backend, batch_size=64 if backend == "torch" else None))
    try:
        primed = PrimedEmbedder(chosen)
        if not infer_only:
            primed.prime([t.said for kept in turns.values() for t in kept] + stored_texts(turns)
                         + [q.text for q in questions])
            rows = raw_rows(primed, turns, questions)
            found, timing = library(primed, turns, questions, workdir, infer=False, progress="infer=False",
                                    variants={"infer=False": {}, "infer=False, dense only": {"hybrid": False},
                                              "infer=False, weighted fusion": {"fusion": "weighted"},
                                              "infer=False, RRF k 60, 30 deep": TEXTBOOK_RRF})
            rows.update(found)
            out["rows"] = {name: score(questions, f) for name, f in rows.items()}
            out["timing"] = {"infer=False": timing}
        if infer_conversations > 0 and infer_turns > 0:
            out["infer_subset"] = infer_subset(primed, turns, questions, workdir, infer_conversations,
                                               infer_turns)
    finally:
        chosen.close()
    return out


def infer_subset(embedder: Embedder, turns: dict[str, list[Turn]], questions: Sequence[Question], workdir: Path,
                 conversations: int, max_turns: int) -> dict[str, Any]:
    """The default infer=True against infer=False on the same first turns of a few conversations."""
    from localmem.extractors.llama_cpp import LlamaCppModel

    subset = {c: t[:max_turns] for c, t in list(turns.items())[:conversations]}
    if isinstance(embedder, PrimedEmbedder):
        embedder.prime(stored_texts(subset) + [q.text for q in questions if q.conversation in subset])
    present = {t.dia_id for kept in subset.values() for t in kept}
    asked = [q for q in questions if q.conversation in subset and q.evidence <= present
             and all(e in {t.dia_id for t in subset[q.conversation]} for e in q.evidence)]
    out: dict[str, Any] = {"turns": {c: len(t) for c, t in subset.items()}, "questions": len(asked), "rows": {},
                           "timing": {}}
    llm = LlamaCppModel()
    try:
        # What each part adds: the messages alone, then their contexts (rules, no model), then the default.
        for name, infer, facts in (("infer=False", False, False), ("infer=True, no facts (contexts only)", True, False),
                                   ("infer=True", True, True)):
            found, timing = library(embedder, subset, asked, workdir / name.replace(" ", "_"), infer=infer,
                                    variants={name: {}}, llm=llm if facts else None, progress=name,
                                    extract_facts=facts)
            for row, results in found.items():
                out["rows"][row] = score(asked, results)
            out["timing"][name] = timing
    finally:
        llm.close()
    return out


def render(results: dict[str, Any]) -> str:
    lines = [f"# Memory quality (LoCoMo dev, {results['mode']})", "", f"Command: `{results['command']}`", "",
             f"{sum(results['turns'].values())} turns, {results['questions']} questions (categories 1-4). "
             "Cells: evidence hit@5 / answer recall@5.", ""]
    if results["rows"]:
        lines += table(results["rows"])
    if "infer_subset" in results:
        sub = results["infer_subset"]
        lines += ["", f"## infer=True vs infer=False on the same subset: {sub['turns']} turns, "
                  f"{sub['questions']} questions", ""]
        lines += table(sub["rows"])
        lines += ["", "| mode | add p50 ms | search p50 ms |", "|---|---|---|"]
        for name, timing in sub["timing"].items():
            search = next(iter(timing["search"].values()))
            lines.append(f"| {name} | {timing['add']['p50_ms']:.1f} | {search['p50_ms']:.1f} |")
    if "timing" not in results:
        return "\n".join(lines)
    timing = results["timing"]["infer=False"]
    lines += ["", f"infer=False add p50 {timing['add']['p50_ms']:.1f} ms; search p50: " + ", ".join(
        f"{name} {t['p50_ms']:.1f} ms" for name, t in timing["search"].items()), ""]
    return "\n".join(lines)


def table(rows: dict[str, Any]) -> list[str]:
    categories = sorted({c for r in rows.values() for c in r if c != "all"})
    names = {"1": "multi-hop", "2": "temporal", "3": "open-domain", "4": "single-hop"}
    first = next(iter(rows.values()))
    head = "| row | all | " + " | ".join(f"{c} {names.get(c, '')} ({first.get(c, {}).get('questions', 0)})"
                                        for c in categories) + " |"
    out = [head, "|---" * (len(categories) + 2) + "|"]
    for name, row in rows.items():
        cells = [f"{row[c]['evidence_hit_at_5']:.3f} / {row[c]['answer_recall_at_5']:.3f}" if c in row else "-"
                 for c in ["all", *categories]]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localmem.bench.memory_quality",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"the first {QUICK_TURNS} turns of each conversation")
    parser.add_argument("--infer-conversations", type=int, default=0,
                        help="conversations for the infer=True comparison (0: skip it)")
    parser.add_argument("--infer-turns", type=int, default=QUICK_TURNS, help="turns of each for infer=True")
    parser.add_argument("--infer-only", action="store_true", help="only the infer=True comparison")
    parser.add_argument("--out", type=Path, help="results folder (default benchmarks/results/memory_quality)")
    parser.add_argument("--data", type=Path, help="benchmark data folder (default $LOCALMEM_BENCH_DATA)")
    # torch: the fp32 vectors every committed figure was measured with (the fp32 ONNX export gives the
    # same figures); onnx-int8: the opt-in CPU path, measured end to end (#13's int8 decision).
    parser.add_argument("--backend", choices=BACKENDS, default="torch", help="embedder path (default torch)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
                        help="compare two result JSON files question by question, and exit")
    args = parser.parse_args(argv)
    if args.compare:
        print("\n".join(compare(*(json.loads(path.read_text()) for path in args.compare))))
        return 0
    data.use_root(args.data)
    command = " ".join(["python -m localmem.bench.memory_quality", *(argv if argv is not None else sys.argv[1:])])
    with tempfile.TemporaryDirectory(prefix="localmem-quality-", ignore_cleanup_errors=True) as tmp:
        results = run(quick=args.quick, infer_conversations=args.infer_conversations, infer_turns=args.infer_turns,
                      workdir=Path(tmp), infer_only=args.infer_only, backend=args.backend)
    results = {"mode": "quick" if args.quick else "full", "command": command, **results}
    stem = ("infer_" if args.infer_only else "") + ("quick" if args.quick else "full")
    publish(folder("memory_quality", args.out), stem, results, render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
