"""Contexts (localmem/context.py): each message restated with the two before it, a hidden search key."""

from __future__ import annotations

from typing import Any

import pytest

from localmem.context import TURNS_BEFORE, WINDOW_S, Line, before, context_text, line_of
from localmem.errors import MemoryNotFoundError
from localmem.memory import Memory
from localmem.records import CONTEXT, EPISODE, KINDS, MemoryRecord, Scope
from tests.conftest import MemoryFactory
from tests.test_pipeline import ScriptedModel

MAY_8 = 1683551760  # 8 May 2023, 13:16 UTC
SCOPE = Scope(user_id="conv")


def _episode(text: str, speaker: str | None, timestamp: int = MAY_8, key: str = "e") -> MemoryRecord:
    return MemoryRecord(id=key, memory=text, hash=key, scope=SCOPE, kind=EPISODE, speaker=speaker,
                        timestamp=timestamp)


def test_a_line_is_the_message_without_its_date_and_speaker() -> None:
    named = line_of(_episode("(8 May 2023) Caroline: I went to a support group.", "Caroline"))
    assert (named.speaker, named.content) == ("Caroline", "I went to a support group.")
    # A speaker known only from the scope is not in the text, and stays out of the context too.
    unnamed = line_of(_episode("(8 May 2023) I went to a support group.", "conv"))
    assert (unnamed.speaker, unnamed.content) == (None, "I went to a support group.")


def test_a_context_names_who_speaks_and_whom_they_address() -> None:
    lines = [Line("a", "Melanie", "Have you ever been to Paris?", MAY_8),
             Line("b", "Caroline", "Yes, I went there twice with my mum!", MAY_8)]
    assert context_text(lines) == ("(8 May 2023) Has Caroline ever been to Paris? "
                                   "Yes, Caroline went there twice with Caroline's mum!")


def test_the_messages_before_are_the_last_two_of_one_sitting() -> None:
    said = [Line(str(i), "A", f"line {i}", MAY_8 + i) for i in range(5)]
    now = Line("now", "B", "reply", MAY_8 + 10)
    assert [line.id for line in before(now, said)] == ["3", "4"][-TURNS_BEFORE:]
    later = Line("later", "B", "reply", MAY_8 + 4 + WINDOW_S + 1)
    assert before(later, said) == []


def _add_turns(memory: Memory, turns: list[str], *, infer: bool, start: int = MAY_8) -> list[str]:
    ids = []
    for i, turn in enumerate(turns):
        result = memory.add(turn, user_id="conv", infer=infer, timestamp=start + i)
        ids += [r["id"] for r in result["results"]]
    return ids


def _contexts(memory: Memory) -> list[MemoryRecord]:
    return memory.store.records(SCOPE, None, 1000, kinds=[CONTEXT])


TALK = ["Melanie: Have you ever been to Paris, Caroline?", "Caroline: Yes, twice last year with my mum!",
        "Melanie: That sounds like quite a trip.", "Caroline: We should plan a trip together sometime."]


def test_each_message_gets_a_context_that_is_never_listed_shown_or_returned(make_memory: MemoryFactory,
                                                                            hashing_embedder: Any) -> None:
    memory = make_memory(hashing_embedder, ScriptedModel())
    episode_ids = _add_turns(memory, TALK, infer=True)
    assert len(episode_ids) == 4  # add() reports the messages it kept, not their contexts
    contexts = sorted(_contexts(memory), key=lambda c: c.timestamp or 0)
    # The first message has none before it; each later one quotes up to two before it.
    assert [c.sources for c in contexts] == [(episode_ids[1], episode_ids[0]),
                                             (episode_ids[2], episode_ids[0], episode_ids[1]),
                                             (episode_ids[3], episode_ids[1], episode_ids[2])]
    assert contexts[0].memory == ("(8 May 2023) Has Caroline ever been to Paris, Caroline? "
                                  "Yes, twice last year (2022) with Caroline's mum!")
    listed = memory.get_all(user_id="conv", include_episodes=True)["results"]
    assert sorted(r["id"] for r in listed) == sorted(episode_ids)
    for query in ("Paris", "trip together", "mum"):
        results = memory.search(query, user_id="conv")["results"]
        assert results and all(r["kind"] in KINDS for r in results)
        assert {r["id"] for r in results} <= set(episode_ids)
    assert memory.get_all(user_id="conv", filters={"kind": "episode"})["results"]
    # A context's id is no memory's: get, update and delete refuse it as unknown.
    for call in (memory.get, memory.delete, lambda key: memory.update(key, "new words")):
        with pytest.raises(MemoryNotFoundError):
            call(contexts[0].id)


