import pytest

from localmem.errors import InvalidFilterError
from localmem.filters import build_expression, literal
from localmem.records import Scope


def test_scope_and_filters_are_anded() -> None:
    expr = build_expression(Scope(user_id="alice"), {"category": "hobbies"})
    assert expr == '(user_id == "alice") and (metadata["category"] == "hobbies")'


def test_empty_everything_means_no_filter() -> None:
    assert build_expression(Scope(), None) == ""


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"n": {"gte": 2, "lt": 5}}, 'metadata["n"] >= 2 and metadata["n"] < 5'),
        ({"c": {"in": ["a", "b"]}}, 'metadata["c"] in ["a", "b"]'),
        ({"c": {"nin": ["a"]}}, 'metadata["c"] not in ["a"]'),
        ({"c": {"ne": True}}, 'metadata["c"] != true'),
        ({"tags": {"contains": "x"}}, 'json_contains(metadata["tags"], "x")'),
        ({"c": "*"}, 'exists metadata["c"]'),
        ({"OR": [{"a": 1}, {"b": 2.5}]}, '(metadata["a"] == 1) or (metadata["b"] == 2.5)'),
        ({"not": [{"a": 1}]}, 'not ((metadata["a"] == 1))'),
        ({"agent_id": "bot"}, 'agent_id == "bot"'),
    ],
)
def test_filter_shapes(filters: dict[str, object], expected: str) -> None:
    assert build_expression(Scope(), filters) == expected


def test_values_cannot_break_out_of_their_literal() -> None:
    hostile = 'alice" or user_id != "'
    expr = build_expression(Scope(user_id=hostile), None)
    assert expr == 'user_id == "alice\\" or user_id != \\""'
    assert literal("a\\b\nc'd") == '"a\\\\b\\nc\'d"'


@pytest.mark.parametrize(
    "filters",
    [
        {"bad key!": 1},
        {'x"]': 1},
        {"c": {"regex": "a"}},
        {"c": {"in": []}},
        {"c": {"in": "abc"}},
        {"c": {}},
        {"AND": {"a": 1}},
        {"c": [1, 2]},
        {"c": float("nan")},
        {"user_id": {"contains": "a"}},
    ],
)
def test_malformed_filters_are_rejected(filters: dict[str, object]) -> None:
    with pytest.raises(InvalidFilterError):
        build_expression(Scope(), filters)
