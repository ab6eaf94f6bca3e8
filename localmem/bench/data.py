"""Loaders for the benchmark data and the deterministic corpus expansion.

The data sets are third-party and stay in the data folder (datasets.data_root: ``--data DIR``,
``$LOCALMEM_BENCH_DATA`` or the cache that ``localmem bench data fetch`` fills); this module only
reads them and never downloads. With LoCoMo and MemoryBank absent, the latency corpus and the
ingestion texts come from synthetic.py instead, and ``corpus_source()`` says so.

Corpus expansion (for latency runs larger than the real text we have): the base is every
LoCoMo turn ("Speaker: text") and every MemoryBank utterance, shuffled with the run's
seed. Past the base, each extra text joins two sentences drawn (seeded RNG) from different
base texts, skipping repeats, so the vectors look like real conversational text rather
than random noise. Corpus(N) is always the first N texts of one sequence, so runs of
different sizes share a prefix (and its cached embeddings).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from localmem.bench import datasets, synthetic

QA_CATEGORIES = (1, 2, 3, 4)  # 5 (adversarial) has no answer and no evidence to retrieve
N_USERS = 100  # user_id-like field of the latency corpus: a filter keeps about 1% of rows
SYNTHETIC_BASE = 5_000  # generated texts standing in for the real base when LoCoMo/MemoryBank are absent

_EVIDENCE = re.compile(r"D\s*:?\s*(\d+)\s*:\s*(\d+)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_root: Path | None = None  # --data DIR of this run


def use_root(path: Path | None) -> None:
    """Read the data sets from ``path`` (``--data``); None: $LOCALMEM_BENCH_DATA, else the cache."""
    global _root
    _root = path
    _locomo.cache_clear()


def data_dir() -> Path:
    return datasets.data_root(_root)


def has(*names: str) -> bool:
    """Whether every named data set (datasets.MANIFEST) is present in the data folder."""
    return not datasets.missing(names, data_dir())


def locomo_path() -> Path:
    """The official 10-conversation file when fetched, else the 6-conversation dev copy."""
    folder = data_dir() / "locomo"
    official = folder / "locomo10.json"
    return official if official.is_file() else folder / "locomo_dev.json"


# -- LoCoMo ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Turn:
    conversation: str
    dia_id: str
    text: str  # "Speaker: text", the form stored as a memory


@dataclass(frozen=True)
class Question:
    conversation: str
    text: str
    category: int
    evidence: frozenset[str]


def normalise_evidence(raw: list[str]) -> frozenset[str]:
    """``"D8:6; D9:17"`` -> {D8:6, D9:17}; ``"D:11:26"`` -> {D11:26}; junk like ``"D"`` dropped."""
    return frozenset(f"D{s}:{t}" for item in raw for s, t in _EVIDENCE.findall(item))


@cache
def _locomo() -> list[dict[str, object]]:
    data: list[dict[str, object]] = json.loads(locomo_path().read_text())
    return data


def locomo_turns() -> list[Turn]:
    turns = []
    for sample in _locomo():
        conv = str(sample["sample_id"])
        conversation = sample["conversation"]
        assert isinstance(conversation, dict)
        # Iterate over session lists, not date keys: conv-26 has dates with no session behind them.
        sessions = sorted((k for k, v in conversation.items() if re.fullmatch(r"session_\d+", k)
                           and isinstance(v, list)), key=lambda k: int(k.split("_")[1]))
        for key in sessions:
            for turn in conversation[key]:
                turns.append(Turn(conv, str(turn["dia_id"]), f"{turn['speaker']}: {turn['text']}"))
    return turns


def locomo_questions() -> list[Question]:
    out = []
    for sample in _locomo():
        qa = sample["qa"]
        assert isinstance(qa, list)
        for q in qa:
            evidence = normalise_evidence(q.get("evidence", []))
            if q["category"] in QA_CATEGORIES and evidence:
                out.append(Question(str(sample["sample_id"]), str(q["question"]), int(q["category"]), evidence))
    return out


# -- MemoryBank ------------------------------------------------------------------------
def memorybank_texts() -> list[str]:
    raw = json.loads((data_dir() / "memorybank" / "memorybank_memory_bank_en.json").read_text())
    out = []
    for user in raw.values():
        for day in sorted(user["history"]):
            for pair in user["history"][day]:
                out += [t for t in (pair.get("query"), pair.get("response")) if isinstance(t, str) and t.strip()]
    return out


def memorybank_questions() -> list[str]:
    lines = (data_dir() / "memorybank" / "memorybank_probing_questions_en.jsonl").read_text().splitlines()
    return [q for line in lines if line.strip() for qs in json.loads(line).values() for q in qs]


# -- SciFact ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SciFact:
    doc_ids: list[str]
    docs: list[str]  # "title text", the BEIR convention
    query_ids: list[str]
    queries: list[str]
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: grade}


def scifact(max_queries: int | None = None, max_docs: int | None = None, seed: int = 0,
            splits: tuple[str, ...] = ("test",)) -> SciFact:
    """The test split (the published figures), or ``splits`` together (train adds 809 claims to the 300:
    a paired comparison of two embedders needs the queries more than the convention). ``max_docs`` keeps
    every relevant doc plus a seeded sample (quick runs)."""
    root = data_dir() / "scifact"
    qrels: dict[str, dict[str, int]] = {}
    for split in splits:
        for line in (root / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]:
            qid, did, grade = line.split("\t")
            qrels.setdefault(qid, {})[did] = int(grade)
    queries = {r["_id"]: r["text"] for r in map(json.loads, (root / "queries.jsonl").read_text().splitlines())}
    qids = sorted(qrels, key=int)
    if max_queries is not None:
        qids = sorted(random.Random(seed).sample(qids, min(max_queries, len(qids))), key=int)
    corpus = [json.loads(line) for line in (root / "corpus.jsonl").read_text().splitlines() if line.strip()]
    if max_docs is not None and max_docs < len(corpus):
        needed = {d for q in qids for d in qrels[q]}
        rest = [c for c in corpus if c["_id"] not in needed]
        keep = needed | {c["_id"] for c in random.Random(seed).sample(rest, max(0, max_docs - len(needed)))}
        corpus = [c for c in corpus if c["_id"] in keep]
    return SciFact(doc_ids=[c["_id"] for c in corpus], docs=[f"{c['title']} {c['text']}".strip() for c in corpus],
                   query_ids=qids, queries=[queries[q] for q in qids], qrels={q: qrels[q] for q in qids})


# -- the latency corpus ----------------------------------------------------------------
def corpus_source() -> str:
    return "locomo+memorybank" if has("locomo", "memorybank") else "generated"


def base_texts() -> list[str]:
    if corpus_source() == "generated":
        return synthetic.texts(SYNTHETIC_BASE, seed=0)
    return [t.text for t in locomo_turns()] + memorybank_texts()


def ingest_texts() -> list[str]:
    """Texts for the ingestion rates: LoCoMo turns, else generated facts."""
    if has("locomo"):
        return list(dict.fromkeys(t.text for t in locomo_turns()))
    return synthetic.texts(SYNTHETIC_BASE, seed=0)


def _expanded(seed: int) -> Iterator[str]:
    rng = random.Random(seed)
    base = list(dict.fromkeys(base_texts()))  # de-duplicated, order kept
    rng.shuffle(base)
    yield from base
    sentences = [[s for s in _SENTENCE_END.split(t) if len(s) > 3] for t in base]
    sentences = [s for s in sentences if s]
    seen = set(base)
    while True:
        a, b = rng.sample(range(len(sentences)), 2)
        text = f"{rng.choice(sentences[a])} {rng.choice(sentences[b])}"
        if text not in seen:
            seen.add(text)
            yield text


def latency_corpus(n: int, seed: int) -> tuple[list[str], list[str]]:
    """The first ``n`` texts of the expanded sequence and a user id for each (seeded, N_USERS values)."""
    texts: list[str] = []
    for text in _expanded(seed):
        if len(texts) == n:
            break
        texts.append(text)
    rng = random.Random(seed + 1)
    users = [f"user_{rng.randrange(N_USERS):03d}" for _ in range(n)]
    return texts, users


def latency_queries(n: int, seed: int) -> list[str]:
    """Real questions: MemoryBank probing questions and LoCoMo questions, seeded sample (else generated)."""
    if corpus_source() == "generated":
        return synthetic.questions(n, seed)
    pool = list(dict.fromkeys(memorybank_questions() + [q.text for q in locomo_questions()]))
    return random.Random(seed).sample(pool, min(n, len(pool)))


def texts_hash(texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()
