"""The Mem0 + Milvus quickstart (examples/quickstart.py), run as written on the real models."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from localmem import LocalmemWarning

from .conftest import plain
from .llm_contract import assert_fact_texts_honour_the_contract

pytestmark = pytest.mark.slow

QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "quickstart.py"


def test_quickstart_walkthrough_runs_and_returns_mem0_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    # conftest runs every test in a fresh tmp dir, so "./milvus.db" lands there.
    with pytest.warns(LocalmemWarning, match="1536"):
        names = runpy.run_path(str(QUICKSTART), run_name="__main__")
    m = names["m"]
    try:
        first = names["res"]["results"]
        # The facts are the real model's: assert what holds on any CPU (tests/llm_contract.py).
        assert first and {r["event"] for r in first} == {"ADD"}
        assert_fact_texts_honour_the_contract([r["memory"] for r in first],
                                              "I am working on improving my tennis skills.")
        memory_id = names["memory_id"]
        events = m.history(memory_id)
        assert [e["event"] for e in events] == ["ADD", "UPDATE", "DELETE"]
        assert events[1]["new_memory"] == "Likes to play tennis on weekends"
        exam = [r["memory"] for r in names["new_mem"]["results"] if r["event"] in {"ADD", "UPDATE"}]
        assert_fact_texts_honour_the_contract(exam, "I have a linear algebra midterm exam on November 20")
        remaining = m.get_all("alice")["results"]
        assert memory_id not in {r["id"] for r in remaining}
        assert all(set(r) >= {"id", "memory", "hash", "metadata", "created_at", "updated_at", "user_id"}
                   for r in remaining)
        assert Path("milvus.db").is_dir()
    finally:
        m.close()
    printed = capsys.readouterr().out
    assert "Likes to play tennis on weekends" in printed


def test_quickstart_search_ranks_the_tennis_memory_first() -> None:
    with pytest.warns(LocalmemWarning, match="1536"):
        names = runpy.run_path(str(QUICKSTART), run_name="__main__")
    m = names["m"]
    try:
        # The walk-through deleted the tennis memory at its end; add its updated text back as written
        # (no LLM: which words the model keeps differs between CPUs, the ranking must not).
        m.add("Likes to play tennis on weekends", user_id="alice", metadata={"category": "hobbies"}, infer=False)
        hits = m.search("What are Alice's hobbies", user_id="alice")["results"]
        assert plain(hits[0]["memory"]) == "Likes to play tennis on weekends", hits
        assert hits[0]["score"] >= hits[-1]["score"]
    finally:
        m.close()
