"""Hostile or broken input at the public API raises inside localmem's error tree, never a bare
RecursionError, TypeError, UnicodeEncodeError or a late StoreError, and writes nothing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from localmem import InvalidInputError, Memory
from localmem.embedders.fake import HashingEmbedder
from localmem.errors import InvalidFilterError
from localmem.protocols import Vectors
from tests.conftest import MemoryFactory, plain

pytestmark = pytest.mark.slow  # a real Milvus Lite per test


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.texts = 0

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.texts += len(texts)
        return super().embed(texts)


def _nested_filter(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"category": "a"}
    for _ in range(depth):
        node = {"AND": [node]}
    return node


def _nested_metadata(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        node = {"k": node}
    return node


def _refused(memory: Memory, calls: list[Callable[[], object]], error: type[Exception], words: str) -> None:
    for call in calls:
        with pytest.raises(error, match=words):
            call()
    assert memory.store.count() <= 1


def test_text_over_the_store_limit_is_refused_before_embedding(make_memory: MemoryFactory) -> None:
    embedder = CountingEmbedder()
    memory = make_memory(embedder)
    limit = memory.store.limits.max_text_bytes
    # A message is stored as an episode, "(28 Nov 2026) " before it: at the limit, that header is refused.
    kept = memory.add("x" * (limit - 32), user_id="u", infer=False)["results"][0]["id"]
    memory.update(kept, "x" * limit)  # the limit itself fits
    embedded = embedder.texts
    too_long, wide = "y" * (limit + 1), "é" * (limit // 2 + 1)  # the second is short in characters
    _refused(memory, [
        lambda: memory.add(too_long, user_id="u", infer=False),
        lambda: memory.add("z" * limit, user_id="u", infer=False),
        lambda: memory.add([{"role": "user", "content": "fine"}, {"role": "user", "content": wide}], user_id="u"),
        lambda: memory.update(kept, too_long),
        lambda: memory.search(wide, user_id="u"),
    ], InvalidInputError, "bytes of UTF-8")
    assert embedder.texts == embedded, "a refused text was embedded first"
    assert memory.get(kept)["memory"] == "x" * limit


def test_deep_filters_and_metadata_are_invalid_input(make_memory: MemoryFactory) -> None:
    memory = make_memory(HashingEmbedder())
    memory.add("one memory", user_id="u", infer=False)
    _refused(memory, [
        lambda: memory.get_all(user_id="u", filters=_nested_filter(200)),
        lambda: memory.search("one", user_id="u", filters=_nested_filter(200)),
    ], InvalidFilterError, "nested more than")
    _refused(memory, [lambda: memory.add("two", user_id="u", metadata=_nested_metadata(2000), infer=False)],
             InvalidInputError, "nested more than")


def test_lone_surrogates_are_invalid_input_and_store_nothing(make_memory: MemoryFactory) -> None:
    memory = make_memory(HashingEmbedder())
    kept = memory.add("one memory", user_id="u", infer=False)["results"][0]["id"]
    bad = "bad \udc80 text"
    _refused(memory, [
        lambda: memory.add(bad, user_id="u", infer=False),
        lambda: memory.add("ok", user_id="u", metadata={"k": bad}, infer=False),
        lambda: memory.add("ok", user_id="u", metadata={bad: 1}, infer=False),
        lambda: memory.add("ok", user_id=bad, infer=False),
        lambda: memory.update(kept, bad),
        lambda: memory.get(bad),
        lambda: memory.delete(bad),
        lambda: memory.history(bad),
        lambda: memory.search(bad, user_id="u"),
        lambda: memory.get_all(user_id="u", filters={"category": bad}),
    ], InvalidInputError, "surrogate")
    assert [plain(r["memory"]) for r in memory.get_all(user_id="u")["results"]] == ["one memory"]