def test_contexts_without_facts_never_load_the_model(make_memory: MemoryFactory, hashing_embedder: Any) -> None:
    memory = make_memory(hashing_embedder, ScriptedModel(fail=True), extract_facts=False)
    ids = _add_turns(memory, TALK, infer=True)  # the model would raise if it were asked
    assert len(ids) == 4 and len(_contexts(memory)) == 3
    assert all(r["kind"] == "episode" for r in memory.get_all(user_id="conv")["results"])


def test_infer_false_writes_no_context(make_memory: MemoryFactory, hashing_embedder: Any) -> None:
    memory = make_memory(hashing_embedder)
    _add_turns(memory, TALK, infer=False)
    assert _contexts(memory) == []


def test_a_reply_is_found_through_its_context(make_memory: MemoryFactory, real_embedder: Any) -> None:
    # "Yes! I loved it" names neither the class nor who loved it: alone, a search for whether
    # Caroline liked the salsa class ranks her other messages above it; its context (the question
    # before it, persons named) does not.
    turns = ["Caroline: I go to the gym on Mondays.", "Melanie: My garden was great this week.",
             "Caroline: Dancing at my cousin's wedding was fun.", "Melanie: The pottery class was great.",
             "Caroline: When I go hiking I bring snacks.", "Melanie: I read a book on the train.",
             "Melanie: Did you ever try that salsa class downtown?", "Caroline: Yes! I loved it, every Friday now."]
    ranks = {}
    for infer in (False, True):
        memory = make_memory(real_embedder, ScriptedModel(), name=f"infer_{infer}.db")
        _add_turns(memory, turns, infer=infer)
        results = memory.search("Did Caroline like the salsa class?", user_id="conv", limit=8)["results"]
        ranks[infer] = next(i for i, r in enumerate(results) if "I loved it" in r["memory"])
    assert ranks[False] >= 3 and ranks[True] == 1, ranks  # the question it answers stays first


def test_deleting_or_updating_a_message_removes_its_words_from_every_context(make_memory: MemoryFactory,
                                                                             hashing_embedder: Any) -> None:
    memory = make_memory(hashing_embedder, ScriptedModel())
    ids = _add_turns(memory, TALK, infer=True)
    memory.delete(ids[1])  # "twice last year with my mum"
    assert not any("mum" in c.memory for c in _contexts(memory))
    assert not any(ids[1] in c.sources for c in _contexts(memory))
    memory.update(ids[2], "Melanie: Lovely, a secret word: zebra.")
    remaining = _contexts(memory)
    assert not any(ids[2] in c.sources for c in remaining)
    # What is left is consistent: every context's messages exist, and history saw every change.
    for context in remaining:
        assert len(memory.store.get(list(context.sources))) == len(context.sources)
        assert [e["event"] for e in memory.history(context.id)] == ["ADD"]
    assert [e["event"] for e in memory.history(ids[1])] == ["ADD", "DELETE"]


def test_an_export_keeps_contexts_as_contexts(make_memory: MemoryFactory, hashing_embedder: Any,
                                              tmp_path: Any) -> None:
    from localmem.transfer import export_store, import_store

    memory = make_memory(hashing_embedder, ScriptedModel())
    _add_turns(memory, TALK, infer=True)
    path = tmp_path / "export.jsonl"
    with path.open("w", encoding="utf-8") as out:
        export_store(memory, out, with_vectors=True)
    copy = make_memory(hashing_embedder, name="copy.db")
    import_store(copy, path)
    assert sorted(c.memory for c in _contexts(copy)) == sorted(c.memory for c in _contexts(memory))
    assert len(copy.get_all(user_id="conv")["results"]) == len(memory.get_all(user_id="conv")["results"])
