"""Memory ids never bend a store expression: validated where they enter, escaped by us where they are used."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from localmem import InvalidInputError, Memory
from localmem.embedders.fake import HashingEmbedder
from localmem.inputs import check_memory_id
from localmem.records import MemoryRecord, Scope, now_iso, text_hash
from localmem.transfer import FORMAT, VERSION, import_store

from .conftest import MemoryFactory

pytestmark = pytest.mark.slow

# The attack: pymilvus wraps string keys in '...' without escaping, so this id read as
# `id in ['x'] or id not in ['']` and one delete removed every row of every user.
ATTACK = "x'] or id not in ['"
HOSTILE = [ATTACK, 'x"] or id not in ["', "x' or '1'='1", "a b", "a\\", "", " ", "é", "a" * 65, "\n", "a\x00"]


def _seed(memory: Memory) -> list[str]:
    return [memory.add(f"fact number {i} about {user}", user_id=user, infer=False)["results"][0]["id"]
            for user in ("alice", "bob") for i in range(4)]


def _file(path: Path, memory_id: str, user: str = "mallory") -> Path:
    header = {"type": "header", "format": FORMAT, "version": VERSION}
    line = {"type": "memory", "id": memory_id, "memory": "planted", "user_id": user, "created_at": now_iso(),
            "history": []}
    path.write_text(json.dumps(header) + "\n" + json.dumps(line) + "\n", encoding="utf-8")
    return path


def test_import_refuses_the_attack_id_and_nothing_is_deleted(make_memory: MemoryFactory, tmp_path: Path) -> None:
    memory = make_memory(HashingEmbedder())
    seeded = _seed(memory)
    with pytest.raises(InvalidInputError, match="not a memory id"):
        import_store(memory, _file(tmp_path / "evil.jsonl", ATTACK))
    assert memory.store.count() == len(seeded)
    with pytest.raises(InvalidInputError):
        memory.delete(ATTACK)
    with pytest.raises(InvalidInputError):
        memory.get(ATTACK)
    with pytest.raises(InvalidInputError):
        memory.update(ATTACK, "x")
    with pytest.raises(InvalidInputError):
        memory.history(ATTACK)
    assert memory.store.count() == len(seeded)


@pytest.mark.parametrize("memory_id", [i for i in HOSTILE if 0 < len(i) <= 64])  # what the key field holds
def test_the_store_escapes_any_id_itself(make_memory: MemoryFactory, memory_id: str) -> None:
    """Below validation (an id planted by an older version, a direct store user): get/delete touch that row only."""
    embedder = HashingEmbedder()
    memory = make_memory(embedder)
    seeded = _seed(memory)
    planted = MemoryRecord(id=memory_id, memory="planted", hash=text_hash("planted"), scope=Scope("mallory"),
                           created_at=now_iso())
    memory.store.insert([planted], embedder.embed(["planted"]))
    assert [r.id for r in memory.store.get([memory_id])] == [memory_id]
    assert list(memory.store.get_vectors([memory_id])) == [memory_id]
    memory.store.delete([memory_id])
    assert memory.store.get([memory_id]) == []
    assert sorted(r.id for r in memory.store.get(seeded)) == sorted(seeded)
    assert memory.store.count() == len(seeded)


def test_delete_all_of_the_attackers_scope_leaves_other_users_alone(make_memory: MemoryFactory) -> None:
    embedder = HashingEmbedder()
    memory = make_memory(embedder)
    seeded = _seed(memory)
    planted = MemoryRecord(id=ATTACK, memory="planted", hash=text_hash("planted"), scope=Scope("mallory"),
                           created_at=now_iso())
    memory.store.insert([planted], embedder.embed(["planted"]))
    memory.delete_all(user_id="mallory")
    assert memory.store.count() == len(seeded)
    assert memory.get_all(user_id="mallory")["results"] == []


@pytest.mark.parametrize("memory_id", HOSTILE)
def test_bad_ids_are_refused_with_a_clear_error(memory_id: str) -> None:
    with pytest.raises(InvalidInputError, match="memory_id"):
        check_memory_id(memory_id)


@pytest.mark.parametrize("memory_id", [str(uuid.uuid4()), "mem0:abc-1", "A.b_c", "a" * 64])
def test_uuids_and_plain_ids_pass(memory_id: str) -> None:
    assert check_memory_id(memory_id) == memory_id
