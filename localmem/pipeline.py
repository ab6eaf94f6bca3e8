"""The steps of add(): keep episodes -> extract -> embed -> match -> decide -> write -> log.

Every message is first kept as an episode (episodes.py: its words, speaker and
time), whether or not the model is used, so nothing said becomes unfindable.
With infer=True the extracted facts are written beside the episodes and link
to them by id (``sources``); an episode whose message yielded a fact is marked
``covered`` (get_all then shows the fact), one that yielded none stands as the
memory itself.

Each new message also gets a context (context.py): itself with the messages said
just before it, a search key for it that no model writes.

Deterministic rules go first because they are more reliable than a small
model: an exact duplicate (same hash in the scope) or a near-duplicate
(cosine >= ``near_duplicate_threshold``) is never stored twice, and a fact
with no related memory is added without asking the model. Only a fact that
has related facts goes to the LLM, which sees them under small integer
ids and answers ADD / UPDATE / DELETE / NONE, held against the texts
(rules.checked: a lossy UPDATE is added beside, a DELETE stands only as an
UPDATE by the fact that ends the memory); an answer that names no shown
memory falls back to ADD. A stored fact that sets the same single-valued
attribute as the new one ("Lives in Paris" / "Moved to Berlin") counts as
related whatever its cosine: embeddings put such pairs far apart. Facts are
matched against facts only: an episode is a record of what was said and is
never rewritten by reconciliation.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np

from localmem import links, progress
from localmem.config import MemoryConfig
from localmem.context import TURNS_BEFORE, WINDOW_S, Line, before, context_text, line_of
from localmem.currency import common_names, is_chatter, is_own, says_change, supersedes, topics
from localmem.episodes import Said, content_of, said
from localmem.errors import ExtractionError
from localmem.extractors.postprocess import dated
from localmem.extractors.rules import Slot, checked, could_be_same_fact, decide, slot_of
from localmem.inputs import check_text
from localmem.jobs import AddRequest, Job
from localmem.protocols import Candidate, Embedder, LanguageModel, ManyExtractor, Vectors, VectorStore
from localmem.records import (
    CONTEXT,
    EPISODE,
    FACT,
    Change,
    Event,
    Fact,
    HistoryEvent,
    Kind,
    MemoryRecord,
    Message,
    Scope,
    SearchHit,
    now_iso,
    stable_id,
    text_hash,
)
from localmem.writer import Write, Writer

# Below this cosine a stored memory is unrelated to the new fact: no LLM call.
RELATED_THRESHOLD = 0.45
# The same, between the two texts with their people's names taken out. In a conversation every fact
# names its speaker, and MiniLM then finds "Gina believes in Gina" and "Gina is over the moon" alike
# (0.78); without the names 0.26. On LoCoMo dev turns 31 of 32 reconcile calls above answered ADD
# (the 32nd replaced an unrelated fact), at ~1 s each: most of an add's time.
TOPIC_THRESHOLD = 0.5
RAW_FALLBACK_FLAG = "unprocessed_raw_message"
EXTRACTION_QUEUED_FLAG = "extraction_queued"  # add() returned before its facts were drawn (background.py)
UNRECONCILED_FLAG = "unreconciled"
SUPERSEDED_FLAG = "superseded"  # a memory a later message said no longer holds (currency.py)
# Earlier messages, nearest in meaning, that a new message is checked against for supersession.
SUPERSEDE_CANDIDATES = 8
# How many stored memories are searched for one that sets the same attribute as the fact.
SLOT_SEARCH_LIMIT = 20


@dataclass(frozen=True)
class _Episodes:
    """This call's episodes: the writes (ADD, or NONE for a repeat), each with its messages' positions."""

    writes: list[Write]
    indices: list[tuple[int, ...]]  # per write, the positions of its message(s) in the add() call
    stored: bool = False  # read back from the store for a queued job (background.py), not written yet

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(w.record.id for w in self.writes))

    def job(self, request: AddRequest) -> Job:
        """The extraction left to the background for these episodes."""
        return Job(messages=tuple(request.messages), scope=request.scope, moment=request.moment,
                   metadata=request.metadata, prompt=request.prompt,
                   episodes=tuple((w.record.id, w.record.hash, at) for w, at in zip(self.writes, self.indices,
                                                                                   strict=True)))

    def marked(self, write: Write, fields: dict[str, Any], flags: tuple[str, ...] = ()) -> Write:
        """One of these episodes with ``fields`` changed: in the ADD that stores it, or as an update of
        the stored episode for a queued job. A repeat of an episode stored before stays as it was."""
        if write.event is Event.ADD:
            return replace(write, record=replace(write.record, **fields), flags=(*write.flags, *flags))
        if not self.stored or write.vector is None or all(getattr(write.record, k) == v for k, v in fields.items()):
            return write
        return Write(Event.UPDATE, replace(write.record, updated_at=now_iso(), **fields), write.vector,
                     previous=write.record, previous_vector=write.vector.reshape(-1), flags=flags)

    def history(self, writes: Sequence[Write]) -> list[HistoryEvent] | None:
        """The history of a batch, None to let the Writer derive it: marking a stored episode covered or
        flagged (``marked``) changes no memory's words, so it is no event, as it is none inline."""
        if not self.stored:
            return None
        mine = set(self.ids)
        return [w.history_event() for w in writes if w.event is not Event.NONE
                and not (w.event is Event.UPDATE and w.record.id in mine and w.record.kind == EPISODE)]

    def sources_of(self, fact: Fact, vector: Vectors) -> list[MemoryRecord]:
        """The episodes a fact was read from: the extractor names its message(s) by position.

        An extractor that names none (a custom LanguageModel may not) gets the most similar
        new episode of this call: right for single-message adds and a good guess otherwise.
        """
        named = [w.record for w, at in zip(self.writes, self.indices, strict=True) if set(at) & set(fact.sources)]
        if named:
            return list({r.id: r for r in named}.values())
        fresh = [w for w in self.writes if w.vector is not None]
        if len(self.writes) == 1 or not fresh:
            return [self.writes[0].record] if len(self.writes) == 1 else []
        return [max(fresh, key=lambda w: _cosine(vector, w.vector.reshape(-1) if w.vector is not None else vector)
                    ).record]


