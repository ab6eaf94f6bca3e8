"""Two processes write through one real Milvus server: nothing lost, every history complete.

History for a server uri lives on the server (localmem/history/milvus.py); a third process
reads what both writers did, which a history file beside one writer could not show.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from localmem import LocalmemWarning, Memory, MemoryConfig
from localmem.config import VectorStoreConfig
from tests.serving import cli_env

pytestmark = pytest.mark.slow

WRITER = """
import json, sys
from localmem import Memory, MemoryConfig
from localmem.config import VectorStoreConfig
uri, collection, name, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
config = MemoryConfig(vector_store=VectorStoreConfig(uri=uri, collection_name=collection))
done = {}
with Memory(config) as memory:
    for i in range(n):
        for user in (name, "shared"):
            result = memory.add(f"{name} fact {i} for {user}", user_id=user, infer=False)["results"][0]
            done[result["id"]] = [result["memory"], ["ADD"]]
            if i % 5 == 0:
                memory.update(result["id"], f"{name} fact {i} for {user}, revised")
                done[result["id"]] = [f"{name} fact {i} for {user}, revised", ["ADD", "UPDATE"]]
            if i % 7 == 0:
                memory.delete(result["id"])
                done[result["id"]] = [None, done[result["id"]][1] + ["DELETE"]]
print(json.dumps(done))
"""


def _outputs(writers: list[subprocess.Popen[str]]) -> list[tuple[str, str, int]]:
    """(stdout, stderr, exit code) of every writer; all are waited for (or killed) before any is judged."""
    done = []
    try:
        for writer in writers:
            out, err = writer.communicate(timeout=600)
            done.append((out, err, writer.returncode))
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.communicate()
    return done


@pytest.fixture
def milvus_uri(milvus_server_uri: str) -> str:
    return milvus_server_uri  # the session's server (tests/conftest.py)


def test_two_processes_through_one_server_lose_nothing(milvus_uri: str, real_embedder, tmp_path: Path) -> None:
    collection, n = "two_writers", 30
    # Each writer runs in a folder of its own, as two separate applications would.
    folders = [tmp_path / name for name in ("p0", "p1")]
    writers = []
    for folder in folders:
        folder.mkdir()
        writers.append(subprocess.Popen([sys.executable, "-c", WRITER, milvus_uri, collection, folder.name, str(n)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
                                        cwd=folder))
    expected: dict[str, list[Any]] = {}
    for out, err, code in _outputs(writers):
        assert code == 0, err[-3000:]
        expected.update(json.loads(out.strip().splitlines()[-1]))
    assert len(expected) == 2 * 2 * n  # distinct ids from both processes

    config = MemoryConfig(vector_store=VectorStoreConfig(uri=milvus_uri, collection_name=collection))
    # Milvus 2.3 has no BM25 function: the documented fallback is dense search, with one warning.
    with pytest.warns(LocalmemWarning, match="no BM25"):
        reader = Memory(config, embedder=real_embedder)  # a third process's view
    with reader:
        stored: dict[str, str] = {}
        for user in ("p0", "p1", "shared"):
            stored |= {m["id"]: m["memory"] for m in reader.get_all(user_id=user, limit=1000)["results"]}
        alive = {i: text for i, (text, _) in expected.items() if text is not None}
        assert stored == alive
        for memory_id, (_, events) in expected.items():
            assert [e["event"] for e in reader.history(memory_id)] == events
        shared = reader.get_all(user_id="shared", limit=1000)["results"]
        # Revised texts are as written; added ones carry their date: "(28 November 2026) p0 fact ...".
        assert {m["memory"].split(") ")[-1].split()[0] for m in shared} == {"p0", "p1"}


SAME_TEXTS = """
import json, os, sys, time
from pathlib import Path
from localmem import Memory, MemoryConfig
from localmem.config import VectorStoreConfig
uri, collection, go, ready = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
config = MemoryConfig(vector_store=VectorStoreConfig(uri=uri, collection_name=collection))
with Memory(config) as memory:
    memory.add("warm-up", user_id="warm-up", infer=False)  # models loaded, connection made
    ready.touch()
    while not go.exists():  # both processes start their add at once
        time.sleep(0.001)
    messages = [{"role": "user", "content": f"note {i}: the meeting moved to room {i}"} for i in range(20)]
    # One call: its duplicate check runs before its write, as the other process's does.
    result = memory.add(messages, user_id="same", infer=False, timestamp="2026-11-20T10:00:00Z")
