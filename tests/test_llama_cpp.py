"""The llama.cpp language model: prompts, grammars, parsing, guards, file checks, the real model.

Parsing, windowing and the reconciliation guards run against a tiny fake
backend (what the model "said" is scripted); the tests marked slow load the
bundled Gemma 3 270M and check what it actually produces.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from localmem import ChecksumError, ExtractionError, InvalidInputError, ModelError, PromptTooLongError
from localmem.config import LlmConfig
from localmem.extractors import parallel, prompting, rules
from localmem.extractors.gates import grounded
from localmem.extractors.llama_cpp import Completion, LlamaCppModel, check_gguf, model_file
from localmem.extractors.prompting import Grammar
from localmem.models import MODELS_DIR_ENV, default_model, resolve_model
from localmem.protocols import Candidate
from localmem.records import Decision, Event, Fact, Message

from .conftest import MemoryFactory, plain
from .llm_contract import assert_fact_texts_honour_the_contract, is_grounded

DATA_FILES = ("extract.txt", "extract_input.txt", "extract.gbnf", "reconcile.txt", "reconcile_input.txt",
              "reconcile.gbnf")


class FakeBackend:
    """Counts one token per word and answers with scripted outputs, recording every prompt."""

    def __init__(self, outputs: list[str], n_ctx: int = 4096) -> None:
        self.outputs = list(outputs)
        self.prompts: list[str] = []
        self.grammars: list[Grammar] = []
        self.batches: list[int] = []  # sizes of complete_many calls
        self._n_ctx = n_ctx
        self.closed = False

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 1

    def complete(self, prompt: str, grammar: Grammar, max_tokens: int) -> Completion:
        self.prompts.append(prompt)
        self.grammars.append(grammar)
        return Completion(self.outputs.pop(0), self.count_tokens(prompt), 5, 0.1)

    def complete_many(self, prompts: Sequence[str], grammar: Grammar, max_tokens: int, *,
                      on_done: Callable[[int], object] | None = None) -> list[Completion]:
        self.batches.append(len(prompts))
        return [self.complete(p, grammar, max_tokens) for p in prompts]

    def close(self) -> None:
        self.closed = True


def _model(outputs: list[str], n_ctx: int = 4096, max_tokens: int = 64) -> tuple[LlamaCppModel, FakeBackend]:
    backend = FakeBackend(outputs, n_ctx)
    return LlamaCppModel(LlmConfig(n_ctx=n_ctx, max_tokens=max_tokens), backend=backend), backend


def _candidates(*texts: str) -> list[Candidate]:
    return [Candidate(i, t) for i, t in enumerate(texts)]


# -- data files ----------------------------------------------------------------------
def test_prompt_and_grammar_files_ship_inside_the_package() -> None:
    folder = resources.files("localmem.extractors").joinpath("prompts")
    for name in DATA_FILES:
        assert folder.joinpath(name).is_file(), name
        assert prompting.load_text(name).strip()
    assert "{conversation}" in prompting.load_text("extract_input.txt")
    assert "{memories}" in prompting.load_text("reconcile_input.txt")


def test_reconcile_grammar_lists_only_the_keys_shown() -> None:
    grammar = prompting.reconcile_grammar(_candidates("a", "b", "c"))
    assert grammar.text.rstrip().endswith('key ::= "0" | "1" | "2"')


# -- parsing -------------------------------------------------------------------------
def test_lines_without_a_speaker_become_subjectless_memories() -> None:
    output = ("- I am working on improving my tennis skills\n- I have a midterm exam on November 20\n"
              "- I love hiking\n- I really enjoy cooking\n- I went to Rome\n- My sister Anna lives in Lisbon\n\n")
    assert [prompting.to_memory_style(line) for line in prompting.parse_lines(output)] == [
        "Working on improving tennis skills", "Has a midterm exam on November 20", "Loves hiking",
        "Really enjoys cooking", "Went to Rome", "Sister Anna lives in Lisbon"]


def test_subjectless_style_keeps_one_word_attributes_and_the_is_of_an_age() -> None:
    # Without "is", "I am vegetarian" became the one-word "Vegetarian" and was dropped as too short.
    assert [prompting.to_memory_style(line) for line in ("I am vegetarian", "I'm married", "I am 30 years old")] == [
        "Is vegetarian", "Is married", "Is 30 years old"]


def test_parse_lines_accepts_none_and_rejects_other_shapes() -> None:
    assert prompting.parse_lines("- none\n\n") == []
    for bad in ("", "Sure! Here are the facts: tennis", "- Likes tennis\nand more"):
        with pytest.raises(ExtractionError):
            prompting.parse_lines(bad)


def test_lines_not_grounded_in_the_conversation_are_found() -> None:
    output = "- I have been very busy\n- I have a cat named Miso\n- I adopted a puppy named Biscuit\n\n"
    source = "user: How have you been? We adopted a puppy named Biscuit!\n"
    assert [line for line in prompting.parse_lines(output) if grounded(line, source)] == [
        "I adopted a puppy named Biscuit"]


def test_parse_decision_shapes_and_failures() -> None:
    shown = _candidates("Likes pizza", "Lives in Paris")
    assert prompting.parse_decision(" ADD\n", shown) == Decision(Event.ADD, "")
    assert prompting.parse_decision(" NONE 1\n", shown) == Decision(Event.NONE, "", target_id="1")
    assert prompting.parse_decision(" UPDATE 0: Loves pizza\n", shown) == Decision(Event.UPDATE, "Loves pizza", "0")
    for bad in (" UPDATE 0\n", " DELETE 7\n", " maybe\n", ""):
        with pytest.raises(ExtractionError):
            prompting.parse_decision(bad, shown)


def test_unusable_model_output_raises_extraction_error() -> None:
    model, _ = _model(["I think the user likes tennis"])
    with pytest.raises(ExtractionError, match="not a list of facts"):
        model.extract_facts([Message("user", "I like tennis")])


def test_store_raw_fallback_keeps_the_message_flagged(make_memory: MemoryFactory, hashing_embedder) -> None:
    model, _ = _model(["garbage"])
    memory = make_memory(hashing_embedder, model, on_extraction_failure="store_raw")
    (item,) = memory.add("I moved to Lisbon", user_id="u")["results"]
    assert item["flags"] == ["unprocessed_raw_message"] and plain(item["memory"]) == "I moved to Lisbon"
    assert memory.get(item["id"])["metadata"]["localmem_flags"] == ["unprocessed_raw_message"]


def test_unusable_reconcile_answer_adds_the_fact_flagged_under_store_raw(make_memory: MemoryFactory,
                                                                        hashing_embedder) -> None:
    model, _ = _model(["- I like pizza with olives\n\n", "- I like pizza with olives and capers\n\n", "???"])
    memory = make_memory(hashing_embedder, model, on_extraction_failure="store_raw")
    memory.add("I like pizza with olives", user_id="u")
    (item,) = memory.add("I like pizza with olives and capers", user_id="u")["results"]
    assert item["event"] == "ADD" and item["flags"] == ["unreconciled"]


# -- batches: whose, when, gates --------------------------------------------------------
CONVERSATION = [Message("user", "Deborah: My mother passed away a few years ago. I have a dog named Max."),
                Message("user", "Jolene: I'm so sorry! I went hiking with your brother yesterday."),
                Message("user", "Deborah: Yes, I did"),
                Message("user", "Jolene: Does it bite?")]
CONVERSATION_ANSWERS = ["- My mother passed away a few years ago\n- I have a dog named Max\n\n",
                        "- I went hiking with your brother yesterday\n- It was so much fun\n\n",
                        "- Deborah: Yes, I did\n\n",
                        "- Does it\n\n"]


def test_a_conversation_is_read_in_one_batch_each_fact_naming_its_speaker_and_message() -> None:
    model, backend = _model(list(CONVERSATION_ANSWERS))
    facts = model.extract_batch(CONVERSATION)
    assert backend.batches == [4]  # every turn's prompt handed to the backend at once
    assert [(f.text, f.sources, f.speaker) for f in facts] == [
        ("Deborah's mother passed away a few years ago", (0,), "Deborah"),
        ("Deborah has a dog named Max", (0,), "Deborah"),
        ("Jolene went hiking with Deborah's brother yesterday", (1,), "Jolene"),
    ]
    # the model sees each turn as the user's words, without the name it would copy
    assert backend.prompts[0].endswith("user: My mother passed away a few years ago. I have a dog named Max.\nFacts:\n")
    assert model.gates.proposed == 6 and model.gates.kept == 3


def test_gate_counts_name_the_gate_that_rejected() -> None:
    model, _ = _model(list(CONVERSATION_ANSWERS))
    model.extract_batch(CONVERSATION)
    # "It was so much fun": not in the source's words -> ungrounded; "Deborah: Yes, I did": copy;
    # "Does it": fragment (a question with a dangling "it")
    assert model.gates.rejected == {"ungrounded": 1, "contradicts": 0, "copy": 1, "asked": 0, "fragment": 1, "owner": 0}


def test_the_name_field_names_the_speaker_and_you_becomes_the_other_speaker() -> None:
    model, _ = _model(["- I love your paintings\n\n", "- I have a cat\n\n"])
    facts = model.extract_batch([Message("user", "I love your paintings!", name="Ana"),
                                 Message("assistant", "Thanks! I have a cat.", name="Ben")])
    assert [(f.text, f.sources) for f in facts] == [("Ana loves Ben's paintings", (0,)), ("Ben has a cat", (1,))]


def test_times_resolve_relative_dates_and_date_every_fact() -> None:
    model, _ = _model(list(CONVERSATION_ANSWERS[:2]))
    said = datetime(2023, 5, 8, 13, 56, tzinfo=timezone.utc)
    facts = model.extract_batch(CONVERSATION[:2], times=[said, said])
    by_text = {f.text: f for f in facts}
    hiking = by_text["Jolene went hiking with Deborah's brother yesterday (7 May 2023)"]
    assert hiking.when == datetime(2023, 5, 7, 13, 56, tzinfo=timezone.utc)
    assert by_text["Deborah has a dog named Max (8 May 2023)"].when == said  # no relative date: the message's


def test_the_same_fact_from_two_messages_lists_both() -> None:
    model, _ = _model(["- I have a dog named Max\n\n", "- I have a dog named Max\n\n"])
    facts = model.extract_batch([Message("user", "Deborah: I have a dog named Max."),
                                 Message("user", "Deborah: Like I said, I have a dog named Max.")])
    assert [(f.text, f.sources) for f in facts] == [("Deborah has a dog named Max", (0, 1))]


def test_several_conversations_are_read_in_one_batch_each_with_its_own_speakers_and_positions() -> None:
    model, backend = _model([*CONVERSATION_ANSWERS[:2], "- I have a cat\n\n"])
    first, second = model.extract_many([CONVERSATION[:2], [Message("user", "Ben: I have a cat.")]])
    assert backend.batches == [3]  # the turns of both in one batch
    assert [(f.text, f.sources) for f in first] == [
        ("Deborah's mother passed away a few years ago", (0,)), ("Deborah has a dog named Max", (0,)),
        ("Jolene went hiking with Deborah's brother yesterday", (1,))]
    assert [(f.text, f.sources, f.speaker) for f in second] == [("Ben has a cat", (0,), "Ben")]
    assert model.extract_many([]) == []


def test_times_must_match_the_messages() -> None:
    model, backend = _model([])
    with pytest.raises(InvalidInputError, match="times has 1 entries for 2 messages"):
        model.extract_batch(CONVERSATION[:2], times=[None])
    assert backend.prompts == []


def test_without_a_speaker_facts_stay_subjectless_and_undated() -> None:
    model, _ = _model(["- I love hiking\n\n"])
    assert model.extract_facts([Message("user", "I love hiking")]) == [Fact("Loves hiking", sources=(0,))]


# -- windows and sizes ---------------------------------------------------------------
def test_long_conversation_is_read_in_windows_that_fit() -> None:
    messages = [Message("user" if i % 2 else "assistant", f"I visited city number {i} " + "and it was lovely " * 10)
                for i in range(40)]
    model, backend = _model(["- none\n\n"] * 20, n_ctx=600, max_tokens=64)
    model.extract_facts(messages)
    assert len(backend.prompts) == 20  # one per user message
    assert all(backend.count_tokens(p) <= 600 - 64 for p in backend.prompts)
    seen = "".join(backend.prompts)
    assert all(f"city number {i} " in seen for i in range(40))  # assistant lines come along as context


def test_context_is_dropped_when_only_the_user_message_fits() -> None:
    messages = [Message("assistant", "word " * 300), Message("user", "I like tea")]
    model, backend = _model(["- I like tea\n\n"], n_ctx=600, max_tokens=64)
    assert model.extract_facts(messages) == [Fact("Likes tea", sources=(1,))]
    assert "word" not in backend.prompts[0].split("Conversation:")[-1]


def test_a_message_too_long_for_one_prompt_is_read_in_pieces_that_fit() -> None:
    sentences = [f"On day {i} I went hiking near the lake with my sister." for i in range(80)]
    model, backend = _model(["- none\n\n"] * 50, n_ctx=600, max_tokens=64)
    model.extract_facts([Message("user", " ".join(sentences))])
    assert len(backend.prompts) > 1
    assert all(backend.count_tokens(p) <= 600 - 64 for p in backend.prompts)
    seen = "".join(p.split("Conversation:")[-1] for p in backend.prompts)
    assert all(s in seen for s in sentences)  # every sentence read whole, none cut off


def test_a_message_that_cannot_be_split_to_fit_raises_prompt_too_long_naming_sizes() -> None:
    # Room for two tokens beside the instructions: even one word with its "user:" prefix is three.
    fixed = FakeBackend([]).count_tokens(prompting.extraction_prompt([], None))
    n_ctx = fixed + 64 + 8 + 2  # instructions + max_tokens + the model's safety margin + 2
    model, backend = _model([], n_ctx=n_ctx, max_tokens=64)
    with pytest.raises(PromptTooLongError, match=rf"message 0 is 52 tokens.*3-token piece.*n_ctx={n_ctx}"):
        model.extract_facts([Message("user", "word " * 50)])
    assert backend.prompts == []  # refused before any call


def test_a_custom_prompt_too_long_for_the_context_is_refused() -> None:
    model, _ = _model([], n_ctx=600, max_tokens=64)
    with pytest.raises(PromptTooLongError, match="instructions alone are"):
        model.extract_facts([Message("user", "I like tea")], custom_prompt="word " * 1000)
    with pytest.raises(PromptTooLongError, match="shorten the custom prompt"):
        model.reconcile(Fact("Likes green tea"), _candidates("Likes tea"), custom_prompt="word " * 1000)


def test_custom_prompt_replaces_the_instructions_but_keeps_the_input_block() -> None:
    model, backend = _model(["- I like tea\n\n"])
    assert model.extract_facts([Message("user", "I like tea")], custom_prompt="Note only drinks.") == [
        Fact("Likes tea", sources=(0,))]
    assert backend.prompts[0].startswith("Note only drinks.\n\nConversation:\nuser: I like tea\nFacts:\n")
    assert "guitar" not in backend.prompts[0]  # the default examples are gone


# -- reconciliation rules and guards ---------------------------------------------------
@pytest.mark.parametrize(("fact", "memory"), [
    ("Does not like pizza anymore", "Likes pizza"),
    ("Is no longer vegetarian", "Is vegetarian"),
    ("Moved to Berlin last month", "Lives in Paris"),
    ("Works at Microsoft now", "Works as a nurse at the city hospital"),
])
def test_contradictions_are_decided_by_rules(fact: str, memory: str) -> None:
    # The pipeline asks these before any model (tests/test_pipeline.py: without the model).
    assert rules.decide(Fact(fact), _candidates("Enjoys tennis", memory)) == Decision(Event.UPDATE, fact, "1")


def test_same_attribute_same_value_is_not_a_contradiction() -> None:
    assert rules.decide(Fact("Moved to Berlin"), _candidates("Lives in Berlin")) == Decision(
        Event.NONE, "Lives in Berlin", target_id="0")
    assert rules.slot_of("Likes to play tennis") is None


@pytest.mark.parametrize(("answer", "fact", "memory", "expected"), [
    # a different thing of the same kind is not an update
    (" UPDATE 0: Has a cat named Luna\n", "Has a cat named Luna", "Has a dog named Max", Decision(
        Event.ADD, "Has a cat named Luna")),
    # a refinement is
    (" UPDATE 0: Is learning Spanish on weekends\n", "Is learning Spanish on weekends", "Is learning Spanish",
     Decision(Event.UPDATE, "Is learning Spanish on weekends", "0")),
    # a value changed is; a word of the memory dropped is not (lossy "updates" seen on LoCoMo)
    (" UPDATE 0: Has a midterm exam on November 21\n", "Has a midterm exam on November 21",
     "Has a midterm exam on November 20", Decision(Event.UPDATE, "Has a midterm exam on November 21", "0")),
    (" UPDATE 0: Nate knows one recipe using coconut milk\n", "Nate knows one recipe using coconut milk",
     "Nate loves coconut milk", Decision(Event.ADD, "Nate knows one recipe using coconut milk")),
    (" UPDATE 0: John is really excited for the view\n", "John is really excited for the view",
     "John is excited for the season", Decision(Event.ADD, "John is really excited for the view")),
    (" UPDATE 0: Likes tea\n", "Likes tea", "May 2023", Decision(Event.ADD, "Likes tea")),
    # an invented merge falls back to the fact's own words
    (" UPDATE 0: Is learning Spanish in Madrid\n", "Is learning Spanish on weekends", "Is learning Spanish",
     Decision(Event.UPDATE, "Is learning Spanish on weekends", "0")),
    # "already known" only when the fact adds nothing
    (" NONE 0\n", "Drinks coffee every morning", "Drinks coffee", Decision(Event.ADD, "Drinks coffee every morning")),
    (" NONE 0\n", "Drinks coffee", "Drinks coffee every morning", Decision(Event.NONE, "", "0")),
    # DELETE needs a fact that says something ended, and keeps that fact
    (" DELETE 0\n", "Plays the violin", "Owns a bicycle", Decision(Event.ADD, "Plays the violin")),
    (" DELETE 0\n", "Sold the bicycle", "Owns a bicycle", Decision(Event.UPDATE, "Sold the bicycle", "0")),
])
def test_model_answers_are_checked_against_the_texts(answer: str, fact: str, memory: str,
                                                      expected: Decision) -> None:
    shown = _candidates(memory)
    assert rules.checked(prompting.parse_decision(answer, shown), Fact(fact), shown) == expected


@pytest.mark.parametrize(("fact", "memory", "asked"), [
    ("Has a cat named Luna", "Has a dog named Max", False),  # only a merge could be an update: not asked
    ("Plays the violin", "Owns a bicycle", False),
    ("Is learning Spanish on weekends", "Is learning Spanish", True),  # a refinement could be
    ("Drinks coffee", "Drinks coffee every morning", True),  # "already known" could be
    ("Sold the bicycle", "Owns a bicycle", True),  # "it ended" could be
])
def test_the_model_is_asked_only_where_its_answer_could_change_something(fact: str, memory: str,
                                                                        asked: bool) -> None:
    model, backend = _model([" UPDATE 0: " + fact + "\n"])
    decision = model.reconcile(Fact(fact), _candidates("Enjoys tennis", memory))
    assert len(backend.prompts) == int(asked)
    if not asked:
        assert decision == Decision(Event.ADD, fact)


def test_a_reconcile_answer_cut_at_max_tokens_adds_the_fact() -> None:
    """A looping answer decides nothing; the add() it belongs to goes on (it raised ExtractionError)."""
    backend = CuttingBackend([" UPDATE 0: Is learning Spanish on weekends on weekends on weekends on"])
    model = LlamaCppModel(LlmConfig(max_tokens=64), backend=backend)
    fact = "Is learning Spanish on weekends"
    assert model.reconcile(Fact(fact), _candidates("Is learning Spanish")) == Decision(Event.ADD, fact)
    assert len(backend.prompts) == 1 and model.stats.cut_answers == 1


def test_a_list_of_facts_cut_at_max_tokens_keeps_its_complete_lines() -> None:
    # It raised ExtractionError, refusing the whole add() under the default on_extraction_failure="raise".
    backend = CuttingBackend(["- I like green tea\n- I'm motivated by my family, my friends, my family, my",
                              "- I'm motivated by my family, my friends, my family, my friends, my"])
    model = LlamaCppModel(LlmConfig(max_tokens=64), backend=backend)
    facts = model.extract_batch([Message("user", "I like green tea. I'm motivated by my family and friends."),
                                 Message("user", "I'm motivated by my family and my friends.")])
    assert [f.text for f in facts] == ["Likes green tea"] and model.stats.cut_answers == 2


class CuttingBackend(FakeBackend):
    """Every answer reaches max_tokens before its grammar ends it."""

    def complete(self, prompt: str, grammar: Grammar, max_tokens: int) -> Completion:
        return replace(super().complete(prompt, grammar, max_tokens), cut=True)


# -- model files -----------------------------------------------------------------------
def test_missing_model_file_is_a_model_error_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"does not exist.*localmem models prepare"):
        LlamaCppModel(LlmConfig(model_path=str(tmp_path / "nope.gguf")))


def test_a_file_that_is_not_gguf_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"<html>404 not found</html>")
    with pytest.raises(ModelError, match="not a GGUF file"):
        LlamaCppModel(LlmConfig(model_path=str(bad)))


@pytest.mark.slow
def test_a_truncated_gguf_is_a_model_error(tmp_path: Path) -> None:
    source = resolve_model(default_model("llm").name)
    cut = tmp_path / "cut.gguf"
    with source.open("rb") as fh:
        cut.write_bytes(fh.read(4 << 20))
    check_gguf(cut)  # the header is fine: llama.cpp itself must notice
    with pytest.raises(ModelError, match=r"cannot load .*cut\.gguf.*truncated"):
        LlamaCppModel(LlmConfig(model_path=str(cut)))


@pytest.mark.slow
def test_a_gguf_with_damaged_weights_given_by_path_is_a_model_error(tmp_path: Path) -> None:
    """It loads fine and used to answer garbage until max_tokens (an ExtractionError at add())."""
    source = resolve_model(default_model("llm").name)
    damaged = tmp_path / "damaged.gguf"
    shutil.copyfile(source, damaged)
    with damaged.open("r+b") as fh:  # 4 MB of noise in the middle of the tensor data
        fh.seek(source.stat().st_size // 2)
        fh.write(np.random.default_rng(0).bytes(4 << 20))
    with pytest.raises(ModelError, match=r"damaged\.gguf loads but computes non-finite values"):
        LlamaCppModel(LlmConfig(model_path=str(damaged)))
    intact = LlamaCppModel(LlmConfig(model_path=str(source)))  # the check passes a sound model
    intact.close()


@pytest.mark.slow
def test_a_damaged_default_model_fails_its_checksum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = default_model("llm")
    fake = tmp_path / entry.target
    with fake.open("wb") as fh:  # right size and magic, wrong bytes
        fh.write(b"GGUF")
        fh.truncate(entry.files[0].size or 0)
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path))
    with pytest.raises(ChecksumError, match=r"damaged.*sha256.*localmem models prepare"):
        model_file(None)


# -- the real model ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_model() -> Iterator[LlamaCppModel]:
    model = LlamaCppModel(LlmConfig(n_threads=min(4, os.cpu_count() or 1)))
    yield model
    model.close()


# What holds on any CPU: greedy output differs between SIMD paths (see tests/llm_contract.py).
REAL_CONVERSATIONS = [
    [Message("user", "I am working on improving my tennis skills.")],
    [Message("user", "I have a midterm exam on linear algebra on November 20")],
    [Message("user", "Hey! I just got back from Japan, we spent two weeks in Kyoto."),
     Message("assistant", "That sounds amazing! What was the highlight?"),
     Message("user", "The temples, definitely. I'm a photographer so I took hundreds of pictures.")],
    [Message("user", "My sister Anna moved to Lisbon last year and I visit her every summer.")],
]


@pytest.mark.slow
@pytest.mark.parametrize("conversation", REAL_CONVERSATIONS, ids=["tennis", "exam", "chatty", "sister"])
def test_real_model_facts_parse_and_are_grounded_subjectless_memories(real_model: LlamaCppModel,
                                                                      conversation: list[Message]) -> None:
    before = real_model.stats.completion_tokens
    facts = real_model.extract_facts(conversation)  # raises ExtractionError if the output did not parse
    assert all(isinstance(f, Fact) for f in facts)
    source = "\n".join(m.content for m in conversation)
    assert_fact_texts_honour_the_contract([f.text for f in facts], source)
    assert real_model.stats.completion_tokens > before and real_model.stats.tokens_per_second > 0


@pytest.mark.slow
def test_real_model_reconcile_answers_name_only_what_was_shown(real_model: LlamaCppModel) -> None:
    shown = _candidates("Is learning Spanish", "Lives in Paris")
    for fact in ("Is learning Spanish on weekends", "Plays chess on Sundays", "Sold the bicycle"):
        decision = real_model.reconcile(Fact(fact), shown)  # parses, or raises ExtractionError
        assert decision.event in {Event.ADD, Event.UPDATE, Event.DELETE, Event.NONE}
        if decision.event is not Event.ADD:
            assert decision.target_id in {"0", "1"}, decision
        decision = rules.checked(decision, Fact(fact), shown)  # as the pipeline applies it
        if decision.event is Event.UPDATE:  # the checks keep an update to the fact's own words or a merge
            assert is_grounded(decision.text, fact + " " + shown[int(decision.target_id or 0)].text), decision


@pytest.mark.slow
def test_real_model_is_deterministic_across_interleaved_calls(real_model: LlamaCppModel) -> None:
    # The second extraction reuses the batched decoder's kept few-shot prefix after a
    # reconciliation on the other context: on one machine the answer must not change.
    message = [Message("user", "We adopted a puppy named Biscuit last weekend and I started a pottery class.")]
    first = real_model.extract_facts(message)
    calls = real_model.stats.calls
    real_model.reconcile(Fact("Is learning Spanish on weekends in Madrid"), _candidates("Is learning Spanish"))
    assert real_model.stats.calls == calls + 1  # the model was asked
    assert real_model.extract_facts(message) == first


@pytest.mark.slow
def test_real_model_batch_names_speakers_and_stays_grounded(real_model: LlamaCppModel) -> None:
    conversation = [Message("user", "Deborah: My mother passed away a few years ago. I have a dog named Max."),
                    Message("user", "Jolene: I'm so sorry. I went to a yoga retreat in Bali yesterday."),
                    Message("user", "Deborah: That sounds lovely! How was it?")]
    said = datetime(2023, 5, 8, 13, 56, tzinfo=timezone.utc)
    before = real_model.gates.proposed
    facts = real_model.extract_batch(conversation, times=[said] * 3)
    assert facts and real_model.gates.proposed > before
    assert real_model.gates.proposed - before >= len(facts)  # every kept fact went through the gates
    for fact in facts:
        assert fact.sources and all(0 <= i < 3 for i in fact.sources)
        (index,) = fact.sources[:1]
        speaker, text = conversation[index].content.split(": ", 1)
        assert fact.speaker == speaker and speaker in fact.text, fact
        assert is_grounded(fact.text.rsplit(" (", 1)[0], f"{speaker} {text}"), fact
        assert "(8 May 2023)" in fact.text or "(7 May 2023)" in fact.text, fact
        assert not fact.text.startswith(("I ", "My ")), fact


@pytest.mark.slow
def test_real_model_reads_more_messages_than_it_decodes_at_once_each_answer_its_own(
        real_model: LlamaCppModel) -> None:
    # More prompts than parallel.PARALLEL, of different lengths: a finished sequence hands its place
    # to the next prompt mid-batch. Each fact must still come from its own message and speaker.
    said = [("Anna", "I adopted a grey cat named Pixel last week."),
            ("Ben", "Thanks!"),
            ("Carla", "My brother Tom moved to Oslo in March and he works at a shipyard there now."),
            ("Dev", "I have been learning the cello for three years and I practise every evening."),
            ("Ema", "Wow, that is great."),
            ("Finn", "I ran my first marathon in Berlin in September, it took me four hours."),
            ("Gus", "We are painting the kitchen yellow this weekend."),
            ("Hana", "I work as a nurse at the children's hospital downtown."),
            ("Ivo", "My daughter starts school in August."),
            ("Jade", "I bake sourdough bread every Sunday morning for my neighbours."),
            ("Kai", "Ha, nice one."),
            ("Lea", "I grow tomatoes and basil on my balcony.")]
    assert len(said) > parallel.PARALLEL
    conversation = [Message("user", f"{name}: {text}") for name, text in said]
    calls = real_model.stats.calls
    facts = real_model.extract_batch(conversation)
    assert real_model.stats.calls - calls == len(said)  # one prompt a message, none lost or repeated
    assert facts
    for fact in facts:
        (index,) = fact.sources[:1]
        name, text = said[index]
        assert fact.speaker == name and is_grounded(fact.text, f"{name} {text}"), (fact, said[index])


@pytest.mark.slow
def test_greedy_completion_gives_what_create_completion_gives_with_the_grammar() -> None:
    """The fast path (best allowed token first, parallel.GrammarPicker) against llama-cpp-python's own
    grammar sampler, on reconciliation prompts: the same answers, whichever machine computes them."""
    import llama_cpp

    from localmem.extractors.llama_cpp import LlamaCppBackend

    grammars: Any = llama_cpp  # LlamaGrammar is not in the package's type stubs

    backend = LlamaCppBackend(LlmConfig())
    try:
        pairs = [("Melanie's daughter turned 8", ["Melanie has a daughter who is 7", "Melanie runs on Sundays"]),
                 ("Alice no longer plays tennis", ["Alice plays tennis every Sunday"]),
                 ("Jon lost his job at the bank", ["Jon works at a bank", "Gina opened a dance studio"])]
        for fact, texts in pairs:
            candidates = [Candidate(key=i, text=t) for i, t in enumerate(texts)]
            prompt = prompting.reconcile_prompt(Fact(fact), candidates)
            grammar = prompting.reconcile_grammar(candidates)
            fast = backend.complete(prompt, grammar, 64)
            reference: Any = backend._llm.create_completion(
                backend._llm.tokenize(prompt.encode("utf-8"), add_bos=True), max_tokens=64, temperature=0.0,
                grammar=grammars.LlamaGrammar.from_string(grammar.text, verbose=False), repeat_penalty=1.0)
            assert fast.text == reference["choices"][0]["text"]
            assert fast.completion_tokens == reference["usage"]["completion_tokens"]
            assert prompting.parse_decision(fast.text, candidates) is not None  # an answer the grammar allows
    finally:
        backend.close()


@pytest.mark.slow
def test_real_batched_decoder_reports_each_answer_as_it_ends(real_model: LlamaCppModel) -> None:
    from localmem.extractors.prompting import extraction_grammar, extraction_prompt

    prompts = [extraction_prompt([f"user: {text}"], None) for text in ("I like tea.", "I own a cat.", "Hi.")]
    ended: list[int] = []
    done = real_model._backend.complete_many(prompts, extraction_grammar(), 24, on_done=ended.append)
    assert len(done) == 3 and ended == [1, 1, 1]  # one step per prompt: a progress bar's count