class AddPipeline:
    def __init__(self, config: MemoryConfig, embedder: Embedder, store: VectorStore, writer: Writer,
                 llm: Callable[[], LanguageModel]) -> None:
        self.config = config
        self.embedder = embedder
        self.store = store
        self.writer = writer
        self._llm = llm  # a factory: the model loads only when infer=True is first used
        # Through a server, other processes may add the same text to the same scope at the same
        # moment; their duplicate checks cannot see each other's rows in flight. Stable ids make
        # both writes one row (the store upserts them there). A Lite folder has one process, whose
        # write lock makes the duplicate check exact: random ids, as Mem0 gives.
        self._stable_ids = not config.vector_store.is_local_file

    def run(self, request: AddRequest) -> list[Change]:
        messages = said(request.messages, request.scope, request.moment)
        episodes = self._episodes(messages, request)
        if not episodes.writes:
            return []
        # Rules, with or without the model: what these messages say no longer holds (currency.py).
        marks = self._superseded(episodes, messages, request)
        if not request.infer:
            self.writer.apply([*episodes.writes, *marks])
            return [w.change() for w in episodes.writes]
        contexts = self._contexts(episodes, request)
        if self.config.background_extraction and self.config.extract_facts:
            # The messages now (findable at once), their facts later (background.py): the job is
            # queued in the transaction that stores them, so an acknowledged add is never lost.
            self.writer.apply([*episodes.writes, *contexts, *marks], queue=[episodes.job(request).to_json()])
            return [replace(w.change(), flags=(*w.flags, EXTRACTION_QUEUED_FLAG)) for w in episodes.writes]
        extracted, flags = self._facts(request) if self.config.extract_facts else ([], ())
        return self._conclude(request, episodes, extracted, flags, contexts, marks=marks)

    def extract(self, jobs: Sequence[Job]) -> list[tuple[list[Fact], tuple[str, ...]]]:
        """Queued jobs' facts (background.py), read in one batch when the model can; outside the write lock.

        An extraction error in a batch sends its jobs through one at a time, so an unusable
        answer leaves only its own job's messages unprocessed (flagged as under store_raw).
        """
        llm = self._llm()
        done: dict[int, tuple[list[Fact], tuple[str, ...]]] = {}
        if len(jobs) > 1 and isinstance(llm, ManyExtractor):
            by_prompt: dict[str | None, list[int]] = {}
            for i, job in enumerate(jobs):
                by_prompt.setdefault(job.prompt or self.config.custom_fact_extraction_prompt, []).append(i)
            for prompt, members in by_prompt.items():
                try:
                    found = llm.extract_many([jobs[i].messages for i in members], prompt)
                except ExtractionError:
                    continue
                done.update({i: ([_dated(f, jobs[i].moment) for f in _own_facts(_unique(facts), jobs[i].messages,
                                                                                jobs[i].scope)], ())
                             for i, facts in zip(members, found, strict=True)})
        return [done[i] if i in done else self._facts(job.request(), always_fall_back=True)
                for i, job in enumerate(jobs)]

    def finish(self, job_id: int, job: Job, extracted: list[Fact], flags: tuple[str, ...]) -> None:
        """Write a queued job's facts and clear the job, in one batch; call under the write lock.

        Its episodes are read again: one deleted or changed since add() is not a source (its
        words were taken back), and facts drawn only from such messages are dropped. Nor is one
        of another scope (a job carried by an import file names its episodes by id): a job never
        marks, or links to, another user's messages.
        """
        found = {r.id: r for r in self.store.get(list(dict.fromkeys(i for i, _, _ in job.episodes)))}
        alive = [(found[i], at) for i, digest, at in job.episodes
                 if i in found and found[i].kind == EPISODE and found[i].hash == digest and found[i].scope == job.scope]
        vectors = self.store.get_vectors([r.id for r, _ in alive])
        alive = [(r, at) for r, at in alive if r.id in vectors]
        if not alive:
            self.writer.apply([], done=[job_id])
            return
        episodes = _Episodes([Write(Event.NONE, r, vectors[r.id][None, :]) for r, _ in alive],
                             [at for _, at in alive], stored=True)
        said_here = {p for _, at in alive for p in at}
        kept = [f for f in extracted if not f.sources or set(f.sources) & said_here]
        self._conclude(job.request(), episodes, kept, flags, done=(job_id,))

    def _conclude(self, request: AddRequest, episodes: _Episodes, extracted: list[Fact], flags: tuple[str, ...],
                  contexts: Sequence[Write] = (), done: Sequence[int] = (),
                  marks: Sequence[Write] = ()) -> list[Change]:
        """Reconcile the facts and write them with the episodes, contexts and ``marks`` (memories this
        add() superseded); the changes add() reports."""
        if flags:
            writes = [episodes.marked(w, _flags_of(w.record, flags), flags) for w in episodes.writes]
            self.writer.apply([*writes, *contexts, *marks], episodes.history([*writes, *contexts, *marks]), done=done)
            return [w.change() for w in writes]
        vectors = self.embedder.embed([f.text for f in extracted]) if extracted else None
        facts = self._reconcile(extracted, vectors, request, episodes) if vectors is not None else []
        # An episode that a stored fact draws on is covered by it (get_all shows the fact); one that
        # no fact cites (no fact extracted, or only repeats of stored ones) is the memory itself.
        cited = {s for w in facts if w.event in (Event.ADD, Event.UPDATE) for s in w.record.sources}
        changed = {w.record.id for w in facts}
        stored = [episodes.marked(w, {"covered": True}) if w.record.id in cited and w.record.id not in changed
                  else w for w in episodes.writes]
        # A memory reconciliation rewrote is written as reconciled (an update is current by definition).
        rewritten = {w.record.id for w in facts if w.event in (Event.UPDATE, Event.DELETE)}
        marks = [w for w in marks if w.record.id not in rewritten]
        writes = [*stored, *facts, *contexts, *marks]
        self.writer.apply(writes, episodes.history(writes), done=done)
        # Only the scope's own memories: an assistant's reply or a "Noted!" is stored, not reported (currency.py).
        has_user = request.scope.user_id is not None
        shown = [w for w in stored if w.event is Event.ADD and not w.record.covered and not w.record.chatter
                 and is_own(w.record.role, has_user)]
        # Episodes uncovered by a reconciliation DELETE are bookkeeping, not what this add() did.
        return [w.change() for w in [*[w for w in facts if w.record.kind == FACT], *shown]]

    # -- episodes ------------------------------------------------------------
    def _episodes(self, messages: list[Said], request: AddRequest) -> _Episodes:
        texts = [m.text for m in messages]
        # memory.add checked each message against the store's limit; its date and speaker can push it over.
        for index, text in enumerate(texts):
            check_text(text, f"message {index} as stored (with its date and speaker)", self.store.limits.max_text_bytes)
        existing = self._existing_by_hash(texts, request.scope, EPISODE) if texts else {}
        fresh = [m for m in messages if text_hash(m.text) not in existing]
        vectors = self.embedder.embed([m.text for m in fresh]) if fresh else None
        rows = {m.text: i for i, m in enumerate(fresh)}
        writes = []
        for m in messages:
            if (same := existing.get(text_hash(m.text))) is not None:
                writes.append(Write(Event.NONE, same, flags=("exact_duplicate",)))
                continue
            assert vectors is not None
            record = replace(_new_record(m.text, request.scope, request.metadata, kind=EPISODE, speaker=m.speaker,
                                         timestamp=request.epoch), role=m.role, chatter=is_chatter(m.content, m.role))
            writes.append(Write(Event.ADD, record, vectors[rows[m.text]][None, :]))
        return _Episodes(self._with_stable_ids(writes), [m.indices for m in messages])

    # -- contexts ----------------------------------------------------------
    def _contexts(self, episodes: _Episodes, request: AddRequest) -> list[Write]:
        """A context (context.py) for each new message that has a message before it."""
        if not any(w.event is Event.ADD for w in episodes.writes):
            return []
        said_here = [line_of(w.record) for w in episodes.writes]
        # The messages said before this call: the scope's latest within the window, oldest first
        # (a message added again is one of this call's, not one before it).
        here = {w.record.id for w in episodes.writes}
        stored = [r for r in self.store.latest(request.scope, request.epoch - WINDOW_S, request.epoch,
                                               TURNS_BEFORE + len(here), kinds=(EPISODE,)) if r.id not in here]
        earlier = [line_of(r) for r in stored[-TURNS_BEFORE:]]
        texts: list[tuple[Write, list[Line], str]] = []
        for write, line in zip(episodes.writes, said_here, strict=True):
            lines = before(line, earlier)
            earlier.append(line)
            if write.event is not Event.ADD or not lines:
                continue
            text = context_text([*lines, line])
            if len(text.encode("utf-8")) <= self.store.limits.max_text_bytes:
                texts.append((write, lines, text))
        if not texts:
            return []
        vectors = self.embedder.embed([text for _, _, text in texts])
        writes = []
        for (episode, lines, text), vector in zip(texts, vectors, strict=True):
            # Its message first (the key of its group in search), then the messages it quotes.
            record = _new_record(text, request.scope, request.metadata, kind=CONTEXT, speaker=episode.record.speaker,
                                 timestamp=episode.record.timestamp or request.epoch,
                                 sources=(episode.record.id, *(line.id for line in lines)))
            writes.append(Write(Event.ADD, record, vector[None, :]))
        return self._with_stable_ids(writes)

    # -- extract -----------------------------------------------------------
    def _facts(self, request: AddRequest, always_fall_back: bool = False) -> tuple[list[Fact], tuple[str, ...]]:
        """The extracted facts (one per text), or the fallback flags when extraction failed under store_raw
        (``always_fall_back``: in the background, where no caller is there to be raised to)."""
        prompt = request.prompt or self.config.custom_fact_extraction_prompt
        try:
            facts = self._llm().extract_facts(request.messages, prompt)
        except ExtractionError:
            if always_fall_back or self.config.on_extraction_failure == "store_raw":
                return [], (RAW_FALLBACK_FLAG,)
            raise
        return [_dated(f, request.moment) for f in _own_facts(_unique(facts), request.messages, request.scope)], ()

    # -- currency ------------------------------------------------------------
    def _superseded(self, episodes: _Episodes, messages: Sequence[Said], request: AddRequest) -> list[Write]:
        """The stored memories these messages say no longer hold, marked (currency.supersedes).

        An earlier message of the same speaker (its own, not an assistant's reply to it) on the same
        topic is superseded by a new one that says something changed; so are the facts drawn from it
        that speak of the new message's topics. Nothing is deleted: the past stays findable.
        """
        here = set(episodes.ids)
        marked: dict[str, Write] = {}
        for write, message in zip(episodes.writes, messages, strict=True):
            new = write.record
            if (write.event is not Event.ADD or write.vector is None or new.chatter
                    or not is_own(new.role, request.scope.user_id is not None) or not says_change(message.content)):
                continue
            old = self._earlier_states(new, write.vector, message.content, request.scope, here | marked.keys())
            about = topics(message.content)
            facts = [f for f in links.facts_drawn_from(self.store, *old)
                     if f.current and f.id not in marked and (not about or topics(f.memory) & about)]
            vectors = self.store.get_vectors([r.id for r in [*old, *facts]])
            for record in [*old, *facts]:
                if record.id in vectors:
                    stale = replace(record, superseded_by=new.id, valid_until=new.timestamp, updated_at=now_iso())
                    marked[record.id] = Write(Event.UPDATE, stale, vectors[record.id][None, :], previous=record,
                                              previous_vector=vectors[record.id], flags=(SUPERSEDED_FLAG,))
        return list(marked.values())

    def _earlier_states(self, new: MemoryRecord, vector: Vectors, content: str, scope: Scope,
                        skip: AbstractSet[str]) -> list[MemoryRecord]:
        """The current messages, said before ``new`` by its speaker, that ``new`` supersedes."""
        hits = self.store.search(vector, scope, None, SUPERSEDE_CANDIDATES, kinds=(EPISODE,))
        # The conversation's people (speakers, the scope's ids, names most messages carry) are named
        # everywhere: no topic of their own.
        people = frozenset(p.lower() for p in (*(h.record.speaker for h in hits), new.speaker,
                                               *scope.as_dict().values()) if p)
        people |= common_names([h.record.memory for h in hits])

        def earlier(record: MemoryRecord) -> bool:
            return (record.id not in skip and record.kind == EPISODE and record.scope == new.scope
                    and record.speaker == new.speaker and not record.chatter
                    and is_own(record.role, scope.user_id is not None)
                    and (record.timestamp or 0) <= (new.timestamp or 0))

        said_before = [h.record for h in hits if earlier(h.record)
                       and supersedes(content, content_of(h.record.memory, h.record.speaker), h.score, people)]
        # One already superseded hands its topic on: what superseded it (the topic's latest state,
        # "Mango passed away" after "I have a cat called Mango") is superseded in turn.
        old = {r.id: r for r in said_before if r.current}
        later = list(dict.fromkeys(i for r in said_before if (i := r.superseded_by) and i not in old))
        old.update((r.id, r) for r in (self.store.get(later) if later else []) if earlier(r) and r.current)
        return list(old.values())

    # -- infer=True --------------------------------------------------------
    def _reconcile(self, facts: list[Fact], vectors: Vectors, request: AddRequest,
                   episodes: _Episodes) -> list[Write]:
        existing = self._existing_by_hash([f.text for f in facts], request.scope, FACT)
        writes: list[Write] = []
        pending: list[tuple[MemoryRecord, Vectors]] = []  # ADDs of this call, matched like stored ones
        touched: set[str] = set()  # a stored memory is changed at most once per add()
        # Each fact may ask the model: a large add() watched on a terminal shows how far it is (progress.py).
        with progress.bar(len(facts), "reconciling facts", unit="fact") as step:
            for fact, vector in zip(facts, vectors, strict=True):
                step(1)
                text = fact.text
                if (same := existing.get(text_hash(text))) is not None:
                    writes.append(Write(Event.NONE, same, flags=("exact_duplicate",)))
                    continue
                slot = slot_of(text)
                limit = max(self.config.similarity_candidates, SLOT_SEARCH_LIMIT if slot else 0)
                hits = [h for h in self.store.search(vector[None, :], request.scope, None, limit, kinds=(FACT,))
                        if h.record.id not in touched]
                duplicate = self._near_duplicate(text, vector, hits, pending)
                if duplicate is not None:
                    writes.append(Write(Event.NONE, duplicate, flags=("near_duplicate",)))
                    continue
                sources = episodes.sources_of(fact, vector)
                speaker = fact.speaker or next((s.speaker for s in sources if s.speaker), None)
                nearest = self._on_topic(text, speaker, [h for h in hits[:self.config.similarity_candidates]
                                                         if h.score >= RELATED_THRESHOLD])
                related = _related(nearest, hits, slot)
                write = self._decide(text, vector, related, request, sources) if related else None
                if write is None:
                    # Whose and when (above): the extractor's, else the source message's speaker; the call's time.
                    when = int(fact.when.timestamp()) if fact.when is not None else request.epoch
                    record = _new_record(text, request.scope, request.metadata, kind=FACT, speaker=speaker,
                                         timestamp=when, sources=tuple(s.id for s in sources) or episodes.ids)
                    write = Write(Event.ADD, record, vector[None, :])
                if write.event is Event.ADD:
                    pending.append((write.record, vector))
                else:
                    touched.add(write.record.id)
                writes.append(write)
        return self._with_stable_ids(writes)

    def _with_stable_ids(self, writes: list[Write]) -> list[Write]:
        """ADDs renamed to their stable ids (records.stable_id) where stable ids are used.

        An id the store holds with another text keeps the random one: that memory was updated
        since it was added, and reusing its id would overwrite it. (The same text there means
        another process added it since our duplicate check: the upsert lands on its row.)
        """
        if not self._stable_ids or not any(w.event is Event.ADD for w in writes):
            return writes
        wanted = {w.record.id: stable_id(w.record.scope, w.record.kind, w.record.hash)
                  for w in writes if w.event is Event.ADD}
        hashes = {wanted[w.record.id]: w.record.hash for w in writes if w.event is Event.ADD}
        taken = {r.id for r in self.store.get(list(hashes)) if r.hash != hashes[r.id]}
        out = []
        for w in writes:
            new_id = wanted.get(w.record.id) if w.event is Event.ADD else None
            if new_id is not None and new_id not in taken:
                taken.add(new_id)  # one text twice in one call: the second keeps its random id
                w = replace(w, record=replace(w.record, id=new_id))
            out.append(w)
        return out

    def _on_topic(self, text: str, speaker: str | None, hits: list[SearchHit]) -> list[SearchHit]:
        """The hits still alike once the people's names are taken out of both texts (TOPIC_THRESHOLD)."""
        names = {n for n in (speaker, *(h.record.speaker for h in hits)) if n}
        if not hits or not names:
            return hits
        pattern = re.compile(r"\b(?:" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
                             + r")(?:'s)?\b")
        texts = [pattern.sub("", t) for t in (text, *(h.record.memory for h in hits))]
        if texts[0] == text and all(t == h.record.memory for t, h in zip(texts[1:], hits, strict=True)):
            return hits  # no name in any of them: the similarity already measured stands
        vectors = self.embedder.embed(texts)
        return [h for h, v in zip(hits, vectors[1:], strict=True) if _cosine(vectors[0], v) >= TOPIC_THRESHOLD]

    def _near_duplicate(self, text: str, vector: Vectors, hits: Sequence[SearchHit],
                        pending: Sequence[tuple[MemoryRecord, Vectors]]) -> MemoryRecord | None:
        threshold = self.config.near_duplicate_threshold
        for hit in hits:
            if hit.score < threshold:
                break
            if could_be_same_fact(text, hit.record.memory):
                return hit.record
        for record, other in pending:
            if _cosine(vector, other) >= threshold and could_be_same_fact(text, record.memory):
                return record
        return None

    def _decide(self, text: str, vector: Vectors, related: Sequence[SearchHit], request: AddRequest,
                sources: Sequence[MemoryRecord]) -> Write | None:
        candidates = [Candidate(key=i, text=h.record.memory) for i, h in enumerate(related)]
        # The rules first; then the model, whatever LanguageModel it is, its answer held against the
        # texts (rules.checked): no answer that loses or invents information is written.
        fact = Fact(text)
        try:
            decision = decide(fact, candidates)
            if decision is None:
                answer = self._llm().reconcile(fact, candidates, self.config.custom_update_memory_prompt)
                decision = checked(answer, fact, candidates)
        except ExtractionError:
            if self.config.on_extraction_failure == "raise":
                raise
            # The fact itself is sound; only its relation to stored ones is unknown: keep it, flagged.
            metadata = {**request.metadata, "localmem_flags": [UNRECONCILED_FLAG]}
            record = _new_record(text, request.scope, metadata, kind=FACT, timestamp=request.epoch,
                                 sources=tuple(s.id for s in sources))
            return Write(Event.ADD, record, vector[None, :], flags=(UNRECONCILED_FLAG,))
        target = _target(decision.target_id, related)
        if decision.event is Event.ADD or target is None:
            return None  # ADD, or an answer naming no memory shown: add the fact as it is
        if decision.event is Event.NONE:
            return Write(Event.NONE, target)
        new_text = decision.text.strip() or text
        if text_hash(new_text) == target.hash:
            return Write(Event.NONE, target)
        # The updated fact now also draws on this fact's messages; its time is its latest source's.
        linked = tuple(dict.fromkeys((*target.sources, *(s.id for s in sources))))
        new_vector = vector[None, :] if new_text == text else self.embedder.embed([new_text])
        return Write.update(target, new_text, new_vector, metadata={**target.metadata, **request.metadata},
                            sources=linked, timestamp=max(target.timestamp or 0, request.epoch))

    def _existing_by_hash(self, texts: Sequence[str], scope: Scope, kind: Kind) -> dict[str, MemoryRecord]:
        found = self.store.find_by_hash(sorted({text_hash(t) for t in texts}), scope)
        return {r.hash: r for r in found if r.kind == kind}


