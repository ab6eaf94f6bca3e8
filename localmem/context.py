"""Contexts: each message restated in its conversation, as a search key for it.

A reply rarely names what it answers: "Yes, twice last year!" follows "Have you
been to Paris, Deborah?", and "Thanks! It was so powerful" follows the news it
thanks for. Searched alone, such a message is found by nobody; the question
that names its topic ranks instead, or nothing does. With infer=True each new
message also gets a *context*: the two messages said before it (in the same
scope, within ``WINDOW_S``) and itself, first and second person rewritten to
names where the speakers are known ("I" -> "Caroline", "you" -> "Melanie"),
after the date in words. It is stored as a row of its own (kind ``context``),
embedded and word-indexed like any memory, pointing at its message
(``sources[0]``; the messages before it follow, so that deleting any of them
deletes the context, and its words, too). Search ranks it with its message
(retrieval/fusion.py) and never shows it: the message is the result.

Deterministic: no model, one embedding per message. Measured on the LoCoMo dev
conversations (offline replay of the fusion over the same rows; evidence hit@5 /
answer recall@5), first 200 turns of each: messages alone 0.683 / 0.616, with a
context of one message before 0.747 / 0.676, of two 0.772 / 0.698, of three
0.765 / 0.686; whole conversations 0.604 / 0.567 -> 0.677 / 0.621 (two before).
Naming the persons matters: the same two messages before, as said, gave 0.726 /
0.646 with one before (named: 0.747 / 0.676).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from localmem.extractors.whose import name_persons
from localmem.records import MemoryRecord
from localmem.temporal import date_in_words

# How many messages before a message make its context, and how far back they may lie: one
# sitting of a conversation. (LoCoMo's sessions are days apart; a context that crossed into the
# previous session scored the same as one that did not: 0.772 / 0.694 against 0.772 / 0.698.)
TURNS_BEFORE = 2
WINDOW_S = 3 * 3600
# A long message is cut in its context: the embedder reads ~256 word pieces, and the row must fit the store.
_LINE_CHARS = 1_000
_DATE_PREFIX = re.compile(r"^\([^)]{1,40}\) ")


@dataclass(frozen=True)
class Line:
    """One message as a context reads it: who said it (None when the text does not name them) and what."""

    id: str
    speaker: str | None
    content: str
    timestamp: int


def line_of(episode: MemoryRecord) -> Line:
    """The message of a stored episode ("(8 May 2023) Caroline: ..."), its date prefix taken off."""
    body = _DATE_PREFIX.sub("", episode.memory, count=1)
    speaker = episode.speaker
    if speaker and body.startswith(f"{speaker}: "):
        body = body[len(speaker) + 2:]
    else:
        speaker = None  # named by the scope only: the text, and so the context, leave the name out
    return Line(episode.id, speaker, body[:_LINE_CHARS], episode.timestamp or 0)


def before(line: Line, earlier: Sequence[Line]) -> list[Line]:
    """The messages of ``earlier`` (oldest first) that make ``line``'s context: the last
    ``TURNS_BEFORE`` said at most ``WINDOW_S`` before it."""
    near = [e for e in earlier if line.timestamp - WINDOW_S <= e.timestamp <= line.timestamp]
    return near[-TURNS_BEFORE:]


def context_text(lines: Sequence[Line]) -> str:
    """``(8 May 2023) Melanie asks Caroline ... Caroline went ...``: the lines, oldest first, the last
    being the message itself, each with first and second person named, dated as the message."""
    out = []
    for i, line in enumerate(lines):
        if line.speaker is None:
            out.append(line.content)
            continue
        # Whom a line addresses: the nearest other speaker, the one answering it first.
        others = [o.speaker for o in (*lines[i + 1:], *reversed(lines[:i])) if o.speaker not in (None, line.speaker)]
        out.append(name_persons(line.content, line.speaker, others[0] if others else None))
    moment = datetime.fromtimestamp(lines[-1].timestamp, timezone.utc)
    return f"({date_in_words(moment)}) " + " ".join(out)
