"""Search-query normalisation: a scope's own name is dropped from the query, nothing else."""

from __future__ import annotations

import pytest

from localmem.query import strip_scope
from localmem.records import Scope


@pytest.mark.parametrize(("query", "expected"), [
    ("What are Alice's hobbies?", "What are the hobbies?"),
    ("When is ALICE’s exam", "When is the exam"),
    ("what does alice like", "what does like"),
    ("Tell me about Alicebeth", "Tell me about Alicebeth"),  # only whole words
    ("Alice", "Alice"),  # nothing would be left: keep the query
])
def test_the_user_name_is_dropped(query: str, expected: str) -> None:
    assert strip_scope(query, Scope(user_id="alice")) == expected


def test_ids_that_are_not_names_are_left_alone() -> None:
    for user_id in ("conv-26", "5f0c1c9e-1b7e-4a59-9a59-2f1f0e0f6a11", "user42"):
        assert strip_scope(f"what did {user_id} say", Scope(user_id=user_id)) == f"what did {user_id} say"


def test_agent_names_and_regex_characters() -> None:
    assert strip_scope("What did Mary Ann's bot say", Scope(agent_id="Mary Ann")) == "What did the bot say"
    assert strip_scope("what about a+b (x)", Scope(user_id="a+b")) == "what about a+b (x)"  # not a name
