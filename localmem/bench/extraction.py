"""Fact extraction quality and speed on LoCoMo, with the default local model.

The first turns of each dev conversation are read as a chatbot logs them
(``Message("user", "Speaker: text")``, the session's time per turn), in two ways:

* ``batch``: ``extract_batch`` over each conversation's turns at once (what
  adding a conversation in one call does; a model without it reads one
  message a call); time per turn is the batch's wall time divided by its turns;
* ``single``: ``extract_facts`` on one message per call (add() of one message);
  p50 of the per-call time.

The facts are compared with the turns' reference ``observation`` facts
(written by a large LLM): a reference is recalled when some fact extracted from
its turn has cosine >= 0.7 to it under the default embedder; precision is the
share of extracted facts matching some reference of their turn. Facts name
their speaker, as the references do; the date in words the extractor appends
("(8 May 2023)") is left out of the comparison, since the references carry
none. A fact with no subject is compared as "<speaker> <fact>".

Run: ``python -m localmem.bench.extraction [--quick] [--turns-per-conversation N]
[--facts-out FILE]``. Data stay in the shared folder (localmem.bench.datasets.data_root).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from localmem.bench.data import locomo_path
from localmem.embedders.sentence_transformers import SentenceTransformerEmbedder
from localmem.extractors.gates import GATES
from localmem.extractors.llama_cpp import LlamaCppModel, Stats
from localmem.protocols import LanguageModel
from localmem.records import Fact, Message
from localmem.temporal import parse_locomo_datetime

MATCH_THRESHOLD = 0.7
QUICK_TURNS_PER_CONVERSATION = 5
_ADDED_DATE = re.compile(r" \(\d{1,2} [A-Z][a-z]+ \d{4}\)$")


@dataclass(frozen=True)
class Turn:
    conversation: str
    dia_id: str
    speaker: str
    text: str
    time: datetime
    references: tuple[str, ...]

    def message(self) -> Message:
        return Message("user", f"{self.speaker}: {self.text}")


def load_turns(turns_per_conversation: int, conversations: int | None = None) -> list[Turn]:
    """The first ``turns_per_conversation`` turns of each dev conversation, in order, with their references."""
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
        taken: list[Turn] = []
        for key in sessions:
            when = parse_locomo_datetime(conversation[f"{key}_date_time"])
            for turn in conversation[key]:
                taken.append(Turn(str(sample["sample_id"]), str(turn["dia_id"]), str(turn["speaker"]),
                                  str(turn["text"]), when, tuple(refs.get(str(turn["dia_id"]), []))))
        out += taken[:turns_per_conversation]
    return out


def comparable(fact: str, speaker: str) -> str:
    """The fact as compared with a reference: our appended date dropped, the speaker as subject if absent."""
    text = _ADDED_DATE.sub("", fact)
    return text if speaker.lower() in text.lower() else f"{speaker} {text[:1].lower()}{text[1:]}"


def score(embedder: SentenceTransformerEmbedder, turns: Sequence[Turn],
          facts: Sequence[Sequence[str]]) -> tuple[float, float]:
    matched_refs = total_refs = matched_facts = total_facts = 0
    for turn, extracted in zip(turns, facts, strict=True):
        texts = [comparable(f, turn.speaker) for f in extracted]
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


@runtime_checkable
class BatchExtractor(Protocol):
    """A model that reads a conversation's turns together (LlamaCppModel); not required of a LanguageModel."""

    def extract_batch(self, messages: Sequence[Message], custom_prompt: str | None = None, *,
                      times: Sequence[datetime | None] | None = None) -> list[Fact]: ...


def read_turns(model: LanguageModel, messages: Sequence[Message], times: Sequence[datetime]) -> list[Fact]:
    """The facts of ``messages``, each naming its message's index in ``sources``: in one batch when the
    model has ``extract_batch``, else one ``extract_facts`` call a message (undated: it takes no time)."""
    if isinstance(model, BatchExtractor):
        return model.extract_batch(messages, times=times)
    return [replace(f, sources=(i,)) for i, m in enumerate(messages) for f in model.extract_facts([m])]


