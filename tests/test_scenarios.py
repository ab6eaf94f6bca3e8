"""The scenario suite (issue #33): its chats say what its questions claim, in the order they claim, and
the runner works end to end on a real Memory. What the library scores on it is the benchmark's to
report (benchmarks/results/scenarios/), never asserted here."""

from __future__ import annotations

from pathlib import Path

import pytest

from localmem.bench import scenarios
from localmem.bench.scenarios import Chat, holds, is_assistant, matches
from localmem.protocols import Embedder

CHATS = scenarios.load()


def _first_user_turn(chat: Chat, values: tuple[str, ...]) -> int | None:
    return next((i for i, t in enumerate(chat.turns) if matches(t.user, values)), None)


def test_the_suite_is_big_enough_and_covers_every_kind() -> None:
    assert len(CHATS) >= 32
    assert len({c.user for c in CHATS}) == len(CHATS), "one user per chat: scopes must not mix"
    for kind in scenarios.KINDS:
        assert sum(c.kind == kind for c in CHATS) >= (3 if kind != "control" else 2), kind
    assert sum(q.type == "assistant" for c in CHATS for q in c.questions) >= 10


@pytest.mark.parametrize("chat", CHATS, ids=[c.user for c in CHATS])
def test_a_chat_is_well_formed(chat: Chat) -> None:
    assert chat.user == chat.user.lower() and chat.user.isalpha()
    assert chat.kind in scenarios.KINDS
    dates = [t.date for t in chat.turns]
    assert dates == sorted(dates) and dates[0].startswith("2026-"), "adds go forward in time"
    for turn in chat.turns:
        # A leading "Name: " would make the library read a speaker out of the message (episodes.py).
        assert ":" not in turn.user.split(" ", 1)[0] and turn.user.strip() and turn.assistant.strip()
    name = chat.user.capitalize()
    corrected = [q for q in chat.questions if q.type == "present" and q.stale]
    assert bool(corrected) == (chat.kind != "control"), "a chat has a correction unless it is a control"
    assert all(q.kind == chat.kind for q in corrected)
    for q in chat.questions:
        assert name in q.ask, f"a question names the person: {q.ask}"
        if q.type == "present":
            assert q.current and not q.expect
            current = _first_user_turn(chat, q.current)
            assert current is not None, f"{q.ask}: the user never says {q.current}"
            if q.stale:
                stale = _first_user_turn(chat, q.stale)
                assert stale is not None and stale < current, f"{q.ask}: {q.stale} is said before {q.current}"
                assert chat.turns[current].date > chat.turns[stale].date
        elif q.type == "past":
            assert q.expect and q.kind == chat.kind
            old = {v for p in corrected for v in p.stale}
            assert set(q.expect) & old, f"{q.ask}: the past question asks for a superseded value"
            assert _first_user_turn(chat, q.expect) is not None
        else:
            assert q.type == "assistant" and q.expect
            assert any(matches(t.assistant, q.expect) for t in chat.turns)
            assert not any(matches(t.user, q.expect) for t in chat.turns), "only the assistant said it"


def test_values_match_whole_words_any_case_and_in_a_fact_s_sources() -> None:
    assert matches("We moved to PORTO.", ["Porto"]) and matches("it's $55 now", ["$55"])
    assert not matches("(14 March 2026) hi", ["14th"]) and not matches("about 140", ["40"])
    fact = {"memory": "Moved last month", "speaker": "maria",
            "sources": [{"memory": "(23 February 2026) we moved to Porto last month"}]}
    assert holds(fact, ["porto"]) and not holds(fact, ["Lisbon"])
    assert is_assistant({"speaker": "assistant"}) and not is_assistant({"speaker": "maria"})
    assert not is_assistant({"role": "user", "speaker": "assistant"})  # a role, where given, decides


def test_two_runs_compare_question_by_question() -> None:
    def run(first: bool) -> dict[str, object]:
        q = {"user": "maria", "ask": "Where does Maria live?", "type": "present", "current_first": first,
             "current_first_own": first,
             "stale_only": False, "results": []}
        return {"modes": {"infer=False": {"summary": scenarios.summarise([q]), "questions": [q]}}}

    table = scenarios.compare(run(False), run(True))
    assert "| infer=False | current_first | 0.0 | 1.0 | 1 | 0 | 1.00 |" in table


@pytest.mark.slow
def test_the_runner_on_two_chats_with_a_real_memory(tmp_path: Path, real_embedder: Embedder) -> None:
    chats = CHATS[:2]
    result = scenarios.run_mode(chats, False, tmp_path, embedder=real_embedder)
    asked = sum(len(c.questions) for c in chats)
    assert result["add"]["adds"] == sum(len(c.turns) for c in chats)
    assert len(result["questions"]) == asked
    assert all(1 <= len(q["results"]) <= scenarios.TOP for q in result["questions"])
    summary = result["summary"]
    for key in ("current_first", "stale_only", "past_found", "assistant_found", "assistant_share"):
        assert summary[key] is not None and 0.0 <= summary[key] <= 1.0
    markdown = scenarios.render({"command": "test", "chats": 2, "questions": asked, "git": {},
                                 "modes": {"infer=False": result}})
    assert "| infer=False |" in markdown and "## infer=False: by correction kind" in markdown
