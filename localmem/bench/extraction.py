"""Fact extraction quality and add(infer=True) latency on LoCoMo, with the default local models.

Each LoCoMo turn is added as one user message (``Memory.add(..., infer=True)``)
in a scope per conversation and speaker. The facts the model extracted are
compared with the turn's reference ``observation`` facts (written by a large
LLM): a reference is recalled when some extracted fact of the same turn has
cosine >= 0.7 to it under the default embedder; precision is the share of
extracted facts that match some reference of their turn. Turns with no
reference count for precision only.

The references name their subject ("Caroline attended ..."), while localmem's
facts have none ("Attended ...", the scope says whose they are). The headline
figures compare ``"<speaker> <fact>"``; the raw comparison is reported too.

Run: ``python -m localmem.bench.extraction [--quick]``. Data stay in the shared
folder (localmem.bench.datasets.data_root); nothing is copied.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from localmem import Memory, MemoryConfig
from localmem.bench.data import locomo_path
from localmem.config import VectorStoreConfig
from localmem.embedders.sentence_transformers import SentenceTransformerEmbedder
from localmem.extractors.llama_cpp import LlamaCppModel, Stats
from localmem.protocols import Candidate
from localmem.records import Decision, Fact, Message

MATCH_THRESHOLD = 0.7
QUICK_TURNS = 30


@dataclass(frozen=True)
class Turn:
    scope: str
    speaker: str
    text: str
    references: tuple[str, ...]


@dataclass
class Recording:
    """Wraps the real model to keep what extract_facts returned for each add()."""

    model: LlamaCppModel
    facts: list[list[Fact]] = field(default_factory=list)

    def extract_facts(self, messages: Sequence[Message], custom_prompt: str | None = None) -> list[Fact]:
        out = self.model.extract_facts(messages, custom_prompt)
        self.facts.append(out)
        return out

    def reconcile(self, fact: Fact, candidates: Sequence[Candidate], custom_prompt: str | None = None) -> Decision:
        return self.model.reconcile(fact, candidates, custom_prompt)

    def close(self) -> None:
        self.model.close()


def load_turns(conversations: int | None, turns: int | None, seed: int) -> list[Turn]:
    """Turns of the first ``conversations`` LoCoMo samples; a seeded sample of ``turns`` of them."""
    samples = json.loads(locomo_path().read_text())
    out: list[Turn] = []
    for sample in samples[:conversations]:
        refs: dict[str, list[str]] = {}
        for session in sample["observation"].values():
            for facts in session.values():
                for fact, dia_id in facts:
                    for one in re.split(r"[;,]\s*", str(dia_id)):  # a few cite two turns
                        refs.setdefault(one.strip(), []).append(str(fact))
        conversation = sample["conversation"]
        sessions = sorted((k for k, v in conversation.items() if re.fullmatch(r"session_\d+", k)
                           and isinstance(v, list)), key=lambda k: int(k.split("_")[1]))
        for key in sessions:
            for turn in conversation[key]:
                out.append(Turn(scope=f"{sample['sample_id']}-{turn['speaker']}", speaker=str(turn["speaker"]),
                                text=str(turn["text"]), references=tuple(refs.get(str(turn["dia_id"]), []))))
    if turns is not None and turns < len(out):
        rng = random.Random(seed)
        # Half the sample from turns with references, so recall has something to count.
        with_refs = [t for t in out if t.references]
        chosen = rng.sample(with_refs, min(len(with_refs), turns // 2))
        rest = [t for t in out if t not in chosen]
        chosen += rng.sample(rest, turns - len(chosen))
        out = chosen
    return out


def _with_subject(speaker: str, fact: str) -> str:
    return f"{speaker} {fact[:1].lower()}{fact[1:]}"


def _scores(embedder: SentenceTransformerEmbedder, turns: Sequence[Turn], facts: Sequence[Sequence[str]],
            subject: bool) -> tuple[float, float]:
    matched_refs = total_refs = matched_facts = total_facts = 0
    for turn, extracted in zip(turns, facts, strict=True):
        texts = [_with_subject(turn.speaker, f) if subject else f for f in extracted]
        total_refs += len(turn.references)
        total_facts += len(texts)
        if not texts or not turn.references:
            continue
        sims = embedder.embed(texts) @ embedder.embed(list(turn.references)).T
        matched_facts += int((sims.max(axis=1) >= MATCH_THRESHOLD).sum())
        matched_refs += int((sims.max(axis=0) >= MATCH_THRESHOLD).sum())
    recall = matched_refs / total_refs if total_refs else float("nan")
    precision = matched_facts / total_facts if total_facts else float("nan")
    return recall, precision


def measure_extraction(*, conversations: int | None, seed: int = 0, turns: int | None = None) -> dict[str, Any]:
    """Recall/precision of extracted facts against LoCoMo observations, and add(infer=True) latency."""
    sample = load_turns(conversations, turns, seed)
    embedder = SentenceTransformerEmbedder()
    model = LlamaCppModel()
    recording = Recording(model)
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        config = MemoryConfig(vector_store=VectorStoreConfig(uri=str(Path(tmp) / "bench.db")))
        with Memory(config, embedder=embedder, llm=recording) as memory:
            memory.add("Warm-up.", user_id="warmup")  # loads the model: not part of any add's latency
            recording.facts.clear()
            model.stats = Stats()
            for turn in sample:
                started = time.perf_counter()
                memory.add(turn.text, user_id=turn.scope)
                latencies.append(time.perf_counter() - started)
    extracted = [[f.text for f in facts] for facts in recording.facts]
    recall, precision = _scores(embedder, sample, extracted, subject=True)
    raw_recall, raw_precision = _scores(embedder, sample, extracted, subject=False)
    embedder.close()
    ms = sorted(x * 1000 for x in latencies)
    return {
        "model": str(model.config.model_path or "gemma-3-270m-q4_k_m (bundled default)"),
        "device": "cpu",
        "turns": len(sample),
        "reference_facts": sum(len(t.references) for t in sample),
        "extracted_facts": sum(len(f) for f in extracted),
        "match_threshold": MATCH_THRESHOLD,
        "recall": recall,
        "precision": precision,
        "recall_without_subject": raw_recall,
        "precision_without_subject": raw_precision,
        "add_latency_ms": {"median": statistics.median(ms), "p95": float(np.percentile(ms, 95)),
                           "max": ms[-1]},
        "llm_calls": model.stats.calls,
        "generation_tokens_per_s": model.stats.tokens_per_second,
        "examples": [{"turn": t.text, "facts": f, "references": list(t.references)}
                     for t, f in list(zip(sample, extracted, strict=True))[:5]],
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help=f"a seeded sample of {QUICK_TURNS} turns")
    parser.add_argument("--conversations", type=int, default=None, help="first N conversations (default all)")
    parser.add_argument("--turns", type=int, default=None, help="a seeded sample of N turns")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    turns = QUICK_TURNS if args.quick and args.turns is None else args.turns
    conversations = 1 if args.quick and args.conversations is None else args.conversations
    print(json.dumps(measure_extraction(conversations=conversations, seed=args.seed, turns=turns), indent=2))


if __name__ == "__main__":
    main()
