"""kill -9 between the journal, the store and the history: a real subprocess dies at each named step.

The child opens a real Milvus Lite folder (or a collection on the session's real Milvus
server, whose history and journal live on the server), makes acknowledged writes, then sets
LOCALMEM_CRASH_AT and starts one more operation, which SIGKILLs the child at that step
(writer.checkpoint). This process then reopens the store, which runs the journal's recovery,
and checks that store and history agree, that every acknowledged write is there, and that
the interrupted operation was completed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from localmem import LocalmemWarning, Memory, MemoryConfig, VectorStoreConfig
from localmem.embedders.fake import HashingEmbedder
from localmem.records import Event, HistoryEvent
from localmem.writer import CRASH_ENV

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")]

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from localmem import Memory, MemoryConfig, VectorStoreConfig
    from localmem.embedders.fake import HashingEmbedder
    from localmem.transfer import FORMAT, VERSION, import_store
    from localmem.writer import CRASH_ENV

    op, step, where, uri, collection = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4], sys.argv[5]
    memory = Memory(MemoryConfig(vector_store=VectorStoreConfig(uri=uri, collection_name=collection)),
                    embedder=HashingEmbedder())
    ids = [memory.add(f"fact {i} of {u}", user_id=u, infer=False)["results"][0]["id"]
           for u in ("u", "v") for i in range(3)]
    memory.update(ids[1], "fact one of u, revised")
    print(json.dumps(ids), flush=True)  # acknowledged
    if op == "import":
        lines = [{"type": "header", "format": FORMAT, "version": VERSION}]
        lines += [{"type": "memory", "id": f"imported-{i}", "memory": f"imported fact {i}", "user_id": "w",
                   "created_at": "2026-01-01T00:00:00+00:00",
                   "history": [{"id": f"event-{i}", "event": "ADD", "new_memory": f"imported fact {i}",
                                "created_at": "2026-01-01T00:00:00+00:00"}]} for i in range(300)]
        (where / "dump.jsonl").write_text("\\n".join(json.dumps(x) for x in lines) + "\\n")
    os.environ[CRASH_ENV] = step
    if op == "add":
        memory.add([{"role": "user", "content": "new fact a"}, {"role": "user", "content": "new fact b"}],
                   user_id="u", infer=False)
    elif op == "update":
        memory.update(ids[0], "fact zero of u, revised")
    elif op == "delete":
        memory.delete(ids[0])
    elif op == "delete_all":
        memory.delete_all(user_id="u")
    elif op == "reset":
        memory.reset()
    elif op == "import":
        import_store(memory, where / "dump.jsonl")
    print("survived", flush=True)
""")

CASES = [("add", "journaled"), ("add", "inserted"), ("add", "stored"),
         ("update", "journaled"), ("update", "stored"),
         ("delete", "journaled"), ("delete", "stored"),
         ("delete_all", "journaled"), ("delete_all", "stored"),
         ("reset", "journaled"), ("reset", "stored"),
         ("import", "journaled"), ("import", "inserted"), ("import", "stored")]


# On a server the journal lives in a collection there (history/milvus.py); one case per kind of
# operation at the step between store and history, plus each step of an add.
SERVER_CASES = [("add", "journaled"), ("add", "inserted"), ("add", "stored"), ("update", "stored"),
                ("delete", "stored"), ("delete_all", "stored"), ("reset", "stored"), ("import", "stored")]


def _lite(where: Path) -> VectorStoreConfig:
    return VectorStoreConfig(uri=str(where / "mem.db"))


