"""add(infer=True) end to end: the pipeline's reconciliation with the llama.cpp model's rules.

The fast tests script the model's answers (a fake backend under the real
LlamaCppModel); the slow one runs the bundled model and embedder on the
README quickstart.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from localmem import ExtractionError
from localmem.config import LlmConfig
from localmem.extractors.llama_cpp import LlamaCppModel

from .conftest import MemoryFactory
from .llm_contract import assert_fact_texts_honour_the_contract
from .test_llama_cpp import FakeBackend


def _model(outputs: list[str]) -> tuple[LlamaCppModel, FakeBackend]:
    backend = FakeBackend(outputs)
    return LlamaCppModel(LlmConfig(), backend=backend), backend


def test_a_moved_fact_updates_the_old_residence_despite_low_similarity(make_memory: MemoryFactory,
                                                                      hashing_embedder) -> None:
    # The two texts share no word: under the hashing embedder their cosine is about 0,
    # so only the attribute rule can bring the old memory to reconciliation.
    model, backend = _model(["- I live in Paris\n\n", "- I moved to Berlin\n\n"])
    memory = make_memory(hashing_embedder, model)
    first = memory.add("I live in Paris", user_id="u")["results"][0]
    result = memory.add("I moved to Berlin", user_id="u")["results"]
    assert result == [{"id": first["id"], "memory": "Moved to Berlin", "event": "UPDATE", "kind": "fact",
                       "previous_memory": "Lives in Paris"}]
    assert len(backend.prompts) == 2  # two extractions; the decision was the rule's
    assert [h["event"] for h in memory.history(first["id"])] == ["ADD", "UPDATE"]


@pytest.mark.slow
def test_a_negated_fact_replaces_the_memory_it_contradicts(make_memory: MemoryFactory, real_embedder) -> None:
    # The real embedder: it is what finds "Likes pizza" related (cosine about 0.75).
    model, _ = _model(["- I like pizza\n\n", "- I play chess\n\n", "- I don't like pizza anymore\n\n"])
    memory = make_memory(real_embedder, model)
    memory.add("I like pizza", user_id="u")
    memory.add("I play chess", user_id="u")
    (change,) = memory.add("I don't like pizza anymore", user_id="u")["results"]
    assert change["event"] == "UPDATE" and change["previous_memory"] == "Likes pizza"
    assert sorted(r["memory"] for r in memory.get_all(user_id="u")["results"]) == [
        "Does not like pizza anymore", "Plays chess"]


@pytest.mark.slow
def test_a_changed_date_is_not_swallowed_as_a_near_duplicate(make_memory: MemoryFactory, real_embedder) -> None:
    # The two facts score 0.99 with the real embedder, above the near-duplicate threshold;
    # only the differing number keeps the second from being dropped as a repeat.
    model, _ = _model(["- I have a midterm exam on November 20\n\n", "- I have a midterm exam on November 21\n\n",
                       "UPDATE 0: Has a midterm exam on November 21\n"])
    memory = make_memory(real_embedder, model)
    first = memory.add("My midterm exam is on November 20", user_id="u")["results"][0]
    (change,) = memory.add("Correction: the midterm is on November 21", user_id="u")["results"]
    assert change == {"id": first["id"], "memory": "Has a midterm exam on November 21", "event": "UPDATE",
                      "kind": "fact", "previous_memory": "Has a midterm exam on November 20"}


def test_an_unusable_reconcile_answer_raises_by_default_and_writes_nothing(make_memory: MemoryFactory,
                                                                         hashing_embedder) -> None:
    model, _ = _model(["- I like pizza with olives\n\n", "- I like pizza with olives and capers\n\n", "???"])
    memory = make_memory(hashing_embedder, model)
    memory.add("I like pizza with olives", user_id="u")
    with pytest.raises(ExtractionError, match="not a decision"):
        memory.add("I like pizza with olives and capers", user_id="u")
    assert [r["memory"] for r in memory.get_all(user_id="u")["results"]] == ["Likes pizza with olives"]


@pytest.fixture(scope="module")
def real_model() -> Iterator[LlamaCppModel]:
    model = LlamaCppModel(LlmConfig(n_threads=min(4, os.cpu_count() or 1)))
    yield model
    model.close()


def test_quickstart_search_ranks_the_hobby_first(make_memory: MemoryFactory, real_embedder) -> None:
    # Scripted extraction, real embedder: the ranking is the embedder's and the query rewrite's,
    # the same on any CPU (0.28 vs 0.05), whatever a real model would have extracted.
    model, _ = _model(["- I am working on improving my tennis skills\n\n",
                       "- I have a midterm exam on linear algebra on November 20\n\n"])
    memory = make_memory(real_embedder, model)
    memory.add("I am working on improving my tennis skills.", user_id="alice", metadata={"category": "hobbies"})
    memory.add("I have a midterm exam on linear algebra on November 20", user_id="alice")
    hits = memory.search("What are Alice's hobbies", user_id="alice")["results"]
    assert [h["memory"] for h in hits] == ["Working on improving tennis skills",
                                           "Has a midterm exam on linear algebra on November 20"]


@pytest.mark.slow
def test_real_model_add_keeps_store_and_history_in_step(make_memory: MemoryFactory, real_embedder,
                                                         real_model: LlamaCppModel) -> None:
    # What the 270M model decides differs between CPUs; what must hold on every one is below.
    memory = make_memory(real_embedder, real_model)
    said = ["I am working on improving my tennis skills.", "I have a midterm exam on linear algebra on November 20",
            "I live in Paris.", "I moved to Berlin last month.", "I like pizza.", "I don't like pizza anymore."]
    previous: dict[str, str] = {}
    for text in said:
        for change in memory.add(text, user_id="alice")["results"]:
            assert change["event"] in {"ADD", "UPDATE", "DELETE", "NONE"}, change
            if change["event"] in {"ADD", "UPDATE"}:
                evidence = text + " " + previous.get(change["id"], "")
                assert_fact_texts_honour_the_contract([change["memory"]], evidence)
            previous[change["id"]] = change["memory"]
    stored = memory.get_all(user_id="alice")["results"]
    assert stored, "six factual messages left no memory"
    for item in stored:
        events = memory.history(item["id"])
        assert events[0]["event"] == "ADD" and events[-1]["new_memory"] == item["memory"], events
    hits = memory.search("What are Alice's hobbies", user_id="alice")["results"]
    # A message is shown itself where its facts match the query clearly less: every message is listed so.
    listed = memory.get_all(user_id="alice", include_episodes=True)["results"]
    assert {h["id"] for h in hits} <= {i["id"] for i in listed}
    assert all(-1.0 - 1e-6 <= h["score"] <= 1.0 + 1e-6 for h in hits)  # similarities, in rank order
