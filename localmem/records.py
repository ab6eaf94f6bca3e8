"""Plain, frozen values passed between localmem's parts.

These are the typed contracts of the pipeline: nothing here talks to a model,
a store or a file. ``to_dict`` methods produce the Mem0-compatible shapes the
public API returns.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Literal

from localmem.errors import InvalidInputError

SCOPE_KEYS = ("user_id", "agent_id", "run_id")
# What a stored record is: a message as it was said ("episode"), a statement drawn
# from messages ("fact"), which links to its source episodes, or a message restated
# in its conversation ("context", context.py): a search key for its first source,
# never listed or shown itself. Facts and contexts are the *keys* of a message.
Kind = Literal["episode", "fact", "context"]
EPISODE: Kind = "episode"
FACT: Kind = "fact"
CONTEXT: Kind = "context"
KINDS: tuple[Kind, ...] = (EPISODE, FACT)  # the kinds a user sees, lists and filters by
KEY_KINDS: tuple[Kind, ...] = (FACT, CONTEXT)
# localmem's own bound on a scope id (longer ones are almost surely a bug); a store
# sizes its fields to hold it (Milvus: VARCHAR of 4 bytes a character).
MAX_SCOPE_ID_LENGTH = 512


# Namespace of stable_id's uuid5s: fixed, so every process (and version) derives the same ids.
_STABLE_ID_NAMESPACE = uuid.UUID("5b0f3c8e-6a1d-4f7e-9c52-0d3e8a7b41f6")


def stable_id(scope: Scope, kind: str, hash_: str) -> str:
    """The id two processes give the same text of one scope: a uuid5 of scope, kind and text hash.

    Used where several processes write through one server (pipeline.py): the second upsert
    of the same add then lands on the first one's row instead of beside it.
    """
    key = "\x1f".join((scope.user_id or "", scope.agent_id or "", scope.run_id or "", kind, hash_))
    return str(uuid.uuid5(_STABLE_ID_NAMESPACE, key))


class Event(str, Enum):
    """What one add() did to one memory."""

    ADD = "ADD"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    NONE = "NONE"
    # History only: a later message of the same person said this no longer holds (currency.py); 8
    # letters at most, the event field of a server's history collection.
    EXPIRE = "EXPIRE"


def now_iso() -> str:
    """The current time as ISO 8601 with an explicit UTC offset."""
    return datetime.now(timezone.utc).isoformat()


def text_hash(text: str) -> str:
    """The md5 of a memory's text: Mem0's ``hash`` field, also our duplicate key."""
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def _check_scope_id(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInputError(f"{name} must not be empty or blank")
    if len(value) > MAX_SCOPE_ID_LENGTH:
        raise InvalidInputError(f"{name} is {len(value)} characters; the limit is {MAX_SCOPE_ID_LENGTH}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(f"{name} is not valid Unicode text (it holds a lone surrogate)") from None
    return value


@dataclass(frozen=True)
class Scope:
    """Who a memory belongs to. Any non-empty string is allowed, quotes included:
    scope values are passed to the store as data, never spliced into expressions."""

    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None

    def __post_init__(self) -> None:
        for key in SCOPE_KEYS:
            _check_scope_id(key, getattr(self, key))

    @property
    def is_empty(self) -> bool:
        return self.user_id is None and self.agent_id is None and self.run_id is None

    def require(self, operation: str) -> Scope:
        """Return self, or raise if no scope id is set (add and delete_all need one)."""
        if self.is_empty:
            raise InvalidInputError(f"{operation} needs at least one of user_id, agent_id or run_id")
        return self

    def as_dict(self) -> dict[str, str]:
        return {k: v for k in SCOPE_KEYS if (v := getattr(self, k)) is not None}


@dataclass(frozen=True)
class Message:
    """One chat message. ``name`` is who said it when known (OpenAI/Mem0's ``name`` field)."""

    role: str
    content: str
    name: str | None = None


def iso_from_epoch(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


@dataclass(frozen=True)
class MemoryRecord:
    """One stored memory, as the vector store holds it (vector aside)."""

    id: str
    memory: str
    hash: str
    scope: Scope
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str | None = None
    kind: Kind = FACT
    speaker: str | None = None
    timestamp: int | None = None  # when it was said (episode) or the latest of its sources (fact), epoch s
    sources: tuple[str, ...] = ()  # a fact's source episode ids
    covered: bool = False  # an episode that yielded a fact: get_all shows the fact instead
    role: str | None = None  # an episode's chat role ("user", "assistant", ...); None when unknown (older rows)
    chatter: bool = False  # an episode that only acknowledges ("Noted!", "Thanks!"): never listed or found
    superseded_by: str | None = None  # the later episode of the same person that says this no longer holds
    valid_until: int | None = None  # when it stopped holding (the superseding message's time), epoch s

    @property
    def current(self) -> bool:
        return self.superseded_by is None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "memory": self.memory,
            "hash": self.hash,
            "metadata": dict(self.metadata),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "kind": self.kind,
            "speaker": self.speaker,
            "timestamp": iso_from_epoch(self.timestamp) if self.timestamp is not None else None,
        }
        # What holds now (currency.py): a memory a later message superseded says by which and since when.
        out["role"] = self.role
        out["superseded_by"] = self.superseded_by
        out["valid_until"] = iso_from_epoch(self.valid_until) if self.valid_until is not None else None
        out["user_id"] = self.scope.user_id
        for key in ("agent_id", "run_id"):
            if (value := getattr(self.scope, key)) is not None:
                out[key] = value
        return out

    def source_dict(self) -> dict[str, Any]:
        """How an episode appears in a fact's ``sources``: what was said, by whom, when."""
        return {"id": self.id, "memory": self.memory, "speaker": self.speaker,
                "timestamp": iso_from_epoch(self.timestamp) if self.timestamp is not None else None,
                "metadata": dict(self.metadata)}


@dataclass(frozen=True)
class SearchHit:
    """A memory with its score (higher is better, every metric) and the store's raw distance.

    ``similarity`` is the query's similarity to the closest row of the memory's group (the
    message, its contexts and facts) where the ranking saw one; the score a search reports.
    """

    record: MemoryRecord
    score: float
    distance: float
    similarity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = self.record.to_dict()
        out["score"] = self.score
        out["distance"] = self.distance
        return out


@dataclass(frozen=True)
class HistoryEvent:
    id: str
    memory_id: str
    old_memory: str | None
    new_memory: str | None
    event: Event
    created_at: str
    updated_at: str | None
    is_deleted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "memory_id": self.memory_id,
            "old_memory": self.old_memory,
            "new_memory": self.new_memory,
            "event": self.event.value,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "is_deleted": self.is_deleted,
        }


@dataclass(frozen=True)
class Fact:
    """A short, standalone statement extracted from messages.

    ``sources`` are the indices, in the message list the extractor was given,
    of the message(s) the fact was read from (so the pipeline can link it to
    their episodes); ``speaker`` is whose fact it is when the speaker is known;
    ``when`` is the time of the event it describes, resolved from the message's
    time (a relative date like "yesterday" moves it), None without one.
    """

    text: str
    sources: tuple[int, ...] = ()
    speaker: str | None = None
    when: datetime | None = None


@dataclass(frozen=True)
class Decision:
    """What reconciliation decided for one fact. ``target_id`` is set for UPDATE/DELETE/NONE."""

    event: Event
    text: str
    target_id: str | None = None


@dataclass(frozen=True)
class Change:
    """One write that an add() performed, as reported in its ``results``."""

    id: str
    memory: str
    event: Event
    previous_memory: str | None = None
    flags: tuple[str, ...] = ()
    kind: Kind = FACT

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "memory": self.memory, "event": self.event.value, "kind": self.kind}
        if self.previous_memory is not None:
            out["previous_memory"] = self.previous_memory
        if self.flags:
            out["flags"] = list(self.flags)
        return out
