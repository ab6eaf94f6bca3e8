"""Episodes: every message kept with who and when; facts linked to them; one result list.

A scripted model stands in for the LLM (tests/test_pipeline.py); stores are real Milvus Lite.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from localmem import InvalidFilterError, InvalidInputError
from localmem.episodes import said, speaker_of
from localmem.records import Fact, Message, Scope

from .conftest import MemoryFactory, plain
from .test_pipeline import ScriptedModel

MAY_8 = datetime(2023, 5, 8, 13, 56, tzinfo=timezone.utc)


@pytest.mark.parametrize(("message", "expected"), [
    (Message("user", "Caroline: I went to a group."), ("Caroline", True, "I went to a group.")),
    (Message("user", "I went there.", name="Mel"), ("Mel", True, "I went there.")),
    (Message("user", "Mel: I went there.", name="Mel"), ("Mel", True, "I went there.")),
    (Message("user", "I went there."), ("alice", False, "I went there.")),
    (Message("assistant", "Noted."), ("coach", False, "Noted.")),
    (Message("user", "note: buy milk"), ("alice", False, "note: buy milk")),  # lower case: not a name
    (Message("user", "Dr. Smith: take two."), ("Dr. Smith", True, "take two.")),
])
def test_speaker_comes_from_name_then_prefix_then_role_and_scope(message: Message,
                                                                 expected: tuple[str, bool, str]) -> None:
    assert speaker_of(message, Scope(user_id="alice", agent_id="coach")) == expected


def test_stored_text_carries_the_date_in_words_and_a_named_speaker() -> None:
    messages = [Message("system", "be nice"), Message("user", "Caroline: Hi!"), Message("user", "Hello"),
                Message("user", "Caroline: Hi!")]
    kept = said(messages, Scope(user_id="alice"), MAY_8)
    assert [(k.speaker, k.text) for k in kept] == [("Caroline", "(8 May 2023) Caroline: Hi!"),
                                                   ("alice", "(8 May 2023) Hello")]


def _by_kind(items: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [i for i in items if i["kind"] == kind]


def test_infer_true_keeps_the_episode_and_links_the_fact(make_memory: MemoryFactory, hashing_embedder) -> None:
    llm = ScriptedModel(facts=["Caroline went to an LGBTQ support group"])
    memory = make_memory(hashing_embedder, llm)
    added = memory.add("Caroline: I went to the LGBTQ support group yesterday.", user_id="conv",
                       metadata={"dia_id": "D1:3"}, timestamp="2023-05-08T13:56:00Z")["results"]
    assert [(r["event"], r["kind"]) for r in added] == [("ADD", "fact")]
    fact = memory.get(added[0]["id"])
    (source,) = fact["sources"]
    assert source["memory"].startswith("(8 May 2023) Caroline: I went to the LGBTQ support group")
    assert source["metadata"] == {"dia_id": "D1:3"} and source["speaker"] == "Caroline"
    assert source["timestamp"] == fact["timestamp"] == "2023-05-08T13:56:00+00:00"
    # get_all shows what Mem0 shows (the fact); the message is listed on request.
    assert [r["kind"] for r in memory.get_all(user_id="conv")["results"]] == ["fact"]
    everything = memory.get_all(user_id="conv", include_episodes=True)["results"]
    assert sorted(r["kind"] for r in everything) == ["episode", "fact"]
    assert memory.history(source["id"])[0]["event"] == "ADD"


def test_a_message_that_yields_no_fact_is_the_memory(make_memory: MemoryFactory, hashing_embedder) -> None:
    memory = make_memory(hashing_embedder, ScriptedModel(facts=[]))
    added = memory.add("Mel: We finally got the old boat fixed!", user_id="conv", timestamp=1683554160)["results"]
    assert [(r["event"], r["kind"]) for r in added] == [("ADD", "episode")]
    (item,) = memory.get_all(user_id="conv")["results"]
    assert item["memory"] == "(8 May 2023) Mel: We finally got the old boat fixed!" and item["speaker"] == "Mel"
    hits = memory.search("old boat fixed", user_id="conv")["results"]
    assert [h["id"] for h in hits] == [item["id"]]


def test_search_shows_a_fact_with_its_sources_and_never_repeats_an_episode(make_memory: MemoryFactory,
                                                                           hashing_embedder) -> None:
    llm = ScriptedModel(facts=["Melanie paints sunsets"])
    memory = make_memory(hashing_embedder, llm)
    memory.add("Melanie: I painted a sunset by the lake.", user_id="c", metadata={"dia_id": "D1:1"})
    llm.facts = []
    memory.add("Caroline: The weather is nice by the lake.", user_id="c", metadata={"dia_id": "D1:2"})
    hits = memory.search("sunset painted by the lake", user_id="c", limit=10)["results"]
    facts, episodes = _by_kind(hits, "fact"), _by_kind(hits, "episode")
    assert [f["memory"] for f in facts] == ["Melanie paints sunsets"]
    attached = {s["id"] for s in facts[0]["sources"]}
    assert attached and not attached & {e["id"] for e in episodes}
    assert [e["metadata"]["dia_id"] for e in episodes] == ["D1:2"]
    assert len({h["id"] for h in hits}) == len(hits) == 2
    assert hits[0]["kind"] == "fact"  # its message matches both by meaning and by words: ranked first


def test_a_fact_links_to_the_message_the_extractor_read_it_from(make_memory: MemoryFactory,
                                                               hashing_embedder) -> None:
    may_1 = datetime(2023, 5, 1, tzinfo=timezone.utc)
    llm = ScriptedModel(facts=[Fact("Melanie paints sunsets", sources=(1,), speaker="Melanie", when=may_1)])
    memory = make_memory(hashing_embedder, llm)
    added = memory.add([{"role": "user", "content": "Caroline: How was the lake?"},
                        {"role": "user", "content": "Melanie: I painted a sunset there."}], user_id="c",
                       timestamp=MAY_8)["results"]
    fact = memory.get(next(r["id"] for r in added if r["kind"] == "fact"))
    (source,) = fact["sources"]
    assert plain(source["memory"]) == "Melanie: I painted a sunset there."
    assert fact["speaker"] == "Melanie" and fact["timestamp"] == "2023-05-01T00:00:00+00:00"
    # Caroline's question yielded no fact: it stands as a memory itself, beside the fact.
    listed = memory.get_all(user_id="c")["results"]
    assert sorted((r["kind"], r["memory"]) for r in listed) == [
        ("episode", "(8 May 2023) Caroline: How was the lake?"), ("fact", "Melanie paints sunsets")]


def test_facts_of_one_message_are_one_result_and_crowd_out_no_other(make_memory: MemoryFactory,
                                                                     hashing_embedder) -> None:
    llm = ScriptedModel(facts=["Melanie painted a sunset", "Melanie painted by the lake",
                               "Melanie painted a sunset by the lake"])
    memory = make_memory(hashing_embedder, llm)
    memory.add("Melanie: I painted a sunset by the lake.", user_id="c")
    llm.facts = []
    memory.add("Caroline: I painted the fence.", user_id="c")
    hits = memory.search("painted a sunset by the lake", user_id="c", limit=2)["results"]
    assert [h["kind"] for h in hits] == ["fact", "episode"]
    assert plain(hits[1]["memory"]) == "Caroline: I painted the fence."


def test_deleting_a_fact_forgets_the_message_only_it_drew_on(make_memory: MemoryFactory, hashing_embedder) -> None:
    llm = ScriptedModel(facts=["Likes tennis"])
    memory = make_memory(hashing_embedder, llm)
    fact_id = memory.add("I like tennis", user_id="u")["results"][0]["id"]
    episode_id = memory.get(fact_id)["sources"][0]["id"]
    memory.delete(fact_id)
    assert memory.get_all(user_id="u", include_episodes=True)["results"] == []
    assert [e["event"] for e in memory.history(episode_id)] == ["ADD", "DELETE"]


def test_deleting_an_episode_keeps_its_facts(make_memory: MemoryFactory, hashing_embedder) -> None:
    memory = make_memory(hashing_embedder, ScriptedModel(facts=["Likes tennis"]))
    fact_id = memory.add("I like tennis", user_id="u")["results"][0]["id"]
    memory.delete(memory.get(fact_id)["sources"][0]["id"])
    assert memory.get(fact_id)["sources"] == []
    assert [r["id"] for r in memory.search("tennis", user_id="u")["results"]] == [fact_id]


def test_infer_false_episodes_filter_by_speaker_and_time(make_memory: MemoryFactory, hashing_embedder) -> None:
    memory = make_memory(hashing_embedder)
    memory.add([{"role": "user", "content": "I adopted a puppy", "name": "Deborah"}], user_id="c",
               timestamp=datetime(2023, 1, 20, tzinfo=timezone.utc), infer=False)
    memory.add("Jolene: My puppy chews everything", user_id="c", timestamp="2023-03-02", infer=False)
    everything = memory.get_all(user_id="c")["results"]
    assert [(r["kind"], r["speaker"]) for r in everything] == [("episode", "Deborah"), ("episode", "Jolene")]
    assert everything[0]["memory"] == "(20 January 2023) Deborah: I adopted a puppy"
    by_speaker = memory.search("puppy", user_id="c", filters={"speaker": "Jolene"})["results"]
    assert [r["speaker"] for r in by_speaker] == ["Jolene"]
    in_range = memory.search("puppy", user_id="c", filters={"timestamp": {"gte": "2023-01-01", "lt": "2023-02-01"}})
    assert [r["speaker"] for r in in_range["results"]] == ["Deborah"]
    with pytest.raises(InvalidFilterError, match="timestamp"):
        memory.search("puppy", user_id="c", filters={"timestamp": {"gte": "last tuesday"}})
    with pytest.raises(InvalidInputError, match="timestamp"):
        memory.add("x", user_id="c", timestamp="yesterday", infer=False)
    with pytest.raises(InvalidInputError, match="name"):
        memory.add([{"role": "user", "content": "x", "name": 3}], user_id="c", infer=False)
    assert len(memory.get_all(user_id="c")["results"]) == 2


def test_get_all_hides_exactly_the_messages_a_stored_fact_draws_on(make_memory: MemoryFactory,
                                                                   hashing_embedder) -> None:
    from localmem.records import Decision, Event

    llm = ScriptedModel(facts=["Likes pizza"])
    memory = make_memory(hashing_embedder, llm)
    memory.add("I like pizza", user_id="u")
    repeat = memory.add("Honestly, I like pizza", user_id="u")["results"]  # the same fact again: NONE
    assert [(r["event"], r["kind"]) for r in repeat] == [("NONE", "fact"), ("ADD", "episode")]
    llm.facts, llm.decision = ["Likes pizza a lot"], Decision(Event.DELETE, "", target_id="0")
    memory.add("I like pizza a lot", user_id="u")  # reconciliation deletes the fact it contradicts
    listed = memory.get_all(user_id="u")["results"]
    # No fact is left: every message stands as a memory, and search finds nothing get_all hides.
    assert sorted(plain(r["memory"]) for r in listed) == ["Honestly, I like pizza", "I like pizza",
                                                          "I like pizza a lot"]
    hits = memory.search("pizza", user_id="u")["results"]
    assert {h["id"] for h in hits} <= {r["id"] for r in listed}
    first = next(r for r in listed if plain(r["memory"]) == "I like pizza")
    assert [e["event"] for e in memory.history(first["id"])] == ["ADD", "UPDATE"]


def test_export_import_keeps_kinds_speakers_times_and_links(make_memory: MemoryFactory, hashing_embedder,
                                                            tmp_path) -> None:
    from localmem.transfer import export_store, import_store

    source = make_memory(hashing_embedder, ScriptedModel(facts=["Melanie paints sunsets"]), name="a.db")
    source.add("Melanie: I painted a sunset.", user_id="c", metadata={"dia_id": "D1:1"}, timestamp=1683554160)
    source.add("Mel: Hi!", user_id="c", infer=False, timestamp=1683554160)
    path = tmp_path / "out.jsonl"
    with path.open("w") as fh:
        export_store(source, fh, with_vectors=True)
    target = make_memory(hashing_embedder, name="b.db")
    import_store(target, path)
    for include in (False, True):
        before = source.get_all(user_id="c", include_episodes=include)["results"]
        after = target.get_all(user_id="c", include_episodes=include)["results"]
        assert after == before
    fact = next(r for r in target.get_all(user_id="c")["results"] if r["kind"] == "fact")
    assert [s["metadata"] for s in fact["sources"]] == [{"dia_id": "D1:1"}]


def test_facts_never_push_a_message_out_of_the_lists_it_is_ranked_from(make_memory: MemoryFactory,
                                                                        hashing_embedder) -> None:
    # Fifty facts of one message, each closer to the query than the other message: drawn beside
    # the messages, they would fill both 40-row lists and leave that message out of both.
    llm = ScriptedModel(facts=[f"Mel did tennis chess golf n{i}" for i in range(50)])
    memory = make_memory(hashing_embedder, llm)
    memory.add("Mel: I did tennis, chess and golf", user_id="c", timestamp=MAY_8)
    memory.add("Caro: tennis and chess at the club", user_id="c", timestamp=MAY_8, infer=False)
    hits = memory.search("tennis chess golf", user_id="c", limit=5)["results"]
    assert [(h["kind"], plain(h["sources"][0]["memory"] if h["kind"] == "fact" else h["memory"])) for h in hits] \
        == [("fact", "Mel: I did tennis, chess and golf"), ("episode", "Caro: tennis and chess at the club")]
