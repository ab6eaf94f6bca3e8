"""Validate and normalise what users pass to the public API, before anything is written."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from localmem.errors import InvalidInputError
from localmem.records import Message

MAX_MEMORY_CHARS = 16_000  # the store's text field holds 65,535 bytes; 4 bytes a char at worst
MAX_MEMORY_ID_CHARS = 64  # the store's primary key field holds 64 characters
MEMORY_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.:\-]{{0,{MAX_MEMORY_ID_CHARS - 1}}}", re.ASCII)


def parse_messages(messages: Any) -> list[Message]:
    """Accept a string, one ``{"role", "content"}`` dict, or a list of them."""
    if isinstance(messages, str):
        raw: list[Any] = [{"role": "user", "content": messages}]
    elif isinstance(messages, Mapping):
        raw = [messages]
    elif isinstance(messages, list | tuple):
        raw = list(messages)
    else:
        raise InvalidInputError(
            f"messages must be a string, a {{'role', 'content'}} dict or a list of them, got {type(messages).__name__}")
    if not raw:
        raise InvalidInputError("messages is an empty list: give at least one message")
    parsed = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise InvalidInputError(f"messages[{index}] must be a dict with 'role' and 'content'")
        role, content = item.get("role", "user"), item.get("content")
        if not isinstance(role, str) or not role.strip():
            raise InvalidInputError(f"messages[{index}]['role'] must be a non-empty string")
        if not isinstance(content, str):
            raise InvalidInputError(
                f"messages[{index}]['content'] must be text, got {type(content).__name__} "
                "(images and other parts are not supported)")
        name = item.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise InvalidInputError(f"messages[{index}]['name'] must be a non-empty string when given")
        parsed.append(Message(role=role.strip().lower(), content=content, name=name.strip() if name else None))
    if all(not m.content.strip() for m in parsed):
        raise InvalidInputError("messages hold no text: every content is empty or blank")
    return parsed


def check_text(text: Any, what: str = "data") -> str:
    if not isinstance(text, str):
        raise InvalidInputError(f"{what} must be a string, got {type(text).__name__}")
    stripped: str = text.strip()
    if not stripped:
        raise InvalidInputError(f"{what} must not be empty or blank")
    if len(stripped) > MAX_MEMORY_CHARS:
        raise InvalidInputError(f"{what} is {len(stripped)} characters; a memory holds at most {MAX_MEMORY_CHARS}")
    return stripped


def check_metadata(metadata: Any) -> dict[str, Any]:
    """A JSON-object metadata dict (round-tripped through JSON, so what is stored is what you get back)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidInputError(f"metadata must be a dict, got {type(metadata).__name__}")
    for key in metadata:
        if not isinstance(key, str):
            raise InvalidInputError(f"metadata keys must be strings, got {key!r}")
    try:
        encoded = json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"metadata is not JSON-serialisable: {exc}") from None
    decoded: dict[str, Any] = json.loads(encoded)
    return decoded


def check_limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInputError(f"limit must be a positive integer, got {limit!r}")
    # Milvus caps topk/limit at 16384.
    if limit > 16_384:
        raise InvalidInputError(f"limit {limit} exceeds the store's maximum of 16384")
    return limit


def check_threshold(threshold: Any) -> float | None:
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold):
        raise InvalidInputError(f"threshold must be a number (a minimum score), got {threshold!r}")
    return float(threshold)


def check_memory_id(memory_id: Any, what: str = "memory_id") -> str:
    """An id localmem could have made: letters, digits and ``- _ . :``, 1 to 64 characters.

    localmem makes uuid4 strings; the alphabet leaves room for ids carried over
    from other tools while keeping quotes, brackets, spaces and control
    characters (anything an expression could be bent with) out for good.
    """
    if not isinstance(memory_id, str) or not memory_id.strip():
        raise InvalidInputError(f"{what} must be a non-empty string, got {memory_id!r}")
    if not MEMORY_ID.fullmatch(memory_id):
        shown = memory_id if len(memory_id) <= 80 else memory_id[:77] + "..."
        raise InvalidInputError(
            f"{what} {shown!r} is not a memory id: ids are 1 to {MAX_MEMORY_ID_CHARS} characters of letters, digits "
            "and - _ . : starting with a letter or digit (localmem makes uuid4 strings)")
    return memory_id
