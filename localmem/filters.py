"""Turn scopes and Mem0-style ``filters=`` mappings into Milvus boolean expressions.

Every user value is rendered as a literal by ``literal()`` (quoted and escaped),
and every key is checked against a strict pattern, so a value such as
``'alice" or user_id != "'`` selects exactly the rows whose field equals that
string and never changes the shape of the expression.

Supported filter shapes (the Mem0 ones)::

    {"category": "hobbies"}                         equality
    {"priority": {"gte": 2, "lt": 5}}               eq ne gt gte lt lte
    {"category": {"in": ["a", "b"]}}                in, nin
    {"tags": {"contains": "x"}}                     a JSON-array metadata value holds x
    {"category": "*"}                               the key exists
    {"AND": [...]}, {"OR": [...]}, {"NOT": [...]}   combinators (also lower case)

``user_id``/``agent_id``/``run_id`` address the scope fields, ``speaker`` and
``kind`` ("episode"/"fact") the record's own fields, and ``timestamp`` the time
a memory was said, compared as a time: ``{"timestamp": {"gte": "2023-05-01",
"lt": 1683500000}}`` (each value Unix seconds, ISO 8601 or a datetime). Every
other key addresses ``metadata[key]``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from localmem.errors import InvalidFilterError, InvalidInputError
from localmem.records import SCOPE_KEYS, Scope
from localmem.temporal import parse_timestamp

# Record fields a filter may name besides the scope (the rest live in metadata).
_RECORD_KEYS = ("speaker", "kind", "timestamp")

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.]{0,127}$")
_COMPARE = {"eq": "==", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_COMBINATORS = {"and": " and ", "or": " or "}
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def literal(value: Any) -> str:
    """Render a scalar as an expression literal; strings are quoted and escaped."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidFilterError(f"filter value {value!r} is not a finite number")
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(_ESCAPES.get(ch, ch) for ch in value) + '"'
    raise InvalidFilterError(f"filter value {value!r} must be a string, number or boolean")


def scope_expression(scope: Scope) -> str:
    return " and ".join(f"{key} == {literal(value)}" for key, value in scope.as_dict().items())


def build_expression(scope: Scope, filters: Mapping[str, Any] | None) -> str:
    """AND the scope with the filters; an empty string means 'everything'."""
    parts = []
    if not scope.is_empty:
        parts.append(scope_expression(scope))
    if filters:
        if not isinstance(filters, Mapping):
            raise InvalidFilterError(f"filters must be a dict, got {type(filters).__name__}")
        parts.append(_node(filters))
    return " and ".join(f"({p})" for p in parts) if len(parts) > 1 else (parts[0] if parts else "")


def _node(node: Mapping[str, Any]) -> str:
    if not node:
        raise InvalidFilterError("an empty filter dict selects nothing useful; remove it")
    clauses = [_clause(str(key), value) for key, value in node.items()]
    return " and ".join(f"({c})" for c in clauses) if len(clauses) > 1 else clauses[0]


def _epoch(key: str, value: Any) -> Any:
    """A ``timestamp`` filter value as the stored Unix seconds; other keys' values as given."""
    if key != "timestamp" or value == "*":
        return value
    if isinstance(value, list | tuple):
        return [_epoch(key, v) for v in value]
    try:
        return int(parse_timestamp(value).timestamp())
    except InvalidInputError as exc:
        raise InvalidFilterError(f"filter on 'timestamp': {exc}") from None


def _clause(key: str, value: Any) -> str:
    lowered = key.lower()
    if lowered in _COMBINATORS or lowered == "not":
        if not isinstance(value, list) or not value or not all(isinstance(v, Mapping) for v in value):
            raise InvalidFilterError(f"{key} takes a non-empty list of filter dicts")
        if lowered == "not":
            return "not (" + " and ".join(f"({_node(v)})" for v in value) + ")"
        return _COMBINATORS[lowered].join(f"({_node(v)})" for v in value)
    field = _field(key)
    if isinstance(value, Mapping):
        if not value:
            raise InvalidFilterError(f"filter on {key!r} has no operator")
        return " and ".join(_operator(field, key, op, _epoch(key, arg)) for op, arg in value.items())
    value = _epoch(key, value)
    if value == "*":
        if field == "timestamp":
            return "timestamp != 0"
        return f"exists {field}" if field.startswith("metadata[") else f'{field} != ""'
    return f"{field} == {literal(value)}"


def _field(key: str) -> str:
    if not _KEY.match(key):
        raise InvalidFilterError(
            f"filter key {key!r} is not allowed: use letters, digits, '_', '-' or '.', starting with a letter")
    if key in SCOPE_KEYS or key in _RECORD_KEYS:
        return key
    return f"metadata[{literal(key)}]"


def _operator(field: str, key: str, op: str, arg: Any) -> str:
    if op in _COMPARE:
        return f"{field} {_COMPARE[op]} {literal(arg)}"
    if op in ("in", "nin"):
        if not isinstance(arg, list | tuple) or not arg:
            raise InvalidFilterError(f"'{op}' on {key!r} needs a non-empty list")
        items = "[" + ", ".join(literal(v) for v in arg) + "]"
        return f"{field} {'in' if op == 'in' else 'not in'} {items}"
    if op == "contains":
        if not field.startswith("metadata["):
            raise InvalidFilterError(f"'contains' applies to list-valued metadata, not to {key!r}")
        return f"json_contains({field}, {literal(arg)})"
    raise InvalidFilterError(
        f"unknown filter operator {op!r} on {key!r}; use one of "
        f"{sorted([*_COMPARE, 'in', 'nin', 'contains'])}")