def run_batch(model: LanguageModel, turns: Sequence[Turn]) -> tuple[list[list[Fact]], float]:
    """Facts per turn (by their source index) and seconds per turn, one extract_batch per conversation."""
    per_turn: list[list[Fact]] = [[] for _ in turns]
    seconds = 0.0
    for name in dict.fromkeys(t.conversation for t in turns):
        indices = [i for i, t in enumerate(turns) if t.conversation == name]
        started = time.perf_counter()
        facts = read_turns(model, [turns[i].message() for i in indices], [turns[i].time for i in indices])
        seconds += time.perf_counter() - started
        for fact in facts:
            for source in fact.sources:
                per_turn[indices[source]].append(fact)
    return per_turn, seconds / len(turns)


def run_single(model: LanguageModel, turns: Sequence[Turn]) -> tuple[list[list[Fact]], list[float]]:
    per_turn: list[list[Fact]] = []
    latencies: list[float] = []
    for turn in turns:
        started = time.perf_counter()
        per_turn.append(read_turns(model, [turn.message()], [turn.time]))
        latencies.append(time.perf_counter() - started)
    return per_turn, latencies


def measure_extraction(turns_per_conversation: int, single_turns: int, conversations: int | None = None,
                       facts_out: str | None = None) -> dict[str, Any]:
    turns = load_turns(turns_per_conversation, conversations)
    embedder = SentenceTransformerEmbedder()
    model = LlamaCppModel()
    model.extract_facts([Message("user", "Warm-up: I like tea.")])  # loads the model: not timed
    model.stats, model.gates.proposed, model.gates.kept = Stats(), 0, 0
    model.gates.rejected = dict.fromkeys(GATES, 0)
    batch_facts, per_turn_s = run_batch(model, turns)
    texts = [[f.text for f in facts] for facts in batch_facts]
    recall, precision = score(embedder, turns, texts)
    gates = model.gates
    result: dict[str, Any] = {
        "model": str(model.config.model_path or "gemma-3-270m-q4_k_m (bundled default)"),
        "turns": len(turns),
        "conversations": len({t.conversation for t in turns}),
        "reference_facts": sum(len(t.references) for t in turns),
        "match_threshold": MATCH_THRESHOLD,
        "batch": {
            "extracted_facts": sum(len(f) for f in texts),
            "recall": recall, "precision": precision,
            "seconds_per_turn": per_turn_s,
            "llm_prompts": model.stats.calls,
            "completion_tokens": model.stats.completion_tokens,
            "facts_naming_their_speaker": sum(t.speaker in f for t, fs in zip(turns, texts, strict=True)
                                              for f in fs),
        },
        "gates": {"proposed": gates.proposed, "kept": gates.kept,
                  "rejected_share": {g: gates.share(g) for g in GATES}},
    }
    if single_turns:
        chosen = turns[:single_turns]
        single_facts, latencies = run_single(model, chosen)
        s_recall, s_precision = score(embedder, chosen, [[f.text for f in fs] for fs in single_facts])
        result["single"] = {"turns": len(chosen), "p50_s": statistics.median(latencies), "max_s": max(latencies),
                            "recall": s_recall, "precision": s_precision}
    if facts_out:
        with open(facts_out, "w", encoding="utf-8") as fh:
            for turn, facts in zip(turns, batch_facts, strict=True):
                fh.write(json.dumps({"dia_id": f"{turn.conversation}:{turn.dia_id}", "speaker": turn.speaker,
                                     "text": turn.text, "facts": [f.text for f in facts],
                                     "references": list(turn.references)}) + "\n")
    result["examples"] = [{"turn": f"{t.speaker}: {t.text}", "facts": f, "references": list(t.references)}
                          for t, f in list(zip(turns, texts, strict=True))[:5]]
    embedder.close()
    model.close()
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_TURNS_PER_CONVERSATION} turns of each conversation")
    parser.add_argument("--turns-per-conversation", type=int, default=34, help="first N turns of each (34: ~200)")
    parser.add_argument("--conversations", type=int, default=None, help="first N conversations (default all six)")
    parser.add_argument("--single-turns", type=int, default=20, help="turns also read one message per call")
    parser.add_argument("--facts-out", default=None, help="write every turn's facts here (JSON lines)")
    args = parser.parse_args(argv)
    per = QUICK_TURNS_PER_CONVERSATION if args.quick else args.turns_per_conversation
    print(json.dumps(measure_extraction(per, 3 if args.quick else args.single_turns, args.conversations,
                                        args.facts_out), indent=2))


if __name__ == "__main__":
    main()