def _new_record(text: str, scope: Scope, metadata: dict[str, Any], *, kind: Kind, timestamp: int,
                speaker: str | None = None, sources: tuple[str, ...] = ()) -> MemoryRecord:
    return MemoryRecord(id=str(uuid.uuid4()), memory=text, hash=text_hash(text), scope=scope,
                        metadata=dict(metadata), created_at=now_iso(), updated_at=None, kind=kind,
                        speaker=speaker, timestamp=timestamp, sources=sources)


def _unique(facts: Sequence[Fact]) -> list[Fact]:
    """One fact per stripped text, in order; empty ones dropped."""
    unique: dict[str, Fact] = {}
    for fact in facts:
        if text := fact.text.strip():
            unique.setdefault(text, replace(fact, text=text))
    return list(unique.values())


def _own_facts(facts: Sequence[Fact], messages: Sequence[Message], scope: Scope) -> list[Fact]:
    """The facts drawn from the scope's own messages: an assistant's reply is context, never a fact about
    the user (currency.is_own). A fact that names no source message is kept when any message is own."""
    has_user = scope.user_id is not None
    own = {i for i, m in enumerate(messages) if m.role != "system" and is_own(m.role, has_user)}
    return [f for f in facts if (set(f.sources) & own if f.sources else own)]


