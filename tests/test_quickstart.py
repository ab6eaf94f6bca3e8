"""The Mem0 + Milvus quickstart (examples/quickstart.py), run as written on the real models."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from localmem import LocalmemWarning

pytestmark = pytest.mark.slow

QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "quickstart.py"


def test_quickstart_walkthrough_runs_and_returns_mem0_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    # conftest runs every test in a fresh tmp dir, so "./milvus.db" lands there.
    with pytest.warns(LocalmemWarning, match="1536"):
        names = runpy.run_path(str(QUICKSTART), run_name="__main__")
    m = names["m"]
    try:
        first = names["res"]["results"]
        assert [r["event"] for r in first] == ["ADD"]
        assert "tennis" in first[0]["memory"].lower()
        memory_id = names["memory_id"]
        events = m.history(memory_id)
        assert [e["event"] for e in events] == ["ADD", "UPDATE", "DELETE"]
        assert events[1]["new_memory"] == "Likes to play tennis on weekends"
        exam = [r for r in names["new_mem"]["results"] if r["event"] == "ADD"]
        assert exam and any("november 20" in r["memory"].lower() for r in exam), names["new_mem"]
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
        # The walk-through deleted the tennis memory at its end; add it back through the LLM.
        m.add("I am working on improving my tennis skills.", user_id="alice", metadata={"category": "hobbies"})
        hits = m.search("What are Alice's hobbies", user_id="alice")["results"]
        assert "tennis" in hits[0]["memory"].lower(), hits
        assert hits[0]["score"] >= hits[-1]["score"]
    finally:
        m.close()
