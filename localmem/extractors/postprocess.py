"""From the model's line to a stored Fact: whose (names), gates, when (dates in words).

The model proposes lines in the speaker's own words; everything after that is
deterministic and happens here, in this order:

1. whose: with a known speaker, first and second person become names
   ("My mother passed away" -> "Deborah's mother passed away"), and a line taken
   from what the speaker said about the listener names the listener; without one,
   Mem0's subjectless style ("Loves dog"), which the quickstart relies on;
2. the quality gates of ``gates.py`` (counted in a GateCounts);
3. when: relative dates are resolved against the message's time and the date is
   written in words ("yesterday (7 May 2023)"; a fact with no relative date gets
   the message's date), and ``Fact.when`` holds it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timezone

from localmem import temporal
from localmem.extractors.gates import GateCounts, rejects
from localmem.extractors.prompting import to_memory_style
from localmem.extractors.whose import Turn, about_listener, name_persons, with_subject
from localmem.records import Fact

_DAY = re.compile(r"\((\d{1,2}) ([A-Z][a-z]+) (\d{4})\)")


def finish(proposed: str, turn: Turn, time: datetime | None, counts: GateCounts,
           names: frozenset[str] = frozenset()) -> Fact | None:
    """The fact for one proposed line of ``turn``, or None when a gate rejects it (counted)."""
    counts.proposed += 1
    proposed = proposed.strip().rstrip(".!").strip()
    if turn.speaker is None:
        text = to_memory_style(proposed)
    elif turn.addressee is not None and about_listener(proposed, turn.text):
        # Said to the listener about them: theirs, whether the model left the subject out, wrote
        # "I" or put the speaker's name there.
        text = with_subject(name_persons(proposed, turn.addressee, turn.speaker), turn.addressee)
        text = re.sub(rf"^{re.escape(turn.speaker)}\b(?!')", turn.addressee, text)
    else:
        text = with_subject(name_persons(proposed, turn.speaker, turn.addressee), turn.speaker)
    gate = rejects(proposed, text, turn.text, names | {n for n in (turn.speaker, turn.addressee) if n})
    if gate is not None:
        counts.rejected[gate] += 1
        return None
    counts.kept += 1
    when = None
    if time is not None:
        text, when = dated(text, time)
    return Fact(text, sources=(turn.index,), speaker=turn.speaker, when=when)


def dated(text: str, time: datetime, *, append: bool = True) -> tuple[str, datetime]:
    """The text with its relative dates resolved against ``time`` (else, with ``append``, that date
    appended), and the event day.

    The event day is the first day a relative date resolved to ("yesterday" -> the day before);
    a phrase that resolves to a week, month or year leaves the message's own time.
    """
    resolved = temporal.resolve_relative_dates(text, time)
    if resolved == text:
        return (f"{text} ({temporal.date_in_words(time)})" if append else text), time
    for match in _DAY.finditer(resolved):
        if match.group(0) in text:
            continue  # a date the text already had, not one we resolved
        try:
            day = datetime.strptime(" ".join(match.groups()), "%d %B %Y")
        except ValueError:
            continue
        zone = time.tzinfo or timezone.utc
        return resolved, day.replace(hour=time.hour, minute=time.minute, tzinfo=zone)
    return resolved, time


def merge(facts: Iterable[Fact]) -> list[Fact]:
    """One fact per text, in first-seen order; a text read from several messages lists all their indices."""
    by_text: dict[str, Fact] = {}
    for fact in facts:
        seen = by_text.get(fact.text)
        if seen is None:
            by_text[fact.text] = fact
        else:
            sources = tuple(dict.fromkeys(seen.sources + fact.sources))
            by_text[fact.text] = Fact(seen.text, sources, seen.speaker, seen.when)
    return list(by_text.values())
