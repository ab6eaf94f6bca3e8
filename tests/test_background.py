"""Background extraction (config ``background_extraction``): add() returns once the messages are
stored, a thread draws their facts from a queue in the history database, and nothing acknowledged
is lost, whether the process closes, fails a job or is killed (a real SIGKILL, as in test_crash.py).

A scripted model whose extraction waits for the test's go-ahead makes each state observable;
one slow test runs the bundled models.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from localmem import ConfigError, ExtractionError, InvalidInputError, Memory, MemoryConfig, VectorStoreConfig
from localmem.background import BackgroundExtractor, Progress
from localmem.embedders.fake import HashingEmbedder
from localmem.history.sqlite import SQLiteHistory
from localmem.jobs import Job
from localmem.journal import Intent
from localmem.protocols import Candidate
from localmem.records import Decision, Event, Fact, Message, Scope
from localmem.writer import CRASH_ENV

from .conftest import MemoryFactory
from .test_crash import _agree

ROOT = Path(__file__).resolve().parents[1]


class GatedModel:
    """Extracts ``facts`` (or ``by_message[first message]``) once ``go`` is set; ``fail`` makes it raise."""

    def __init__(self, facts: Sequence[str] = (), *, gated: bool = True,
                 by_message: dict[str, list[str]] | None = None) -> None:
        self.facts = list(facts)
        self.by_message = by_message or {}
        self.go = threading.Event()
        if not gated:
            self.go.set()
        self.fail: Exception | None = None
        self.seen: list[str] = []

    def extract_facts(self, messages: Sequence[Message], custom_prompt: str | None = None) -> list[Fact]:
        assert self.go.wait(30), "the test never let extraction go"
        self.seen += [m.content for m in messages]
        if self.fail is not None:
            raise self.fail
        return [Fact(f, sources=(0,)) for f in self.by_message.get(messages[0].content, self.facts)]

    def reconcile(self, fact: Fact, candidates: Sequence[Candidate], custom_prompt: str | None = None) -> Decision:
        return Decision(Event.ADD, fact.text)

    def close(self) -> None:
        pass


def _background(make_memory: MemoryFactory, model: GatedModel) -> Memory:
    return make_memory(HashingEmbedder(), model, background_extraction=True)


def _facts(memory: Memory, user: str = "u") -> list[dict[str, Any]]:
    return [r for r in memory.get_all(user_id=user)["results"] if r.get("kind") == "fact"]


def test_add_returns_the_stored_message_and_its_facts_follow(make_memory: MemoryFactory) -> None:
    model = GatedModel(["Plays tennis on Sundays"])
    memory = _background(make_memory, model)
    (change,) = memory.add("I play tennis every Sunday", user_id="u")["results"]
    assert change["event"] == "ADD" and change["kind"] == "episode" and change["flags"] == ["extraction_queued"]
    # Findable before the model has said anything: the message is the memory for now.
    assert [r["id"] for r in memory.get_all(user_id="u")["results"]] == [change["id"]]
    assert memory.search("tennis", user_id="u")["results"][0]["id"] == change["id"]
    assert memory.wait_for_extraction(0.2) is False  # the job is still under way
    model.go.set()
    assert memory.wait_for_extraction(30) is True
    (fact,) = _facts(memory)
    assert fact["memory"] == "Plays tennis on Sundays"
    assert [s["id"] for s in fact["sources"]] == [change["id"]]
    # The episode is now covered by its fact, and that bookkeeping is no event in its history.
    assert [r["id"] for r in memory.get_all(user_id="u")["results"]] == [fact["id"]]
    assert [h["event"] for h in memory.history(change["id"])] == ["ADD"]
    assert [h["event"] for h in memory.history(str(fact["id"]))] == ["ADD"]
    assert memory.history_store.jobs() == []
    _agree(memory)


class ManyModel(GatedModel):
    """Also reads several add() calls in one batch, recording the batches."""

    def __init__(self, facts: Sequence[str]) -> None:
        super().__init__(facts)
        self.batches: list[int] = []

    def extract_many(self, conversations: Sequence[Sequence[Message]],
                     custom_prompt: str | None = None) -> list[list[Fact]]:
        self.batches.append(len(conversations))
        return [self.extract_facts(messages, custom_prompt) for messages in conversations]


def test_calls_queued_while_the_model_is_busy_are_read_in_one_batch(make_memory: MemoryFactory) -> None:
    model = ManyModel(["Plays tennis on Sundays"])
    memory = _background(make_memory, model)
    changes = [memory.add(text, user_id="u")["results"][0] for text in ("I play tennis", "tennis on Sundays",
                                                                         "tennis again")]
    model.go.set()
    assert memory.wait_for_extraction(30) is True
    # The thread took the first call alone or with others; those queued meanwhile came together.
    assert model.batches and max(model.batches) >= 2 and sum(model.batches) <= 3
    (fact,) = _facts(memory)
    assert {s["id"] for s in fact["sources"]} <= {c["id"] for c in changes}
    assert memory.history_store.jobs() == []


def test_close_leaves_queued_jobs_for_the_next_open(make_memory: MemoryFactory, tmp_path: Path) -> None:
    said = {"I play tennis every Sunday": ["Plays tennis on Sundays"], "my dog Rex is two": ["Has a dog named Rex"]}
    model = GatedModel(by_message=said)
    memory = _background(make_memory, model)
    memory.add("I play tennis every Sunday", user_id="u")
    memory.add("my dog Rex is two", user_id="u")
    closing = threading.Thread(target=memory.close)
    closing.start()  # waits for the job under way, whose model is held at the gate
    model.go.set()
    closing.join(30)
    assert not closing.is_alive()
    history = SQLiteHistory(MemoryConfig(vector_store=VectorStoreConfig(uri=str(tmp_path / "mem.db")))
                            .resolved_history_path())
    try:
        assert len(history.jobs()) == 1  # the second add's extraction never started: kept
    finally:
        history.close()
    reopened = _background(make_memory, GatedModel(by_message=said, gated=False))
    assert reopened.wait_for_extraction(30) is True
    assert sorted(str(f["memory"]) for f in _facts(reopened)) == ["Has a dog named Rex", "Plays tennis on Sundays"]


def test_jobs_left_over_wait_for_an_add_that_loads_the_model(make_memory: MemoryFactory, tmp_path: Path) -> None:
    """Opened without the flag (a `localmem search`), a memory leaves the queue alone: no model loads."""
    said = {"I play tennis every Sunday": ["Plays tennis on Sundays"], "my dog Rex is two": ["Has a dog named Rex"]}
    model = GatedModel(by_message=said)
    first = _background(make_memory, model)
    first.add("I play tennis every Sunday", user_id="u")
    model.fail = RuntimeError("the process ends")  # the job stays queued
    model.go.set()
    first.close()
    later = GatedModel(by_message=said, gated=False)
    reader = make_memory(HashingEmbedder(), later)
    assert reader.search("tennis", user_id="u")["results"]
    reader.add("my cat is grey", user_id="u", infer=False)
    assert later.seen == [] and len(reader.history_store.jobs()) == 1
    reader.add("my dog Rex is two", user_id="u")  # inline, with the model: the queue follows
    assert reader.wait_for_extraction(30) is True
    assert sorted(str(f["memory"]) for f in _facts(reader)) == ["Has a dog named Rex", "Plays tennis on Sundays"]


def test_queued_extraction_travels_in_an_export(make_memory: MemoryFactory, tmp_path: Path) -> None:
    from localmem.transfer import export_store, import_store

    said = {"I play tennis every Sunday": ["Plays tennis on Sundays"]}
    model = GatedModel(by_message=said)
    source = _background(make_memory, model)
    (episode,) = source.add("I play tennis every Sunday", user_id="u")["results"]
    path = tmp_path / "export.jsonl"
    with path.open("w") as out:
        assert export_store(source, out).jobs == 1
    model.fail = RuntimeError("the process ends")
    model.go.set()
    source.close()
    target = make_memory(HashingEmbedder(), GatedModel(by_message=said, gated=False), name="target.db",
                         history_db_path=str(tmp_path / "target.sqlite"), background_extraction=True)
    assert import_store(target, path).jobs == 1
    assert target.wait_for_extraction(30) is True
    (fact,) = _facts(target)
    assert fact["memory"] == "Plays tennis on Sundays" and [s["id"] for s in fact["sources"]] == [episode["id"]]
    # Again: the messages are there already, so the job is the target's own business (done): not queued.
    assert import_store(target, path).jobs == 0 and target.history_store.jobs() == []
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["version"] == 2  # older localmem refuses it by its version, not at the job line
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join([*lines[:-1], json.dumps({"type": "job", "job": {"messages": []}})]) + "\n")
    with pytest.raises(InvalidInputError, match=rf"broken.jsonl:{len(lines)}: a malformed job line"):
        import_store(target, broken)


def test_a_message_deleted_before_its_extraction_yields_no_fact(make_memory: MemoryFactory) -> None:
    model = GatedModel(["Plays tennis on Sundays"])
    memory = _background(make_memory, model)
    (change,) = memory.add("I play tennis every Sunday", user_id="u")["results"]
    memory.delete(change["id"])
    model.go.set()
    assert memory.wait_for_extraction(30) is True
    assert memory.get_all(user_id="u")["results"] == []
    assert memory.history_store.jobs() == []


def test_a_failed_job_stays_queued_and_runs_with_the_next_add(make_memory: MemoryFactory,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    model = GatedModel(["Plays tennis on Sundays"], gated=False)
    model.fail = RuntimeError("the model's file went away")
    memory = _background(make_memory, model)
    with caplog.at_level(logging.WARNING, logger="localmem"):
        memory.add("I play tennis every Sunday", user_id="u")
        assert memory.wait_for_extraction(30) is False
    assert "stays queued" in caplog.text and "the model's file went away" in caplog.text
    assert len(memory.history_store.jobs()) == 1
    model.fail = None
    memory.add("I also swim", user_id="u")
    assert memory.wait_for_extraction(30) is True
    assert model.seen.count("I play tennis every Sunday") == 2  # tried again, then done once
    assert [f["memory"] for f in _facts(memory)] == ["Plays tennis on Sundays"]  # the second is a repeat


def test_an_extraction_error_in_the_background_keeps_the_message_flagged(make_memory: MemoryFactory) -> None:
    # No caller to raise to: the message stays the memory, flagged as on_extraction_failure="store_raw" does.
    model = GatedModel([], gated=False)
    model.fail = ExtractionError("the answer was cut at max_tokens")
    memory = _background(make_memory, model)
    (change,) = memory.add("I play tennis every Sunday", user_id="u")["results"]
    assert memory.wait_for_extraction(30) is True
    (stored,) = memory.get_all(user_id="u")["results"]
    assert stored["id"] == change["id"]
    assert stored["metadata"]["localmem_flags"] == ["unprocessed_raw_message"]
    assert [h["event"] for h in memory.history(change["id"])] == ["ADD"]


def test_a_history_that_keeps_no_queue_is_refused(make_memory: MemoryFactory, tmp_path: Path) -> None:
    class NoQueue(SQLiteHistory):
        keeps_jobs = False

    with pytest.raises(ConfigError, match="background_extraction needs a history that keeps its queue"):
        Memory(MemoryConfig(vector_store=VectorStoreConfig(uri=str(tmp_path / "q.db")), background_extraction=True),
               embedder=HashingEmbedder(), history=NoQueue(tmp_path / "h.sqlite"))
    # The store's file lock was released: the same folder opens again.
    make_memory(HashingEmbedder(), GatedModel([], gated=False), name="q.db").close()


def test_the_queue_changes_with_its_batch_and_a_journaled_batch_finishes_it(tmp_path: Path) -> None:
    history = SQLiteHistory(tmp_path / "h.sqlite")
    try:
        job = Job(messages=(Message("user", "hi", "Ann"),), scope=Scope("u"), moment=datetime.fromisoformat(
            "2026-11-29T10:00:00+00:00"), metadata={"k": [1]}, prompt=None, episodes=(("e1", "abc", (0,)),))
        assert Job.from_json(job.to_json()) == job
        history.commit(None, [], queue=[job.to_json()])
        ((job_id, body),) = history.jobs()
        assert Job.from_json(body) == job
        intent = Intent(done=(job_id,), queue=("next",))
        assert Intent.from_json(intent.to_json()) == intent
        left = history.begin(intent.to_json())  # a batch cut by a crash: recovery commits its queue changes
        history.commit(left, [], queue=intent.queue, done=intent.done)
        assert [b for _, b in history.jobs()] == ["next"] and history.intents() == []
        history.reset()
        assert history.jobs() == []
    finally:
        history.close()


def test_a_job_never_takes_another_scopes_message_as_its_source(make_memory: MemoryFactory) -> None:
    """A job names its episodes by id (an import file carries them): one of another scope is not its source."""
    memory = _background(make_memory, GatedModel(by_message={"I swim on Mondays": ["Swims on Mondays"]},
                                                 gated=False))
    (theirs,) = memory.add("I swim on Mondays", user_id="victim", infer=False)["results"]
    stored = memory.get(theirs["id"])
    crafted = Job(messages=(Message("user", "I swim on Mondays"),), scope=Scope(user_id="u"),
                  moment=datetime.now().astimezone(), episodes=((theirs["id"], stored["hash"], (0,)),))
    with memory.writer.lock:
        memory.writer.apply([], queue=[crafted.to_json()])
    assert memory.wait_for_extraction(30) is True
    assert _facts(memory, "u") == [] and _facts(memory, "victim") == []
    assert [r["id"] for r in memory.get_all(user_id="victim")["results"]] == [theirs["id"]]  # not covered


def test_a_wait_with_a_meaningless_timeout_is_refused(make_memory: MemoryFactory) -> None:
    memory = _background(make_memory, GatedModel(gated=False))
    for bad in (-1, float("nan"), "soon"):
        with pytest.raises(InvalidInputError, match="timeout must be None or a number of seconds"):
            memory.wait_for_extraction(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="through must be None or a job number"):
        memory.extraction_progress(0, "7")  # type: ignore[arg-type]
    assert memory.wait_for_extraction(0) is True


def test_wait_is_immediate_with_nothing_queued() -> None:
    extractor = BackgroundExtractor(lambda: [], lambda batch: None)
    assert extractor.wait(0).done is True
    extractor.notify()
    assert extractor.wait(5).done is True
    extractor.close()
    extractor.notify()  # after close: ignored, not a new thread
    assert extractor.wait(0) == Progress(done=True, failed=False, through=0, queued=0)


def test_a_wait_in_slices_is_not_extended_by_newer_jobs() -> None:
    """A client of ``localmem serve`` waits in slices, passing ``through`` back: later jobs never extend it."""
    queue = [(1, "first")]
    release = {1: threading.Event(), 2: threading.Event()}

    def run(batch: list[tuple[int, str]]) -> None:
        for job in batch:
            assert release[job[0]].wait(30)
            queue.remove(job)

    extractor = BackgroundExtractor(lambda: list(queue), run)
    extractor.notify()
    first = extractor.wait(0.05)
    assert first == Progress(done=False, failed=False, through=1, queued=1)
    queue.append((2, "second"))  # another caller's add, under way when the first job ends
    extractor.notify()
    release[1].set()
    assert extractor.wait(30, first.through) == Progress(done=True, failed=False, through=1, queued=1)
    assert extractor.wait(0.05).through == 2  # a new wait covers what is queued now
    release[2].set()
    assert extractor.wait(30).done
    extractor.close()


def test_async_memory_and_the_server_route_wait_for_extraction(make_memory: MemoryFactory) -> None:
    from fastapi.testclient import TestClient

    from localmem import AsyncMemory
    from localmem.server.app import create_app

    model = GatedModel(by_message={"I play tennis every Sunday": ["Plays tennis on Sundays"],
                                   "I swim on Mondays": ["Swims on Mondays"]})
    memory = AsyncMemory(memory=_background(make_memory, model))

    async def waits() -> None:
        await memory.add("I play tennis every Sunday", user_id="u")
        assert await memory.wait_for_extraction(0.1) is False
        # A wait holds none of the memory's workers: a search answers meanwhile.
        waiting = asyncio.ensure_future(memory.wait_for_extraction(30))
        assert (await memory.search("tennis", user_id="u"))["results"]
        model.go.set()
        assert await waiting is True

    asyncio.run(waits())
    model.go.clear()
    with TestClient(create_app(memory)) as http:
        http.post("/memories", json={"messages": "I swim on Mondays", "user_id": "u"}).raise_for_status()
        looked = http.post("/extraction/wait", json={}).json()
        assert looked == {"done": False, "failed": False, "through": looked["through"], "queued": 1}
        model.go.set()
        waited = http.post("/extraction/wait", json={"timeout": 30, "through": looked["through"]}).json()
        assert waited == {"done": True, "failed": False, "through": looked["through"], "queued": 0}
        for bad in (-1, "NaN", "x"):
            refused = http.post("/extraction/wait", json={"timeout": bad})
            assert refused.status_code == 422 and refused.json()["error"] == "InvalidInputError", bad
        stored = http.get("/memories", params={"user_id": "u"}).json()["results"]
        assert sorted(m["kind"] for m in stored) == ["fact", "fact"]


# -- kill -9 ---------------------------------------------------------------------------------
CHILD = textwrap.dedent("""
    import json, os, sys, threading
    from pathlib import Path
    from localmem import Memory, MemoryConfig, VectorStoreConfig
    from localmem.embedders.fake import HashingEmbedder
    from localmem.records import Decision, Event, Fact
    from localmem.writer import CRASH_ENV

    step, where = sys.argv[1], Path(sys.argv[2])
    go = threading.Event()

    class Model:
        def extract_facts(self, messages, custom_prompt=None):
            go.wait(60)
            return [Fact("Plays tennis on Sundays", sources=(0,))]
        def reconcile(self, fact, candidates, custom_prompt=None):
            return Decision(Event.ADD, fact.text)
        def close(self):
            pass

    memory = Memory(MemoryConfig(vector_store=VectorStoreConfig(uri=str(where / "mem.db")),
                                 background_extraction=True), embedder=HashingEmbedder(), llm=Model())
    if step == "stored during add":
        os.environ[CRASH_ENV] = "stored"  # the add's own batch dies between store and history
    added = memory.add("I play tennis every Sunday", user_id="u")
    print(json.dumps([r["id"] for r in added["results"]]), flush=True)  # acknowledged
    os.environ[CRASH_ENV] = "stored" if step == "stored during the job" else "extracted"
    go.set()
    memory.wait_for_extraction(60)
    print("survived", flush=True)
