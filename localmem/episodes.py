"""Episodes: each message kept as it was said, with who said it and when.

An episode's stored text is ``"(8 May 2023) Caroline: I went to a support group
yesterday (7 May 2023)."``: the date in words and the speaker are part of the
text because that is what both retrievers can match. A question such as "When
did Caroline go to the support group?" has its answer only in the session's
time, and word matching (BM25) finds names and dates that a small embedder
blurs. On the LoCoMo dev turns this form lifted evidence hit@5 from 0.613 to
0.656 and answer recall@5 from 0.396 to 0.559 (issue #16's table); relative
dates are resolved by ``temporal.resolve_relative_dates``, deterministic code.

Who said a message, first match wins: the message's ``name`` field, a leading
``"Name: "`` in its content (the form chat logs and LoCoMo use), else the role
and scope: a user message is the ``user_id``'s, an assistant message the
``agent_id``'s (or ``"assistant"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

from localmem.records import Message, Scope
from localmem.temporal import date_in_words, resolve_relative_dates

# "Caroline: ...", "Dr. Smith: ...", "Mary-Jane O'Neil: ": up to three capitalised words before a colon.
_PREFIX = re.compile(r"^\s*((?:[A-Z][\w.'’-]*)(?: [A-Z][\w.'’-]*){0,2}):\s+(?=\S)")


@dataclass(frozen=True)
class Said:
    """One message ready to store: speaker, content as said (speaker prefix removed), stored text."""

    speaker: str | None
    content: str
    text: str
    indices: tuple[int, ...] = ()  # the positions, in the add() call's messages, of the messages said so
    role: str | None = None  # the chat role of the (first) message said so


def speaker_of(message: Message, scope: Scope) -> tuple[str | None, bool, str]:
    """(speaker, whether the message itself named them, content without a leading "Speaker: ")."""
    content = message.content.strip()
    if message.name:
        prefix = _PREFIX.match(content)
        if prefix and prefix.group(1).casefold() == message.name.casefold():
            content = content[prefix.end():]
        return message.name, True, content
    if prefix := _PREFIX.match(content):
        return prefix.group(1), True, content[prefix.end():]
    if message.role == "user":
        return scope.user_id or "user", False, content
    if message.role == "assistant":
        return scope.agent_id or "assistant", False, content
    return message.role, False, content


def render(content: str, speaker: str | None, moment: datetime) -> str:
    """``(8 May 2023) Speaker: content`` with relative dates resolved against ``moment``."""
    body = resolve_relative_dates(content, moment)
    return f"({date_in_words(moment)}) {speaker}: {body}" if speaker else f"({date_in_words(moment)}) {body}"


def said(messages: list[Message], scope: Scope, moment: datetime) -> list[Said]:
    """The messages worth keeping (not system prompts, not blank), in order, without repeats."""
    out: dict[str, Said] = {}
    for index, message in enumerate(messages):
        if message.role == "system" or not message.content.strip():
            continue
        speaker, named, content = speaker_of(message, scope)
        # A speaker known only from the scope stays out of the text: a scoped search drops the
        # scope's own name from the query (query.py), so writing it would only add noise.
        text = render(content, speaker if named else None, moment)
        first = out.setdefault(text, Said(speaker, content, text, role=message.role))
        out[text] = replace(first, indices=(*first.indices, index))
    return list(out.values())


# What render() puts before a message's words: "(8 May 2023) " and, when named, "Speaker: ".
_RENDERED_DATE = re.compile(r"^\([^)]*\) ")


def content_of(text: str, speaker: str | None) -> str:
    """A stored episode's words as said, without the date and speaker that render() put before them."""
    body = _RENDERED_DATE.sub("", text, count=1)
    if speaker and body.startswith(f"{speaker}: "):
        body = body[len(speaker) + 2:]
    return body
