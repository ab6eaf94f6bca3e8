"""What holds now, and whose it is (currency.py): the rules, and what a chat sees through Memory."""

from __future__ import annotations

import pytest

from localmem import Memory
from localmem.currency import asks_assistant, asks_past, is_chatter, is_own, latest, supersedes, topics
from localmem.retrieval.current import RECOMMENDED_THRESHOLD
from localmem.transfer import export_store, import_store

from .conftest import MemoryFactory


@pytest.mark.parametrize(("text", "role", "chatter"), [
    ("Noted!", "assistant", True),
    ("Nice to meet you, Maria! Noted.", "assistant", True),
    ("Porto is lovely! Updated.", "assistant", True),
    ("Thanks!", "user", True),
    ("Porto!", "user", False),  # an answer, not an acknowledgement
    ("note for bob", "user", False),
    ("I live in Lisbon.", "user", False),
    ("I recommend 'The Name of the Wind' by Patrick Rothfuss.", "assistant", False),
])
def test_chatter_is_only_acknowledgement(text: str, role: str, chatter: bool) -> None:
    assert is_chatter(text, role) is chatter


def test_a_change_of_the_same_topic_supersedes_and_more_of_the_same_does_not() -> None:
    old = "I live in Lisbon and work as a nurse."
    assert supersedes("We moved to Porto last month!", old, similarity=0.3)
    assert not supersedes("I still live in Lisbon and love it.", old, similarity=0.6)  # says it still holds
    assert not supersedes("We went to Porto for the weekend.", old, similarity=0.3)  # no change said
    assert not supersedes("I got a new bike!", "My dentist appointment is on March 3.", similarity=0.1)
    assert topics("When is the dentist appointment?") == {"schedule"}  # "appointment" is no "app"


def test_queries_about_the_past_and_to_the_assistant() -> None:
    assert asks_past("Where did Maria live before Porto?") and asks_past("What was her job last year?")
    assert not asks_past("Where does Maria live?")
    assert asks_assistant("What did you recommend last week?") and not asks_assistant("Where does Maria live?")
    assert is_own("user", True) and not is_own("assistant", True) and is_own("assistant", False)
    assert latest("a", {"a": "b", "b": "c", "c": "a"}) == "c"  # chains followed, cycles cut


CHAT = [  # (day, user, assistant) as a chat app adds each turn
    ("2026-01-05", "Hi! I live in Lisbon and work as a nurse at the Santa Maria hospital.",
     "Nice to meet you, Maria! Noted."),
    ("2026-01-06", "I'm vegetarian, by the way, and I have a cat called Miso.", "Great! I'll remember that."),
    ("2026-01-10", "My dentist appointment is on March 3.", "Noted! I'll remind you."),
    ("2026-01-20", "Can you suggest a good book?", "I recommend 'The Name of the Wind' by Patrick Rothfuss."),
    ("2026-02-20", "We moved to Porto last month!", "Porto is lovely! Updated."),
]


def _chat(memory: Memory) -> None:
    for day, user, assistant in CHAT:
        memory.add([{"role": "user", "content": user}, {"role": "assistant", "content": assistant}],
                   user_id="maria", timestamp=day, infer=False)


@pytest.mark.slow
def test_corrections_win_and_the_past_stays_findable(make_memory: MemoryFactory, real_embedder) -> None:
    memory = make_memory(real_embedder)
    _chat(memory)
    now = memory.search("Where does Maria live?", user_id="maria", limit=5)["results"]
    assert "Porto" in now[0]["memory"] and now[0]["superseded_by"] is None and now[0]["valid_until"] is None
    stale = next(r for r in now if "Lisbon" in r["memory"])
    assert stale["superseded_by"] == now[0]["id"] and stale["valid_until"].startswith("2026-02-20")
    before = memory.search("Where did Maria live before Porto?", user_id="maria", limit=5)["results"]
    assert any("Lisbon" in r["memory"] for r in before)
    assert [e["event"] for e in memory.history(stale["id"])] == ["ADD", "EXPIRE"]
    # A query on another topic is not reordered for the correction: the dentist stays first.
    assert "dentist" in memory.search("dentist", user_id="maria", limit=5)["results"][0]["memory"]


@pytest.mark.slow
def test_the_assistant_s_replies_are_context_not_the_user_s_memories(make_memory: MemoryFactory,
                                                                     real_embedder) -> None:
    memory = make_memory(real_embedder)
    _chat(memory)
    listed = memory.get_all(user_id="maria")["results"]
    assert listed and all(r["role"] == "user" for r in listed)
    everything = memory.get_all(user_id="maria", include_episodes=True)["results"]
    assert len(everything) == 2 * len(CHAT)  # nothing said is dropped from the store
    for query in ("Where does Maria live?", "What does Maria eat?", "What pet does Maria have?"):
        assert all(r["role"] != "assistant" for r in memory.search(query, user_id="maria")["results"])
    asked = memory.search("What did you recommend to read?", user_id="maria", limit=3)["results"]
    assert any("Rothfuss" in r["memory"] and r["role"] == "assistant" for r in asked)
    assert not any("Noted" in r["memory"] for r in asked)  # chatter is never found
    by_speaker = memory.search("reply", user_id="maria", filters={"speaker": "assistant"})["results"]
    assert by_speaker and all(r["role"] == "assistant" for r in by_speaker)


@pytest.mark.slow
def test_score_is_a_similarity_and_the_recommended_threshold_drops_the_unrelated(make_memory: MemoryFactory,
                                                                                real_embedder) -> None:
    memory = make_memory(real_embedder)
    _chat(memory)
    everything = memory.search("dentist", user_id="maria")["results"]
    assert any("cat called Miso" in r["memory"] for r in everything)  # ranked, though unrelated
    kept = memory.search("dentist", user_id="maria", threshold=RECOMMENDED_THRESHOLD)["results"]
    assert [r["memory"] for r in kept] == ["(10 January 2026) My dentist appointment is on March 3."]
    assert all(-1.0 <= r["score"] <= 1.0 for r in everything)


@pytest.mark.slow
def test_an_export_keeps_what_holds_now(make_memory: MemoryFactory, real_embedder, tmp_path) -> None:
    memory = make_memory(real_embedder)
    _chat(memory)
    path = tmp_path / "maria.jsonl"
    with path.open("w") as fh:
        export_store(memory, fh)
    copy = make_memory(real_embedder, name="copy.db")
    import_store(copy, path)

    def seen(store: Memory, query: str) -> list[tuple[str, str | None, str | None]]:
        return [(r["id"], r["superseded_by"], r["role"]) for r in store.search(query, user_id="maria")["results"]]

    for query in ("Where does Maria live?", "What did you recommend to read?"):
        assert seen(copy, query) == seen(memory, query)
