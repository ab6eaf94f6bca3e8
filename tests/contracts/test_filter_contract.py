"""Every documented filter shape, run against each real backend: the exact ids come back.

Fixed rows are inserted through the store; each case names the rows it must select, and
both read paths (list, i.e. get_all, and search) are checked. Rows lacking a key follow
the meaning documented in localmem/filters.py: positive tests are false there, ``ne``,
``nin`` and ``NOT`` are complements within the scope.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from localmem.errors import InvalidFilterError
from localmem.records import Kind, MemoryRecord, Scope, text_hash
from tests.contracts.conftest import DIMS, STORE_BACKENDS, Store, backend, drop, new_collection, open_store

QUOTED = 'it\'s "quoted" \\ here'
# id -> (scope, metadata). "u" is the scope every case reads; r6 belongs to "v".
ROWS: dict[str, tuple[Scope, dict[str, Any]]] = {
    "r1": (Scope("u"), {"cat": "a", "n": 1, "tags": ["x", "y"], "flag": True}),
    "r2": (Scope("u", agent_id="bot"), {"cat": "b", "n": 5, "tags": ["y"]}),
    "r3": (Scope("u", run_id="run1"), {"cat": "c", "n": 2.5, "flag": False, "note": QUOTED}),
    "r4": (Scope("u"), {}),
    "r5": (Scope("u", agent_id="other"), {"cat": "a", "n": "five"}),
    "r6": (Scope("v"), {"cat": "a", "n": 1}),
}
IN_U = {"r1", "r2", "r3", "r4", "r5"}
# id -> (kind, speaker, timestamp) for the record's own fields; rows not named are facts without
# speaker or time. 1683500000 is 2023-05-07T23:33:20Z, 1690000000 2023-07-22, 1700000000 2023-11-14.
FIELDS: dict[str, tuple[Kind, str | None, int | None]] = {
    "r1": ("episode", "Jo", 1683500000),
    "r2": ("fact", "Al", 1690000000),
    "r4": ("episode", "Jo", 1700000000),
    "r6": ("episode", "Jo", 1683500000),
}

CASES: list[tuple[dict[str, Any], set[str]]] = [
    # equality and comparisons on metadata
    ({"cat": "a"}, {"r1", "r5"}),
    ({"cat": {"eq": "a"}}, {"r1", "r5"}),
    ({"cat": {"ne": "a"}}, {"r2", "r3", "r4"}),
    ({"n": {"gt": 1}}, {"r2", "r3"}),
    ({"n": {"gte": 1}}, {"r1", "r2", "r3"}),
    ({"n": {"lt": 5}}, {"r1", "r3"}),
    ({"n": {"lte": 5}}, {"r1", "r2", "r3"}),
    ({"n": {"gte": 2, "lt": 5}}, {"r3"}),
    ({"n": 2.5}, {"r3"}),
    ({"flag": True}, {"r1"}),
    ({"flag": False}, {"r3"}),
    ({"note": QUOTED}, {"r3"}),
    ({"cat": 'a" or cat != "'}, set()),
    # in / nin (metadata and scope keys)
    ({"cat": {"in": ["a", "b"]}}, {"r1", "r2", "r5"}),
    ({"cat": {"in": ["c"]}}, {"r3"}),
    ({"cat": {"nin": ["a", "b"]}}, {"r3", "r4"}),
    ({"n": {"in": [1, 5]}}, {"r1", "r2"}),
    ({"cat": {"in": ["a"]}, "n": {"nin": [1]}}, {"r5"}),
    # contains, exists
    ({"tags": {"contains": "x"}}, {"r1"}),
    ({"tags": {"contains": "y"}}, {"r1", "r2"}),
    ({"cat": "*"}, {"r1", "r2", "r3", "r5"}),
    # combinators, either case, nested
    ({"AND": [{"cat": "a"}, {"n": 1}]}, {"r1"}),
    ({"and": [{"cat": "a"}, {"n": 1}]}, {"r1"}),
    ({"OR": [{"cat": "b"}, {"n": 2.5}]}, {"r2", "r3"}),
    ({"or": [{"cat": "b"}, {"n": 2.5}]}, {"r2", "r3"}),
    ({"NOT": [{"cat": "a"}]}, {"r2", "r3", "r4"}),
    ({"not": [{"cat": "a"}, {"n": 1}]}, {"r2", "r3", "r4", "r5"}),
    ({"NOT": [{"cat": "*"}]}, {"r4"}),
    ({"NOT": [{"tags": {"contains": "x"}}]}, {"r2", "r3", "r4", "r5"}),
    ({"NOT": [{"n": {"gt": 1}}]}, {"r1", "r4", "r5"}),
    ({"NOT": [{"NOT": [{"cat": "a"}]}]}, {"r1", "r5"}),
    ({"NOT": [{"cat": {"nin": ["a"]}}]}, {"r1", "r5"}),
    ({"AND": [{"OR": [{"cat": "a"}, {"cat": "b"}]}, {"NOT": [{"n": {"gt": 1}}]}]}, {"r1", "r5"}),
    ({"OR": [{"AND": [{"cat": "a"}, {"flag": True}]}, {"NOT": [{"cat": "*"}]}]}, {"r1", "r4"}),
    # scope keys as filters (unset is "missing")
    ({"agent_id": "bot"}, {"r2"}),
    ({"agent_id": "*"}, {"r2", "r5"}),
    ({"agent_id": {"ne": "bot"}}, {"r1", "r3", "r4", "r5"}),
    ({"agent_id": {"in": ["bot", "other"]}}, {"r2", "r5"}),
    # the record's own fields: speaker, kind, timestamp (unset speaker and unknown time are "missing")
    ({"speaker": "Jo"}, {"r1", "r4"}),
    ({"speaker": "*"}, {"r1", "r2", "r4"}),
    ({"speaker": {"ne": "Jo"}}, {"r2", "r3", "r5"}),
    ({"speaker": {"in": ["Jo", "Al"]}}, {"r1", "r2", "r4"}),
    ({"kind": "episode"}, {"r1", "r4"}),
    ({"kind": {"nin": ["episode"]}}, {"r2", "r3", "r5"}),
    ({"timestamp": {"gte": "2023-05-01", "lt": "2023-08-01"}}, {"r1", "r2"}),
    ({"timestamp": {"lt": 1690000000}}, {"r1"}),
    ({"timestamp": {"gt": "2023-06-01T00:00:00Z"}}, {"r2", "r4"}),
    ({"timestamp": 1683500000}, {"r1"}),
    ({"timestamp": "*"}, {"r1", "r2", "r4"}),
    ({"AND": [{"speaker": "Jo"}, {"timestamp": {"gte": "2023-06-01"}}]}, {"r4"}),
    ({"agent_id": {"nin": ["bot"]}}, {"r1", "r3", "r4", "r5"}),
    ({"agent_id": {"gt": "c"}}, {"r5"}),
    ({"agent_id": {"lt": "c"}}, {"r2"}),
    ({"run_id": "run1"}, {"r3"}),
    ({"NOT": [{"agent_id": "*"}]}, {"r1", "r3", "r4"}),
    ({"user_id": "v"}, set()),  # ANDed with the scope u
]


@pytest.fixture(scope="module", params=STORE_BACKENDS)
def filled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The fixed rows, inserted once per backend (the cases only read)."""
    uri, collection = backend(request, tmp_path_factory.mktemp("filters")), new_collection()
    copies: dict[str, Any] = {"cache_rows": 0} if request.param == "lite-uncopied" else {}
    store = open_store(uri, collection_name=collection, **copies)
    records = [MemoryRecord(id=rid, memory=f"memory {rid}", hash=text_hash(rid), scope=scope, metadata=metadata,
                            created_at=f"2026-01-01T00:00:0{i}+00:00", kind=FIELDS.get(rid, ("fact",))[0],
                            speaker=FIELDS.get(rid, (None, None))[1], timestamp=FIELDS.get(rid, (None, None, None))[2])
               for i, (rid, (scope, metadata)) in enumerate(ROWS.items())]
    rng = np.random.default_rng(0)
    store.insert(records, rng.standard_normal((len(records), DIMS)).astype(np.float32))
    yield store
    store.close()
    drop(uri, collection)


