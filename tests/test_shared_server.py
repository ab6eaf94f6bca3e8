"""Two processes write through one real Milvus server: nothing lost, every history complete.

History for a server uri lives on the server (localmem/history/milvus.py); a third process
reads what both writers did, which a history file beside one writer could not show.
"""

from __future__ import annotations

import json
import subprocess
import sys
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
    for writer in writers:
        out, err = writer.communicate(timeout=600)
        assert writer.returncode == 0, err[-3000:]
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
