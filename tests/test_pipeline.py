"""Reconciliation rules and write consistency, on a real Milvus Lite store.

A scripted language model stands in for the LLM here: what is under test is
the deterministic logic around it (the real model has its own tests).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from localmem import ExtractionError, HistoryError
from localmem.protocols import Candidate
from localmem.records import Decision, Event, Fact, HistoryEvent, Message

from .conftest import MemoryFactory, plain


class ScriptedModel:
    """Returns the facts and decisions a test sets, and records what it was asked."""

    def __init__(self, facts: Sequence[str | Fact] | None = None, decision: Decision | None = None,
                 fail: bool = False) -> None:
        self.facts: Sequence[str | Fact] = facts or []
        self.decision = decision or Decision(Event.ADD, "")
        self.fail = fail
        self.reconcile_calls: list[tuple[str, list[str]]] = []

    def extract_facts(self, messages: Sequence[Message], custom_prompt: str | None = None) -> list[Fact]:
        if self.fail:
            raise ExtractionError("model said nothing usable")
        return [f if isinstance(f, Fact) else Fact(f) for f in self.facts]

    def reconcile(self, fact: Fact, candidates: Sequence[Candidate], custom_prompt: str | None = None) -> Decision:
        self.reconcile_calls.append((fact.text, [c.text for c in candidates]))
        return self.decision

    def close(self) -> None:
        pass


def _events(result: dict[str, object]) -> list[str]:
    return [r["event"] for r in result["results"]]  # type: ignore[attr-defined]


def test_exact_and_near_duplicates_are_never_stored_twice(make_memory: MemoryFactory, hashing_embedder) -> None:
    llm = ScriptedModel(facts=["Likes tennis", "Likes tennis"])
    memory = make_memory(hashing_embedder, llm)
    assert _events(memory.add("x", user_id="u")) == ["ADD"]  # the repeat inside one call is dropped
    assert _events(memory.add("x", user_id="u")) == ["NONE"]  # exact duplicate of a stored memory
    llm.facts = ["likes TENNIS!"]  # same words: near-duplicate under the hashing embedder
    assert _events(memory.add("x", user_id="u")) == ["NONE"]
    assert len(memory.get_all(user_id="u")["results"]) == 1
    assert llm.reconcile_calls == []


def test_unrelated_fact_is_added_without_asking_the_model(make_memory: MemoryFactory, hashing_embedder) -> None:
    llm = ScriptedModel(facts=["Likes tennis"])
    memory = make_memory(hashing_embedder, llm)
    memory.add("x", user_id="u")
    llm.facts = ["Exam on November 20"]
    assert _events(memory.add("x", user_id="u")) == ["ADD"]
    assert llm.reconcile_calls == []


def test_update_decision_replaces_text_and_logs_history(make_memory: MemoryFactory, hashing_embedder) -> None:
    llm = ScriptedModel(facts=["Likes cheese pizza"])
    memory = make_memory(hashing_embedder, llm)
    first = memory.add("x", user_id="u", metadata={"k": 1})["results"][0]
    llm.facts = ["Likes cheese pizza on Fridays"]
    llm.decision = Decision(Event.UPDATE, "Likes cheese pizza on Fridays", target_id="0")
    result = memory.add("x", user_id="u", metadata={"j": 2})["results"]
    assert result == [{"id": first["id"], "memory": "Likes cheese pizza on Fridays", "event": "UPDATE",
                       "kind": "fact", "previous_memory": "Likes cheese pizza"}]
    assert llm.reconcile_calls == [("Likes cheese pizza on Fridays", ["Likes cheese pizza"])]
    stored = memory.get(first["id"])
    assert stored["memory"] == "Likes cheese pizza on Fridays"
    assert stored["metadata"] == {"k": 1, "j": 2}
    assert stored["updated_at"] is not None
    assert [h["event"] for h in memory.history(first["id"])] == ["ADD", "UPDATE"]


def test_a_lossy_update_from_any_model_is_refused_and_the_fact_added_beside(make_memory: MemoryFactory,
                                                                           hashing_embedder) -> None:
    # Not only the bundled model's answers are checked (rules.checked): this one drops "loves".
    llm = ScriptedModel(facts=["Nate loves coconut milk"])
    memory = make_memory(hashing_embedder, llm)
    first = memory.add("x", user_id="u")["results"][0]
    llm.facts = ["Nate knows one recipe using coconut milk"]
    llm.decision = Decision(Event.UPDATE, "Nate knows one recipe using coconut milk", target_id="0")
    assert _events(memory.add("y", user_id="u")) == ["ADD"]
    assert llm.reconcile_calls == [("Nate knows one recipe using coconut milk", ["Nate loves coconut milk"])]
    assert sorted(r["memory"] for r in memory.get_all(user_id="u")["results"]) == [
        "Nate knows one recipe using coconut milk", "Nate loves coconut milk"]
    assert [h["event"] for h in memory.history(first["id"])] == ["ADD"]


def test_a_delete_decision_replaces_the_memory_by_the_fact_that_ends_it(make_memory: MemoryFactory,
                                                                        hashing_embedder) -> None:
    llm = ScriptedModel(facts=["Likes eating pizza"])
    memory = make_memory(hashing_embedder, llm)
    first = memory.add("x", user_id="u")["results"][0]
    llm.facts = ["Stopped eating pizza"]
    llm.decision = Decision(Event.DELETE, "", target_id="0")
    assert _events(memory.add("y", user_id="u")) == ["UPDATE"]
    assert len(llm.reconcile_calls) == 1
    assert memory.get(first["id"])["memory"] == "Stopped eating pizza"  # what was said is kept
    assert [h["event"] for h in memory.history(first["id"])] == ["ADD", "UPDATE"]


def test_a_contradiction_is_decided_by_rules_before_any_model(make_memory: MemoryFactory, hashing_embedder) -> None:
    llm = ScriptedModel(facts=["Likes eating pizza"])
    memory = make_memory(hashing_embedder, llm)
    first = memory.add("x", user_id="u")["results"][0]
    llm.facts = ["No longer likes eating pizza"]
    llm.decision = Decision(Event.ADD, "")  # never asked
    assert _events(memory.add("y", user_id="u")) == ["UPDATE"]
    assert llm.reconcile_calls == []
    assert memory.get(first["id"])["memory"] == "No longer likes eating pizza"


def test_a_decision_naming_no_shown_memory_falls_back_to_add(make_memory: MemoryFactory, hashing_embedder) -> None:
    llm = ScriptedModel(facts=["Likes pizza"])
    memory = make_memory(hashing_embedder, llm)
    memory.add("x", user_id="u")
    llm.facts = ["Likes pizza with olives"]
    llm.decision = Decision(Event.UPDATE, "whatever", target_id="7")
    assert _events(memory.add("x", user_id="u")) == ["ADD"]
    assert len(memory.get_all(user_id="u")["results"]) == 2


def test_scopes_do_not_see_each_other(make_memory: MemoryFactory, hashing_embedder) -> None:
    llm = ScriptedModel(facts=["Likes tennis"])
    memory = make_memory(hashing_embedder, llm)
    memory.add("x", user_id="alice")
    assert _events(memory.add("x", user_id="bob")) == ["ADD"]


def test_extraction_failure_raises_by_default(make_memory: MemoryFactory, hashing_embedder) -> None:
    memory = make_memory(hashing_embedder, ScriptedModel(fail=True))
    with pytest.raises(ExtractionError):
        memory.add("I moved to Lisbon", user_id="u")
    assert memory.get_all(user_id="u")["results"] == []


def test_extraction_failure_can_store_the_raw_message_flagged(make_memory: MemoryFactory, hashing_embedder) -> None:
    memory = make_memory(hashing_embedder, ScriptedModel(fail=True), on_extraction_failure="store_raw")
    result = memory.add("I moved to Lisbon", user_id="u")["results"]
    assert result[0]["event"] == "ADD" and result[0]["flags"] == ["unprocessed_raw_message"]
    stored = memory.get(result[0]["id"])
    assert plain(stored["memory"]) == "I moved to Lisbon"
    assert stored["metadata"]["localmem_flags"] == ["unprocessed_raw_message"]


def test_history_failure_undoes_the_store_writes(make_memory: MemoryFactory, hashing_embedder,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    memory = make_memory(hashing_embedder)
    kept = memory.add("Keeps bees", user_id="u", infer=False)["results"][0]

    def broken(intent_id: int, events: Sequence[HistoryEvent], **kwargs: object) -> None:
        raise HistoryError("disk full")

    monkeypatch.setattr(memory.history_store, "commit", broken)
    with pytest.raises(HistoryError):
        memory.add("Plays the oboe", user_id="u", infer=False)
    with pytest.raises(HistoryError):
        memory.update(kept["id"], "Keeps wasps")
    with pytest.raises(HistoryError):
        memory.delete(kept["id"])
    assert [plain(r["memory"]) for r in memory.get_all(user_id="u")["results"]] == ["Keeps bees"]


def test_facts_alike_only_in_a_name_are_added_without_asking_the_model(make_memory: MemoryFactory,
                                                                     hashing_embedder) -> None:
    # Both facts name Gina twice: alike (0.53 under the hashing embedder) by the name alone.
    llm = ScriptedModel(facts=[Fact("Gina thinks Gina can do it", speaker="Gina")])
    memory = make_memory(hashing_embedder, llm)
    memory.add("Gina: I can do it", user_id="conv")
    llm.facts = [Fact("Gina says Gina is happy", speaker="Gina")]
    assert _events(memory.add("Gina: I am happy", user_id="conv")) == ["ADD"]
    assert llm.reconcile_calls == []
    # Alike beyond the name: the model is asked.
    llm.facts = [Fact("Gina plays tennis on Sundays", speaker="Gina")]
    memory.add("Gina: tennis on Sundays", user_id="conv")
    llm.facts = [Fact("Gina plays tennis on Mondays", speaker="Gina")]
    memory.add("Gina: tennis on Mondays now", user_id="conv")
    assert [fact for fact, _ in llm.reconcile_calls] == ["Gina plays tennis on Mondays"]