def _crash(op: str, step: str, where: Path, store: VectorStoreConfig | None = None) -> list[str]:
    store = store or _lite(where)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(CRASH_ENV, None)
    child = subprocess.run([sys.executable, "-c", CHILD, op, step, str(where), store.uri, store.collection_name],
                           cwd=where, env=env, capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr[-3000:]
    assert "survived" not in child.stdout
    acknowledged: list[str] = json.loads(child.stdout.splitlines()[0])
    return acknowledged


_DATED = re.compile(r"^\(\d{1,2} [A-Z][a-z]+ \d{4}\) ")


def _agree(memory: Memory) -> dict[str, str]:
    """Store and history tell the same story; returns the live memories (id -> text)."""
    stored = {r.id: r.memory for r, _ in memory.store.iterate()}
    last: dict[str, HistoryEvent] = {}
    for event in memory.history_store.all_events():
        last[event.memory_id] = event
    for memory_id, text in stored.items():
        assert memory_id in last, f"{memory_id} is stored but has no history"
        assert last[memory_id].event is not Event.DELETE, f"{memory_id} is stored but its history says deleted"
        assert last[memory_id].new_memory == text, f"{memory_id}: store and history disagree on its text"
    for memory_id, event in last.items():
        if event.event is not Event.DELETE:
            assert memory_id in stored, f"history says {memory_id} is live but the store lost it"
    assert memory.history_store.intents() == []
    # What was said, without the "(28 November 2026) " an episode's stored text starts with.
    return {memory_id: _DATED.sub("", text, count=1) for memory_id, text in stored.items()}


@pytest.mark.parametrize(("op", "step"), CASES)
def test_a_kill_at_each_step_is_recovered_on_open(tmp_path: Path, op: str, step: str) -> None:
    _kill_and_recover(op, step, tmp_path, _lite(tmp_path))


@pytest.mark.parametrize(("op", "step"), SERVER_CASES)
def test_a_kill_at_each_step_is_recovered_on_open_through_a_server(tmp_path: Path, milvus_server_uri: str, op: str,
                                                                   step: str) -> None:
    store = VectorStoreConfig(uri=milvus_server_uri, collection_name=f"crash_{op}_{step}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LocalmemWarning)  # Milvus 2.3 has no BM25: dense search, said once
        _kill_and_recover(op, step, tmp_path, store)


def _kill_and_recover(op: str, step: str, tmp_path: Path, store: VectorStoreConfig) -> None:
    ids = _crash(op, step, tmp_path, store)
    memory = Memory(MemoryConfig(vector_store=store), embedder=HashingEmbedder())  # a fresh process: recovery
    try:
        live = _agree(memory)
        others = [i for i in ids if i not in live]
        # Every acknowledged write is there, and the interrupted one was completed (rolled forward).
        if op == "add":
            assert set(ids) <= set(live) and list(live.values()).count("new fact a") == 1
            assert "new fact b" in live.values()
        elif op == "update":
            assert not others and live[ids[0]] == "fact zero of u, revised" and live[ids[1]] == "fact one of u, revised"
        elif op == "delete":
            assert others == [ids[0]] and [e["event"] for e in memory.history(ids[0])] == ["ADD", "DELETE"]
        elif op == "delete_all":
            assert others == ids[:3] and set(ids[3:]) <= set(live)
        elif op == "reset":
            assert live == {} and memory.history_store.all_events() == []
        else:  # import: the batch in flight is complete; the next batch never started
            assert set(ids) <= set(live)
            imported = [i for i in live if i.startswith("imported-")]
            assert len(imported) == 256 and len(memory.history(imported[0])) == 1
    finally:
        memory.close()


RERUN = textwrap.dedent("""
    import sys
    from pathlib import Path
    from localmem import Memory, MemoryConfig, VectorStoreConfig
    from localmem.embedders.fake import HashingEmbedder
    from localmem.transfer import import_store

    where = Path(sys.argv[1])
    with Memory(MemoryConfig(vector_store=VectorStoreConfig(uri=str(where / "mem.db"))),
                embedder=HashingEmbedder()) as memory:
        summary = import_store(memory, where / "dump.jsonl", on_conflict="skip")
    print(summary.memories, summary.skipped)
""")


def test_a_re_run_of_import_skip_after_a_crash_completes_the_history(tmp_path: Path) -> None:
    """A re-run in a fresh process after a kill mid-batch: every row ends with its history, none twice."""
    _crash("import", "stored", tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(CRASH_ENV, None)
    run = subprocess.run([sys.executable, "-c", RERUN, str(tmp_path)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == ["44", "256"]  # the half-written batch was finished on open, then skipped
    memory = Memory(MemoryConfig(vector_store=VectorStoreConfig(uri=str(tmp_path / "mem.db"))),
                    embedder=HashingEmbedder())
    try:
        live = _agree(memory)
        imported = [i for i in live if i.startswith("imported-")]
        assert len(imported) == 300
        assert all(len(memory.history(i)) == 1 for i in imported)
    finally:
        memory.close()
