"""Time in words: parse message times, write dates as people and BM25 read them, resolve relative dates.

Placeholder for the extractor work of the facts branch: the temporal module on
main replaces this file (same four functions, same signatures) on merge.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from localmem.errors import InvalidInputError

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def parse_timestamp(value: object, *, now: datetime | None = None) -> datetime:
    """Unix epoch, ISO-8601 text or datetime -> an aware UTC datetime; None -> now."""
    if value is None:
        return now or datetime.now(timezone.utc)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, str):
        try:
            return parse_timestamp(datetime.fromisoformat(value))
        except ValueError as exc:
            raise InvalidInputError(f"timestamp {value!r} is not ISO-8601") from exc
    raise InvalidInputError(f"timestamp must be epoch seconds, ISO-8601 text or datetime, got {type(value).__name__}")


def date_in_words(dt: datetime) -> str:
    return f"{dt.day} {_MONTHS[dt.month - 1]} {dt.year}"


def parse_locomo_datetime(text: str) -> datetime:
    """``1:56 pm on 8 May, 2023`` -> that time, UTC."""
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=timezone.utc)


_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "a few": 3}
_RELATIVE = re.compile(
    r"\b(yesterday|today|tonight|tomorrow|last night|last (?:week|month|year|weekend)|next (?:week|month|year)"
    r"|last (?:" + "|".join(_WEEKDAYS) + r")"
    r"|(?:\d+|a|an|one|two|three|four|five|six|a few) (?:day|week|month|year)s? ago)\b", re.IGNORECASE)


def _shift(anchor: datetime, phrase: str) -> str:
    p = phrase.lower()
    day = timedelta(days=1)
    if p in {"today", "tonight"}:
        return date_in_words(anchor)
    if p in {"yesterday", "last night"}:
        return date_in_words(anchor - day)
    if p == "tomorrow":
        return date_in_words(anchor + day)
    if p in {"last week", "last weekend"}:
        return f"the week before {date_in_words(anchor)}"
    if p == "next week":
        return f"the week after {date_in_words(anchor)}"
    if p == "last month":
        month = (anchor.month - 2) % 12
        return f"{_MONTHS[month]} {anchor.year - (anchor.month == 1)}"
    if p == "next month":
        return f"{_MONTHS[anchor.month % 12]} {anchor.year + (anchor.month == 12)}"
    if p == "last year":
        return str(anchor.year - 1)
    if p == "next year":
        return str(anchor.year + 1)
    if p.startswith("last "):
        back = (anchor.weekday() - _WEEKDAYS.index(p[5:])) % 7 or 7
        return date_in_words(anchor - back * day)
    count_text, unit = p.rsplit(" ", 2)[0], p.rsplit(" ", 2)[1].rstrip("s")
    count = int(count_text) if count_text.isdigit() else _NUMBERS[count_text]
    if unit == "day":
        return date_in_words(anchor - count * day)
    if unit == "week":
        return date_in_words(anchor - 7 * count * day)
    if unit == "month":
        month = (anchor.month - 1 - count) % 12
        return f"{_MONTHS[month]} {anchor.year + (anchor.month - 1 - count) // 12}"
    return str(anchor.year - count)


def resolve_relative_dates(text: str, anchor: datetime) -> str:
    """``I went yesterday`` -> ``I went yesterday (7 May 2023)``: the date written after the phrase."""
    return _RELATIVE.sub(lambda m: f"{m.group(0)} ({_shift(anchor, m.group(0))})", text)
