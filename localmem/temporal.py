"""Time as localmem stores and writes it: parsing user timestamps, dates in words.

Pure functions, no clock reads except ``parse_timestamp(None)``. (A minimal
version: the full one, with relative-date resolution, lands separately.)
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from localmem.errors import InvalidInputError

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_LOCOMO = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*([ap]m)\s+on\s+(\d{1,2})\s+([A-Za-z]+),?\s+(\d{4})\s*$", re.IGNORECASE)


def parse_timestamp(value: int | float | str | datetime | None, *, now: datetime | None = None) -> datetime:
    """Unix epoch seconds, an ISO-8601 string or a datetime, as an aware UTC datetime; None means now."""
    if value is None:
        return (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    if isinstance(value, bool):
        raise InvalidInputError(f"timestamp must be epoch seconds, an ISO-8601 string or a datetime, got {value!r}")
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float):
        try:
            moment = datetime.fromtimestamp(value, timezone.utc)
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidInputError(f"timestamp {value!r} is not a valid Unix time: {exc}") from None
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInputError(f"timestamp {value!r} is not ISO 8601 (e.g. 2023-05-08T13:56:00Z)") from None
    else:
        raise InvalidInputError(
            f"timestamp must be epoch seconds, an ISO-8601 string or a datetime, got {type(value).__name__}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # a naive time is taken as UTC, as Mem0 does
    return moment.astimezone(timezone.utc)


def date_in_words(moment: datetime) -> str:
    """``8 May 2023``: the form a person writes and a word index can match."""
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}"


def resolve_relative_dates(text: str, anchor: datetime) -> str:
    """Write the date beside each relative expression; this minimal version changes nothing."""
    del anchor
    return text


def parse_locomo_datetime(text: str) -> datetime:
    """``1:56 pm on 8 May, 2023`` (LoCoMo's session times) as aware UTC."""
    match = _LOCOMO.match(text)
    if not match:
        raise InvalidInputError(f"not a LoCoMo session time: {text!r}")
    hour, minute, half, day, month_name, year = match.groups()
    months = [m.lower() for m in _MONTHS]
    if month_name.lower() not in months:
        raise InvalidInputError(f"unknown month {month_name!r} in {text!r}")
    hour_24 = int(hour) % 12 + (12 if half.lower() == "pm" else 0)
    return datetime(int(year), months.index(month_name.lower()) + 1, int(day), hour_24, int(minute),
                    tzinfo=timezone.utc)
