"""What an import file may reach: every id a line names stays inside the scope of that line.

An import is a writer with no more rights than add(). add() links a fact only to messages of
its own scope, appends history only to the memories it writes, and never moves a memory to
another scope. A file can name any id (a crafted line, or an export of somebody else's
store), so before anything is written each id it names is checked against the file's own
memory lines (``References.check_file``, after the validation pass has seen every line) and
then against the target store and its history (``check_target``). A refusal names the line.

What is checked:
- a memory's ``source_ids`` and a job's episodes: the memory they name, in the file or in the
  store, has the scope of the naming line;
- a memory id that is already in the store with another scope is not replaced
  (``on_conflict="replace"``), and one id is not given two scopes in one file;
- a ``history`` line (a deleted memory's history) names neither a memory of the file nor a
  live memory of the store, and adds no event to a history the store already has (the
  deleted memory's owner cannot be told from its history).

It must not write: the Writer (writer.py) does, after these checks passed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from localmem.errors import InvalidInputError
from localmem.records import Scope

if TYPE_CHECKING:
    from localmem.protocols import HistoryStore, VectorStore

OnConflict = Literal["skip", "replace", "error"]
_CHUNK = 256  # ids per store read


@dataclass(frozen=True)
class _Link:
    line: int
    target: str  # the id named
    scope: Scope  # the naming line's scope
    what: str  # "a source" / "an episode of the job"


@dataclass
class References:
    """What the validation pass learns about the ids of a file: whose each memory line is, and
    every id a line names. Filled line by line; checked once every line has been read."""

    path: Path
    owners: dict[str, tuple[Scope, int]] = field(default_factory=dict)  # memory id -> (scope, line)
    links: list[_Link] = field(default_factory=list)
    orphans: list[tuple[int, str, tuple[str, ...]]] = field(default_factory=list)  # (line, memory id, event ids)
    longest: tuple[int, int] = (0, 0)  # (UTF-8 bytes, line) of the longest memory text: the store has a limit

    def text(self, text: str, line: int) -> None:
        size = len(text.encode("utf-8"))
        if size > self.longest[0]:
            self.longest = (size, line)

    def memory(self, memory_id: str, scope: Scope, line: int) -> None:
        seen = self.owners.get(memory_id)
        if seen is not None and seen[0] != scope:
            raise InvalidInputError(f"{self.path}:{line}: memory {memory_id!r} was given another scope on line "
                                    f"{seen[1]}; one id belongs to one scope")
        if seen is None:
            self.owners[memory_id] = (scope, line)

    def link(self, line: int, target: str, scope: Scope, what: str) -> None:
        self.links.append(_Link(line, target, scope, what))

    def orphan(self, line: int, memory_id: str, event_ids: Sequence[str]) -> None:
        self.orphans.append((line, memory_id, tuple(event_ids)))

    def check_file(self) -> None:
        """Refuse a link to a memory line of another scope, and a history line for a memory line."""
        for link in self.links:
            owner = self.owners.get(link.target)
            if owner is not None and owner[0] != link.scope:
                raise InvalidInputError(self.cross(link, f"line {owner[1]} of the file"))
        for line, memory_id, _ in self.orphans:
            owner = self.owners.get(memory_id)
            if owner is not None:
                raise InvalidInputError(f"{self.path}:{line}: a history line for memory {memory_id!r}, which line "
                                        f"{owner[1]} holds: a memory's history belongs on its own line")

    def cross(self, link: _Link, where: str) -> str:
        return (f"{self.path}:{link.line}: {link.what} {link.target!r} belongs to another scope ({where}); an "
                "import links only memories of the same user, agent and run")


def check_target(refs: References, store: VectorStore, history: HistoryStore, on_conflict: OnConflict) -> None:
    """Refuse, before the first write, a file whose ids reach outside their scope in the target
    (or whose longest text the store cannot hold)."""
    size, line = refs.longest
    if size > store.limits.max_text_bytes:
        raise InvalidInputError(f"{refs.path}:{line}: the memory is {size:,} bytes of UTF-8; this store holds at most "
                                f"{store.limits.max_text_bytes:,}")
    named = list(dict.fromkeys([*refs.owners, *(link.target for link in refs.links),
                                *(memory_id for _, memory_id, _ in refs.orphans)]))
    stored = {record.id: record.scope for ids in _chunks(named) for record in store.get(ids)}
    existing = [memory_id for memory_id in refs.owners if memory_id in stored]
    if existing and on_conflict == "error":
        raise InvalidInputError(f"memories of the file already exist (e.g. {existing[0]}); nothing was "
                                "imported; use on_conflict 'skip' or 'replace'")
    if on_conflict == "replace":
        for memory_id in existing:
            scope, line = refs.owners[memory_id]
            if stored[memory_id] != scope:
                raise InvalidInputError(f"{refs.path}:{line}: memory {memory_id!r} belongs to another scope in this "
                                        "store; an import replaces only memories of the same user, agent and run")
    for link in refs.links:
        if link.target in stored and stored[link.target] != link.scope:
            raise InvalidInputError(refs.cross(link, "in this store"))
    for line, memory_id, event_ids in refs.orphans:
        if memory_id in stored:
            raise InvalidInputError(f"{refs.path}:{line}: a history line for memory {memory_id!r}, which this store "
                                    "holds: an import adds history only to the memories it writes")
        if history.history(memory_id) and set(event_ids) - history.event_ids(list(event_ids)):
            raise InvalidInputError(f"{refs.path}:{line}: a history line adds events to the history of memory "
                                    f"{memory_id!r}, which this store has already; an import does not extend "
                                    "the history of a memory it does not write")


def same_scope(current: Scope, record_id: str, scope: Scope) -> None:
    """Under the write lock: a memory that changed owner since ``check_target`` is still not replaced."""
    if current != scope:
        raise InvalidInputError(f"memory {record_id!r} belongs to another scope in this store (written meanwhile); "
                                "an import replaces only memories of the same user, agent and run")


def _chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield list(ids[start:start + _CHUNK])