""")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@pytest.mark.parametrize("step", ["stored during add", "extracted", "stored during the job"])
def test_a_kill_loses_no_acknowledged_extraction(tmp_path: Path, step: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(CRASH_ENV, None)
    child = subprocess.run([sys.executable, "-c", CHILD, step, str(tmp_path)], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr[-3000:]
    assert "survived" not in child.stdout
    acknowledged = json.loads(child.stdout.splitlines()[0]) if child.stdout.strip() else []
    assert bool(acknowledged) is (step != "stored during add")  # that add never returned
    memory = Memory(MemoryConfig(vector_store=VectorStoreConfig(uri=str(tmp_path / "mem.db")),
                                 background_extraction=True),
                    embedder=HashingEmbedder(), llm=GatedModel(["Plays tennis on Sundays"], gated=False))
    try:
        assert memory.wait_for_extraction(30) is True
        live = _agree(memory)
        assert memory.history_store.jobs() == []
        (fact,) = _facts(memory)
        (episode,) = [i for i, text in live.items() if text == "I play tennis every Sunday"]
        assert acknowledged in ([], [episode])
        assert [s["id"] for s in fact["sources"]] == [episode]
        assert list(live.values()).count("Plays tennis on Sundays") == 1  # done once, not twice
    finally:
        memory.close()


@pytest.mark.slow
def test_the_bundled_models_extract_in_the_background(tmp_path: Path) -> None:
    with Memory(MemoryConfig(vector_store=VectorStoreConfig(uri=str(tmp_path / "mem.db")),
                             background_extraction=True)) as memory:
        (change,) = memory.add([{"role": "user", "content": "I'm Alice and I play tennis every Sunday."}],
                               user_id="alice")["results"]
        assert change["kind"] == "episode"
        assert memory.wait_for_extraction(120) is True
        facts = _facts(memory, "alice")
        assert facts, "the model drew no fact from a plain statement"
        assert all([s["id"] for s in f["sources"]] == [change["id"]] for f in facts)
        assert memory.search("Which sport does Alice play?", user_id="alice")["results"]