print(json.dumps([r["id"] for r in result["results"]]))
"""


def test_two_processes_adding_the_same_texts_store_each_once(milvus_uri: str, real_embedder, tmp_path: Path) -> None:
    """Both processes' duplicate checks run before either writes: stable ids make their writes one row each."""
    collection, go = "same_texts", tmp_path / "go"
    ready = [tmp_path / f"ready-{k}" for k in range(2)]
    writers = [subprocess.Popen([sys.executable, "-c", SAME_TEXTS, milvus_uri, collection, str(go), str(flag)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
                                cwd=tmp_path) for flag in ready]
    deadline = time.monotonic() + 300
    while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    ids = []
    for out, err, code in _outputs(writers):
        assert code == 0, err[-3000:]
        ids.append(json.loads(out.strip().splitlines()[-1]))
    assert len(ids[0]) == len(ids[1]) == 20

    config = MemoryConfig(vector_store=VectorStoreConfig(uri=milvus_uri, collection_name=collection))
    with pytest.warns(LocalmemWarning, match="no BM25"):
        reader = Memory(config, embedder=real_embedder)
    with reader:
        stored = reader.get_all(user_id="same", limit=1000)["results"]
        assert len(stored) == 20, f"{len(stored)} memories for 20 texts"
        assert {m["id"] for m in stored} == set(ids[0]) | set(ids[1])
        for memory in stored:
            events = reader.history(memory["id"])
            assert events and all(e["event"] == "ADD" and e["new_memory"] == memory["memory"] for e in events)


HOLDER = """
import sys, time
from localmem.config import VectorStoreConfig
from localmem.history.milvus import MilvusHistory
history = MilvusHistory(VectorStoreConfig(uri=sys.argv[1], collection_name=sys.argv[2]))
print(history.begin('{"state": "redo", "deletes": ["x"]}'), flush=True)
time.sleep(600)
"""


def test_an_intent_is_finished_by_another_process_only_once_its_writer_is_gone(milvus_uri: str) -> None:
    from localmem.history.milvus import MilvusHistory

    config = VectorStoreConfig(uri=milvus_uri, collection_name="intent_owner")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, milvus_uri, config.collection_name],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    history = MilvusHistory(config)
    try:
        assert holder.stdout is not None
        intent_id = int(holder.stdout.readline())
        assert history.intents() == []  # its writer runs: finishing it here could undo that writer's next write
        mine = history.begin('{"state": "redo", "deletes": ["y"]}')
        assert [i for i, _ in history.intents()] == [mine]
        holder.kill()
        holder.communicate(timeout=60)
        assert [i for i, _ in history.intents()] == sorted([intent_id, mine])
        history.mark(intent_id, '{"state": "undo", "remove": ["x"]}')  # a new version replaces the old
        assert dict(history.intents())[intent_id] == '{"state": "undo", "remove": ["x"]}'
        history.discard(intent_id)
        history.commit(mine, [])
        assert history.intents() == []
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.communicate(timeout=60)
        history.reset()
        history.close()


def test_server_history_keeps_order_export_ids_and_reset(milvus_uri: str) -> None:
    from localmem.history.milvus import MilvusHistory
    from localmem.records import Event, HistoryEvent

    def event(n: int, memory_id: str, kind: Event) -> HistoryEvent:
        return HistoryEvent(id=f"e{n}", memory_id=memory_id, old_memory=None if kind is Event.ADD else f"v{n - 1}",
                            new_memory=None if kind is Event.DELETE else f"v{n}", event=kind,
                            created_at="2026-01-01T00:00:00+00:00", updated_at=None if n == 0 else f"t{n}",
                            is_deleted=kind is Event.DELETE)

    config = VectorStoreConfig(uri=milvus_uri, collection_name="history_contract")
    first, second = MilvusHistory(config), MilvusHistory(config)  # two connections, as two processes have
    try:
        first.record([event(0, 'm"1', Event.ADD), event(1, 'm"1', Event.UPDATE)])
        second.record([event(2, 'm"1', Event.DELETE), event(3, "m2", Event.ADD)])
        assert [e.id for e in first.history('m"1')] == ["e0", "e1", "e2"]  # a quote in an id stays data
        assert first.history('m"1')[2] == event(2, 'm"1', Event.DELETE)
        assert [e.id for e in second.all_events()] == ["e0", "e1", "e2", "e3"]
        assert second.event_ids(["e1", "e3", "nope"]) == {"e1", "e3"}
        first.reset()
        assert second.all_events() == [] and second.history("m2") == []
    finally:
        first.close()
        second.close()
