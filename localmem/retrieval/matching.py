"""A parsed filter (filters.py) evaluated on a record in memory.

A store that holds a scope in this process (scopes.py, the numpy reference store)
selects rows with this instead of a query language, so a filtered search is
ranked by the same engine as an unfiltered one. The meaning is filters.py's, the
one every backend's filter contract checks (tests/contracts/test_filter_contract.py):
a positive test is false on a missing key, ``NOT`` is the complement, and values
of another type never compare (``True`` is not ``1``, ``"5"`` is not ``5``).
"""

from __future__ import annotations

from typing import Any

from localmem.filters import And, Compare, Contains, Exists, Filter, In, Not, Or, Scalar
from localmem.records import SCOPE_KEYS, MemoryRecord, Scope


def matches(record: MemoryRecord, node: Filter | None) -> bool:
    """Whether ``record`` passes the filter (None passes everything)."""
    if node is None:
        return True
    if isinstance(node, And):
        return all(matches(record, item) for item in node.items)
    if isinstance(node, Or):
        return any(matches(record, item) for item in node.items)
    if isinstance(node, Not):
        return not matches(record, node.item)
    value = _value(record, node.key.name, node.key.is_field)
    if value is None:
        return False  # a positive test on a missing key (an unset field counts as missing)
    if isinstance(node, Exists):
        return True
    if isinstance(node, In):
        return any(_equal(value, v) for v in node.values)
    if isinstance(node, Contains):
        return isinstance(value, list) and any(_equal(item, node.value) for item in value)
    return _compare(value, node)


def within(record: MemoryRecord, scope: Scope) -> bool:
    """Whether a search of ``scope`` sees ``record`` (an unset scope key matches anything)."""
    return all(getattr(scope, key) is None or getattr(record.scope, key) == getattr(scope, key)
               for key in SCOPE_KEYS)


def _value(record: MemoryRecord, name: str, field: bool) -> Any:
    if not field:
        return record.metadata.get(name)
    if name in SCOPE_KEYS:
        return getattr(record.scope, name)
    return getattr(record, name) or None  # speaker "" and timestamp 0 are unset, as stored


def _kind(value: Any) -> str:
    """Which values compare with which: booleans apart from numbers, text apart from both."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "text" if isinstance(value, str) else "other"


def _equal(value: Any, wanted: Scalar) -> bool:
    return _kind(value) == _kind(wanted) and value == wanted


def _compare(value: Any, node: Compare) -> bool:
    if node.op == "eq":
        return _equal(value, node.value)
    if _kind(value) != _kind(node.value) or _kind(value) not in ("number", "text"):
        return False  # values of another type never order (milvus_filters.py guards the same way)
    left, right = value, node.value
    if node.op == "gt":
        return bool(left > right)
    if node.op == "gte":
        return bool(left >= right)
    if node.op == "lt":
        return bool(left < right)
    return bool(left <= right)
