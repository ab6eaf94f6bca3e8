"""The filter parser (localmem/filters.py) and the Milvus rendering's escaping.

What each shape selects is checked on real stores in tests/contracts/test_filter_contract.py;
these tests pin the parsed form and the refusals, which need no store.
"""

import pytest

from localmem.errors import InvalidFilterError
from localmem.filters import MAX_FILTER_DEPTH, And, Compare, Contains, Exists, In, Key, Not, Or, parse_filters
from localmem.records import Scope
from localmem.vector_stores.milvus_filters import literal, render

CAT, N = Key("cat"), Key("n")


@pytest.mark.parametrize(
    ("filters", "tree"),
    [
        ({"cat": "a"}, Compare(CAT, "eq", "a")),
        ({"n": {"gte": 2, "lt": 5}}, And((Compare(N, "gte", 2), Compare(N, "lt", 5)))),
        ({"cat": {"ne": "a"}}, Not(Compare(CAT, "eq", "a"))),
        ({"cat": {"in": ["a", "b"]}}, In(CAT, ("a", "b"))),
        ({"cat": {"nin": ["a"]}}, Not(In(CAT, ("a",)))),
        ({"tags": {"contains": "x"}}, Contains(Key("tags"), "x")),
        ({"cat": "*"}, Exists(CAT)),
        ({"OR": [{"cat": "a"}, {"n": 2.5}]}, Or((Compare(CAT, "eq", "a"), Compare(N, "eq", 2.5)))),
        ({"not": [{"cat": "a"}, {"n": 1}]}, Not(And((Compare(CAT, "eq", "a"), Compare(N, "eq", 1))))),
        ({"And": [{"cat": "a"}]}, Compare(CAT, "eq", "a")),
        ({"agent_id": "bot"}, Compare(Key("agent_id"), "eq", "bot")),
    ],
)
def test_mem0_shapes_parse_into_typed_nodes(filters: dict[str, object], tree: object) -> None:
    assert parse_filters(filters) == tree


def test_no_filter_is_none() -> None:
    assert parse_filters(None) is None and parse_filters({}) is None
    assert render(Scope(), None) == ""


def test_values_cannot_break_out_of_their_literal() -> None:
    hostile = 'alice" or user_id != "'
    assert render(Scope(user_id=hostile), None) == 'user_id == "alice\\" or user_id != \\""'
    assert literal("a\\b\nc'd") == '"a\\\\b\\nc\'d"'
    assert '"x\\" or 1 == 1 or \\""' in render(Scope(), parse_filters({"cat": 'x" or 1 == 1 or "'}))


def test_nesting_is_capped_with_a_clear_error_not_a_recursion_error() -> None:
    def nested(depth: int) -> dict[str, object]:
        node: dict[str, object] = {"cat": "a"}
        for _ in range(depth - 1):
            node = {"NOT": [node]}
        return node

    assert parse_filters(nested(MAX_FILTER_DEPTH)) is not None
    for depth in (MAX_FILTER_DEPTH + 1, 200, 5000):
        with pytest.raises(InvalidFilterError, match="nested more than"):
            parse_filters(nested(depth))


@pytest.mark.parametrize(
    "filters",
    [
        {"bad key!": 1},
        {'x"]': 1},
        {"c": {"regex": "a"}},
        {"c": {"in": []}},
        {"c": {"in": "abc"}},
        {"c": {"in": list(range(2000))}},
        {"c": {}},
        {"AND": {"a": 1}},
        {"OR": []},
        {"c": [1, 2]},
        {"c": {"a": 1}},
        {"c": float("nan")},
        {"c": "\ud800"},
        {"user_id": {"contains": "a"}},
        {"user_id": 5},
        {"agent_id": ""},
        {1: "a"},
        ["not", "a", "dict"],
    ],
)
def test_malformed_filters_are_rejected(filters: object) -> None:
    with pytest.raises(InvalidFilterError):
        parse_filters(filters)