def _dated(fact: Fact, moment: datetime) -> Fact:
    """The fact with its relative dates resolved against the message's time ("yesterday" -> "yesterday
    (7 May 2023)"), whatever model drew it; a model that dated it already is left as it is."""
    if fact.when is not None:
        return fact
    text, when = dated(fact.text, moment, append=False)
    return replace(fact, text=text, when=when) if text != fact.text else fact


def _flags_of(record: MemoryRecord, flags: tuple[str, ...]) -> dict[str, Any]:
    """An episode stored without extraction (it failed under store_raw): said so in its metadata."""
    return {"metadata": {**record.metadata, "localmem_flags": list(flags)}}


def _related(nearest: Sequence[SearchHit], hits: Sequence[SearchHit], slot: Slot | None) -> list[SearchHit]:
    """The nearest hits on the fact's topic, plus any hit that sets the fact's attribute."""
    related = list(nearest)
    if slot is not None:
        seen = {h.record.id for h in related}
        related += [h for h in hits if h.record.id not in seen and _slot_name(h.record.memory) == slot.name]
    return related


def _slot_name(memory: str) -> str | None:
    other = slot_of(memory)
    return other.name if other is not None else None


def _target(key: str | None, related: Sequence[SearchHit]) -> MemoryRecord | None:
    if key is None or not key.isdigit() or int(key) >= len(related):
        return None
    return related[int(key)].record


def _cosine(a: Vectors, b: Vectors) -> float:
    denom = float(np.linalg.norm(a) * np.linalg.norm(b)) or 1.0
    return float(np.dot(a, b)) / denom
