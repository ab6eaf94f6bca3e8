"""Render a scope and a parsed filter (localmem/filters.py) as a Milvus boolean expression.

Two rules make the rendering safe and exact on Milvus Lite and on a server:

- Every user value becomes a literal through ``literal()`` (quoted and
  escaped) and every key was checked against a strict pattern by the parser, so
  a value such as ``'alice" or user_id != "'`` selects the rows whose field
  equals that string and never changes the shape of the expression.
- Every metadata test is made two-valued. Milvus gives a test on a missing (or
  null) JSON key no truth value, and ``not`` of that is still none, so
  ``not (metadata["cat"] == "a")`` would drop the rows without ``cat``; the same
  holds for an ordering test on a value of another type (``"five" > 1``). So each
  test is guarded: ``exists`` for the key, and for ``gt``/``gte``/``lt``/``lte`` a
  type test (``like "%"`` is true exactly for strings, ``exists x[0]`` for
  non-empty lists). Then ``not`` is the complement filters.py promises. One gap
  is left: Milvus has no test for "is an object" or "is an empty list", so an
  ordering test on a key holding one matches neither the filter nor its NOT.

``in`` on a JSON key is rendered as ORed equalities: Milvus Lite accepts ``in``
only on a schema field ("left side of 'in' must be a field reference").
"""

from __future__ import annotations

import math
from typing import Any

from localmem.errors import InvalidFilterError
from localmem.filters import And, Compare, Contains, Exists, Filter, In, Key, Not, Or
from localmem.records import Scope

_COMPARE = {"eq": "==", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
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


def render(scope: Scope, flt: Filter | None) -> str:
    """AND the scope with the filter; an empty string means 'everything'."""
    parts = []
    if not scope.is_empty:
        parts.append(scope_expression(scope))
    if flt is not None:
        parts.append(_render(flt))
    return " and ".join(f"({p})" for p in parts) if len(parts) > 1 else (parts[0] if parts else "")


def _render(node: Filter) -> str:
    if isinstance(node, And):
        return " and ".join(f"({_render(item)})" for item in node.items)
    if isinstance(node, Or):
        return " or ".join(f"({_render(item)})" for item in node.items)
    if isinstance(node, Not):
        return f"not ({_render(node.item)})"
    if node.key.is_field:
        return _field_test(node)
    return _metadata_test(node)


def _field_test(node: Compare | In | Contains | Exists) -> str:
    """Scope fields and ``speaker`` hold "" when unset, ``timestamp`` 0 when unknown (Milvus Lite cannot
    filter NULL scalars): the placeholder counts as missing."""
    field = node.key.name
    unset = f"{field} != {0 if field == 'timestamp' else literal('')}"
    if isinstance(node, Exists):
        return unset
    if isinstance(node, In):
        return f"{field} in [{', '.join(literal(v) for v in node.values)}]"
    if isinstance(node, Compare):
        test = f"{field} {_COMPARE[node.op]} {literal(node.value)}"
        # "" < "b", 0 < any time: without the guard an ordering test would match rows where the field is unset.
        return test if node.op == "eq" else f"{unset} and {test}"
    raise InvalidFilterError(f"'contains' applies to list-valued metadata, not to {field!r}")


def _metadata_test(node: Compare | In | Contains | Exists) -> str:
    field = _json_field(node.key)
    exists = f"exists {field}"
    if isinstance(node, Exists):
        return exists
    if isinstance(node, In):
        test = " or ".join(f"{field} == {literal(v)}" for v in node.values)
    elif isinstance(node, Contains):
        test = f"json_contains({field}, {literal(node.value)})"
    else:
        test = f"{field} {_COMPARE[node.op]} {literal(node.value)}"
        if node.op != "eq":  # equality is two-valued across types; ordering is not
            test = f"{_same_type(field, node.value)} and {test}"
    # Parenthesised: a Milvus 2.3 server parses `exists x and y` as `exists (x and y)`.
    return f"({exists}) and ({test})"


def _same_type(field: str, value: Any) -> str:
    """A two-valued test that the JSON value can be ordered against ``value``."""
    if isinstance(value, str):
        return f'({field} like "%")'
    # `exists x[0]`: x is a non-empty list (a Milvus 2.3 server cannot parse an empty list literal).
    return f'not ({field} like "%") and not (exists {field}[0])'


def _json_field(key: Key) -> str:
    return f"metadata[{literal(key.name)}]"
