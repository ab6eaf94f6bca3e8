"""Export and import a store as versioned JSON Lines.

Line 1 is a header (format name and version, the embedder's identity, the
metric). Each further line is one object:
- ``{"type": "memory", ...}``: a stored memory with scope, metadata,
  timestamps, its whole history and, with ``--vectors``, its vector;
- ``{"type": "history", "memory_id": ..., "events": [...]}``: the history of a
  memory that no longer exists (deleted), so nothing is lost in a round trip;
- ``{"type": "job", "job": {...}}`` (version 2): an add() whose facts were still to be
  extracted in the background (jobs.py). It travels with its messages: import queues it
  in the batch that writes the first of them (none written: the target has it already,
  done or queued), and the target extracts it as it does its own queue (background.py),
  never in the importing command itself.

Import reads the file twice: a first pass validates every line (memory ids
included: see inputs.check_memory_id), so a bad file is refused before
anything is written; the second pass writes in batches of 256 through the same
Writer as add() (its lock, its journal, its undo), so each batch is atomic
across store and history, even under Ctrl-C or a crash. Vectors are reused only when the file's embedder identity equals
the target's; otherwise (or when the file has none) texts are re-embedded.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

import numpy as np

from localmem.errors import InvalidInputError
from localmem.inputs import check_memory_id, json_object
from localmem.jobs import Job
from localmem.protocols import EmbedderIdentity
from localmem.records import (
    CONTEXT,
    EPISODE,
    FACT,
    SCOPE_KEYS,
    Event,
    HistoryEvent,
    Kind,
    MemoryRecord,
    Scope,
    text_hash,
)
from localmem.temporal import parse_timestamp
from localmem.writer import Write

if TYPE_CHECKING:
    from localmem.memory import Memory

FORMAT = "localmem-export"
VERSION = 2  # 2: job lines (a file without any is written as version 1)
_BATCH = 256
# Each stored kind by its name; an older export's items without one are facts.
_KINDS_STORED: dict[str, Kind] = {EPISODE: EPISODE, FACT: FACT, CONTEXT: CONTEXT}

OnConflict = Literal["skip", "replace", "error"]
Progress = Callable[[int], None]
Item = tuple[MemoryRecord, list[float] | None, list[HistoryEvent]]


@dataclass(frozen=True)
class ExportSummary:
    memories: int
    orphan_histories: int
    history_events: int
    vectors: bool
    jobs: int = 0  # queued extractions carried


@dataclass(frozen=True)
class ImportSummary:
    memories: int
    skipped: int
    reembedded: int
    history_events: int
    jobs: int = 0  # queued extractions taken over


def export_store(memory: Memory, out: TextIO, *, with_vectors: bool = False,
                 progress: Progress | None = None) -> ExportSummary:
    """Write every memory of ``memory``'s collection, with its history, to ``out``."""
    store, history = memory.store, memory.history_store
    events_by_memory: dict[str, list[HistoryEvent]] = defaultdict(list)
    for event in history.all_events():
        events_by_memory[event.memory_id].append(event)
    queued = history.jobs()
    # The oldest version that reads the file: one without jobs stays readable by localmem before them.
    header = {"type": "header", "format": FORMAT, "version": VERSION if queued else 1, "localmem_version": _version(),
              "embedder": memory.embedder.identity.to_dict(), "metric": memory.config.vector_store.metric_type,
              "vectors": with_vectors, "count": store.count()}
    out.write(json.dumps(header) + "\n")
    written = events = 0
    for record, vector in store.iterate(with_vectors=with_vectors):
        item = _memory_item(record, events_by_memory.pop(record.id, []))
        if vector is not None:
            item["vector"] = [float(x) for x in vector]
        events += len(item["history"])
        out.write(json.dumps(item, ensure_ascii=False) + "\n")
        written += 1
        if progress:
            progress(1)
    for memory_id, orphan in events_by_memory.items():
        out.write(json.dumps({"type": "history", "memory_id": memory_id,
                              "events": [e.to_dict() for e in orphan]}, ensure_ascii=False) + "\n")
        events += len(orphan)
    for _, body in queued:
        out.write(json.dumps({"type": "job", "job": json.loads(body)}, ensure_ascii=False) + "\n")
    return ExportSummary(memories=written, orphan_histories=len(events_by_memory), history_events=events,
                         vectors=with_vectors, jobs=len(queued))