def _listed(store: Store, scope: Scope, filters: dict[str, Any] | None) -> set[str]:
    return {r.id for r in store.records(scope, filters, 100)}


def _searched(store: Store, scope: Scope, filters: dict[str, Any] | None) -> set[str]:
    query = np.ones((1, DIMS), dtype=np.float32)
    return {h.record.id for h in store.search(query, scope, filters, 100)}


@pytest.mark.parametrize(("filters", "expected"), CASES, ids=[str(f) for f, _ in CASES])
def test_each_filter_shape_selects_exactly_its_rows(filled: Store, filters: dict[str, Any],
                                                    expected: set[str]) -> None:
    scope = Scope("u")
    assert _listed(filled, scope, filters) == expected
    assert _searched(filled, scope, filters) == expected


def test_not_is_the_complement_within_the_scope(filled: Store) -> None:
    for filters, expected in CASES:
        complement = _listed(filled, Scope("u"), {"NOT": [filters]})
        assert complement == IN_U - expected, filters


def test_filters_without_a_scope_reach_every_scope(filled: Store) -> None:
    assert _listed(filled, Scope(), {"cat": "a"}) == {"r1", "r5", "r6"}
    assert _searched(filled, Scope(), {"user_id": "v"}) == {"r6"}
    assert _listed(filled, Scope(), {"user_id": {"in": ["u", "v"]}, "n": 1}) == {"r1", "r6"}


def test_malformed_filters_are_refused_before_the_store(filled: Store) -> None:
    deep: dict[str, Any] = {"cat": "a"}
    for _ in range(200):
        deep = {"NOT": [deep]}
    bad: dict[str, Any]
    for bad in (deep, {"cat": {"in": []}}, {"c": {"regex": "a"}}, {"agent_id": {"contains": "b"}},
                {"agent_id": 5}, {"cat": "\ud800"}, {"timestamp": {"gte": "last tuesday"}},
                {"speaker": {"contains": "J"}}, {"kind": 3}, {"timestamp": None}):
        with pytest.raises(InvalidFilterError):
            filled.records(Scope("u"), bad, 10)
        with pytest.raises(InvalidFilterError):
            _searched(filled, Scope("u"), bad)