@dataclass(frozen=True)
class ImportPlan:
    """What the validation pass learnt about a file: enough to import it without reading it a third time."""

    path: Path
    header: dict[str, Any]
    items: int  # memories, orphan histories and jobs
    memory_ids: tuple[str, ...]
    jobs: tuple[Job, ...] = ()  # few (one per queued add()): kept, so each is queued with its messages


def read_header(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        first = fh.readline()
    return _check_header(_parse(first, 1, path))


def validate(path: Path) -> ImportPlan:
    """Check the header and every line (one pass); nothing is written."""
    header = read_header(path)
    ids: list[str] = []
    jobs: list[Job] = []
    items = 0
    for item in _items(path):
        items += 1
        if item["type"] == "memory":
            ids.append(item["id"])
        elif item["type"] == "job":
            jobs.append(Job.from_json(json.dumps(item["job"])))
    return ImportPlan(path=path, header=header, items=items, memory_ids=tuple(ids), jobs=tuple(jobs))


def import_store(memory: Memory, source: Path | ImportPlan, *, on_conflict: OnConflict = "skip",
                 progress: Progress | None = None) -> ImportSummary:
    """Load an export into ``memory``'s collection; see the module docstring for the guarantees."""
    # Pass 1 (skipped when the caller validated already): nothing is written unless every line is well-formed.
    plan = source if isinstance(source, ImportPlan) else validate(source)
    if on_conflict == "error":
        _refuse_existing(memory, plan.memory_ids)  # and, when refusing, unless no id already exists
    identity = _identity(plan.header, plan.path)
    reuse_vectors = identity == memory.embedder.identity
    imported = skipped = reembedded = events = 0
    batch: list[Item] = []
    orphans: list[HistoryEvent] = []
    jobs = list(plan.jobs)  # each leaves this list in the batch that queues it

    def flush() -> None:
        nonlocal imported, skipped, reembedded, events
        done, left_out, embedded, recorded = _write_batch(memory, batch, reuse_vectors, on_conflict, jobs)
        imported, skipped, reembedded, events = (imported + done, skipped + left_out, reembedded + embedded,
                                                 events + recorded)
        if progress:
            progress(len(batch))
        batch.clear()

    for item in _items(plan.path):  # pass 2: each line is checked again as it is read, so a file that
        if item["type"] == "memory":  # changed since pass 1 still cannot slip a bad line in
            batch.append(_from_item(item))
            if len(batch) >= _BATCH:
                flush()
        elif item["type"] == "history":
            orphans.extend(_event(e, item["memory_id"]) for e in item["events"])
    if batch:
        flush()
    with memory.writer.lock:
        known = memory.history_store.event_ids([e.id for e in orphans])
        fresh = [e for e in orphans if e.id not in known]
        memory.writer.apply([], events=fresh)
    queued = len(plan.jobs) - len(jobs)  # those left had none of their messages written: the target's own
    if queued and memory.config.background_extraction:
        memory.extract_queued()  # else the target's next add() with the model, or open with the flag, runs them
    return ImportSummary(memories=imported, skipped=skipped, reembedded=reembedded,
                         history_events=events + len(fresh), jobs=queued)


def _identity(header: dict[str, Any], path: Path) -> EmbedderIdentity | None:
    fields = header.get("embedder")
    if not isinstance(fields, dict):
        return None
    try:
        return EmbedderIdentity(**fields)
    except TypeError as exc:
        raise InvalidInputError(f"{path}: the header's embedder identity is malformed ({exc})") from exc


def _refuse_existing(memory: Memory, ids: Sequence[str]) -> None:
    """Raise before any write if a memory id of the file is already in the store."""
    for lo in range(0, len(ids), _BATCH):
        existing = memory.store.get(ids[lo:lo + _BATCH])
        if existing:
            raise InvalidInputError(f"memories of the file already exist (e.g. {existing[0].id}); nothing was "
                                    "imported; use on_conflict 'skip' or 'replace'")


def _write_batch(memory: Memory, batch: list[Item], reuse_vectors: bool, on_conflict: OnConflict,
                 jobs: list[Job]) -> tuple[int, int, int, int]:
    """One batch through the Writer: journaled, atomic across store and history, undone on error or Ctrl-C.

    The ``jobs`` with a message among those written are queued in the same batch (and leave the list):
    an import cut short and run again neither loses nor repeats them.
    """
    store, history = memory.store, memory.history_store
    existing = {r.id for r in store.get([record.id for record, _, _ in batch])}
    if existing and on_conflict == "error":
        raise InvalidInputError(f"{len(existing)} memories of the file already exist (e.g. {sorted(existing)[0]}); "
                                "use on_conflict 'skip' or 'replace'")
    rows = [(r, v, h) for r, v, h in batch if on_conflict == "replace" or r.id not in existing]
    if not rows:
        return 0, len(batch), 0, 0
    # Embedding is the slow part: done before taking the write lock, so add() calls are not held up by it.
    dims = memory.embedder.identity.dims
    need = [i for i, (_, v, _) in enumerate(rows) if not reuse_vectors or v is None or len(v) != dims]
    vectors = np.zeros((len(rows), dims), dtype=np.float32)
    for i, (_, v, _) in enumerate(rows):
        if i not in need and v is not None:
            vectors[i] = v
    if need:
        vectors[need] = memory.embedder.embed([rows[i][0].memory for i in need])
    with memory.writer.lock:
        # Look again under the lock: what exists now decides between ADD and UPDATE (and skip).
        current = {r.id: r for r in store.get([r.id for r, _, _ in rows])}
        keep = [i for i, (r, _, _) in enumerate(rows) if on_conflict == "replace" or r.id not in current]
        writes = [Write(Event.UPDATE, rows[i][0], vectors[i][None, :], previous=current[rows[i][0].id])
                  if rows[i][0].id in current else Write(Event.ADD, rows[i][0], vectors[i][None, :]) for i in keep]
        all_events = [e for i in keep for e in rows[i][2]]
        known = history.event_ids([e.id for e in all_events])
        fresh = [e for e in all_events if e.id not in known]
        written = {rows[i][0].id for i in keep}
        taken = [job for job in jobs if any(episode_id in written for episode_id, _, _ in job.episodes)]
        memory.writer.apply(writes, events=fresh, queue=[job.to_json() for job in taken])
    for job in taken:
        jobs.remove(job)
    return len(keep), len(batch) - len(keep), len(need), len(fresh)


def _items(path: Path) -> Iterator[dict[str, Any]]:
    """Validated objects after the header, one per line."""
    with path.open(encoding="utf-8") as fh:
        fh.readline()
        for number, line in enumerate(fh, start=2):
            if not line.strip():
                continue
            item = _parse(line, number, path)
            kind = item.get("type")
            if kind == "memory":
                _check_memory(item, number, path)
            elif kind == "history":
                if not isinstance(item.get("memory_id"), str) or not isinstance(item.get("events"), list):
                    raise InvalidInputError(f"{path}:{number}: a history line needs memory_id and events")
                _check_id(item["memory_id"], number, path)
                for event in item["events"]:
                    _check_event(event, number, path, item["memory_id"])
            elif kind == "job":
                _job(item, number, path)
            else:
                raise InvalidInputError(f"{path}:{number}: unknown line type {kind!r}")
            yield item


def _parse(line: str, number: int, path: Path) -> dict[str, Any]:
    return json_object(line, f"{path}:{number}: the line")


def _check_header(header: dict[str, Any]) -> dict[str, Any]:
    if header.get("format") != FORMAT:
        raise InvalidInputError(f"not a localmem export (first line format={header.get('format')!r}, "
                                f"expected {FORMAT!r})")
    version = header.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise InvalidInputError(f"export format version {version!r} is newer than this localmem reads "
                                f"({VERSION}); upgrade localmem")
    return header


def _check_memory(item: dict[str, Any], number: int, path: Path) -> None:
    for key in ("id", "memory", "created_at"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise InvalidInputError(f"{path}:{number}: memory line needs a non-empty string {key!r}")
    _check_id(item["id"], number, path)
    if not isinstance(item.get("metadata", {}), dict):
        raise InvalidInputError(f"{path}:{number}: metadata must be an object")
    try:
        Scope(**{k: item.get(k) for k in SCOPE_KEYS})
    except InvalidInputError as exc:
        raise InvalidInputError(f"{path}:{number}: {exc}") from exc
    vector = item.get("vector")
    if vector is not None and (not isinstance(vector, list) or not all(isinstance(x, (int, float)) for x in vector)):
        raise InvalidInputError(f"{path}:{number}: vector must be a list of numbers")
    for event in item.get("history", []):
        _check_event(event, number, path, item["id"])


def _check_id(memory_id: Any, number: int, path: Path) -> None:
    try:
        check_memory_id(memory_id, "memory id")
    except InvalidInputError as exc:
        raise InvalidInputError(f"{path}:{number}: {exc}") from None


def _check_event(event: Any, number: int, path: Path, memory_id: str) -> None:
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise InvalidInputError(f"{path}:{number}: a history event needs an id")
    if event.get("memory_id", memory_id) != memory_id:
        raise InvalidInputError(f"{path}:{number}: a history event of memory {memory_id!r} names memory "
                                f"{event.get('memory_id')!r}")
    if event.get("event") not in {e.value for e in Event}:
        raise InvalidInputError(f"{path}:{number}: unknown history event {event.get('event')!r}")


def _job(item: dict[str, Any], number: int, path: Path) -> Job:
    """The job of a job line, checked as far as a queued job must be (its episodes' ids included)."""
    body = item.get("job")
    where = f"{path}:{number}: "
    try:
        if not isinstance(body, dict):
            raise TypeError("no job object")
        job = Job.from_json(json.dumps(body))
        for episode_id, _, _ in job.episodes:
            check_memory_id(episode_id, "episode id")
    except InvalidInputError as exc:  # before ValueError, which it is
        raise InvalidInputError(f"{where}a job line: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"{where}a malformed job line ({type(exc).__name__}: {exc})") from None
    return job


def _memory_item(record: MemoryRecord, events: list[HistoryEvent]) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "memory", **record.to_dict()}
    for key in SCOPE_KEYS:
        item[key] = getattr(record.scope, key)
    # Episode links (schema 2): a fact's source ids, and whether an episode yielded a fact.
    item["source_ids"] = list(record.sources)
    item["covered"] = record.covered
    item["chatter"] = record.chatter  # role, superseded_by and valid_until are in the item already
    item["history"] = [e.to_dict() for e in events]
    return item


def _from_item(item: dict[str, Any]) -> Item:
    text = item["memory"]
    stamp = item.get("timestamp")
    record = MemoryRecord(id=item["id"], memory=text, hash=text_hash(text),
                          scope=Scope(**{k: item.get(k) for k in SCOPE_KEYS}), metadata=item.get("metadata") or {},
                          created_at=item["created_at"], updated_at=item.get("updated_at"),
                          kind=_KINDS_STORED.get(str(item.get("kind")), FACT), speaker=item.get("speaker"),
                          timestamp=int(parse_timestamp(stamp).timestamp()) if stamp else None,
                          sources=tuple(str(s) for s in item.get("source_ids") or ()),
                          covered=bool(item.get("covered", False)), role=_optional_text(item.get("role")),
                          chatter=bool(item.get("chatter", False)),
                          superseded_by=_optional_text(item.get("superseded_by")),
                          valid_until=_epoch_or_none(item.get("valid_until")) if item.get("superseded_by") else None)
    return record, item.get("vector"), [_event(e, record.id) for e in item.get("history", [])]


def _optional_text(value: Any) -> str | None:
    return str(value) if value else None


def _epoch_or_none(value: Any) -> int | None:
    return int(parse_timestamp(value).timestamp()) if value else None


def _event(raw: dict[str, Any], memory_id: str) -> HistoryEvent:
    return HistoryEvent(id=raw["id"], memory_id=raw.get("memory_id", memory_id), old_memory=raw.get("old_memory"),
                        new_memory=raw.get("new_memory"), event=Event(raw["event"]),
                        created_at=raw.get("created_at", ""), updated_at=raw.get("updated_at"),
                        is_deleted=bool(raw.get("is_deleted", False)))


def _version() -> str:
    from localmem import __version__

    return __version__
