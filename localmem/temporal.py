"""Time in words: parse message timestamps, and resolve relative dates in text against them.

Pure, deterministic functions (standard library only, no model, no network, no locale):

- ``parse_timestamp`` turns what ``add(..., timestamp=...)`` accepts into an aware UTC datetime:
  Unix epoch seconds (int, float or a numeric string; a magnitude of 1e11 or more is read as
  milliseconds, because 1e11 seconds is the year 5138 while 1e11 ms is 1973), an ISO-8601 string
  (``Z`` or an offset; a naive value is UTC; a date alone is midnight UTC), a LoCoMo session time
  ("1:56 pm on 8 May, 2023"), or a datetime (naive = UTC). None means now.
- ``date_in_words`` writes "8 May 2023": English month names, no leading zero, never the locale.
- ``resolve_relative_dates`` writes the resolved date in words, in parentheses, right after each
  relative time expression: "we met yesterday" -> "we met yesterday (7 May 2023)".
  ``find_relative_dates`` returns the same matches with their time ranges, for range filters.

What is resolved (case-insensitive, whole words, a trailing "'s" kept with the phrase):
  today, tonight, this morning/afternoon/evening, yesterday, last night, the day before yesterday,
  tomorrow, the day after tomorrow                               -> a day       "7 May 2023"
  last/this/next/this past/this coming <weekday>, on <weekday>   -> a day
  last/this/next/this past/this coming week, earlier/later this week  -> "the week of 1 May 2023"
  last/this/next/this past/this coming weekend, over/for/on/during the weekend
                                                                 -> "the weekend of 6 May 2023"
  last/this/next month, earlier/later this month                 -> "April 2023"
  last/this/next year, earlier/later this year                   -> "2022"
  last/this/next spring/summer/autumn/fall/winter                -> "summer 2022", "winter 2022-2023"
  N days/weekends/weeks/months/years ago (or "back"), N days from now, in N days/weeks (only in a
      sentence with a future cue, see below: "haven't talked in a few days" is a duration)
      N is digits, one..twelve, "a"/"an", "a couple of" (= 2); "a few" and "several" are vague and
      resolve to "a few days before 8 May 2023" rather than a made-up date; so does "the other day".
Not resolved, on purpose: "recently", "lately", "a while ago" (no date to give; the message's own
time already says when), "since we last talked" (needs the previous session), month names.
Rules for the ambiguous cases (one rule each, so results are predictable):
  - Weeks run Monday to Sunday; a weekend is the Saturday and Sunday of a week.
  - "last <weekday>" is the most recent such day strictly before the anchor (1 to 7 days back);
    "next <weekday>" the first strictly after (1 to 7 days ahead); "this <weekday>" the one in the
    anchor's week. "on <weekday>" reads as past (like "last") unless its sentence has a future cue
    ("will", "'ll", "going to", "gonna", "plan", "tomorrow", "next", "I'm/we're <verb>ing", ...),
    then as "next".
    "over/for/on the weekend" likewise: the past weekend, or the coming one (or the current one
    when the anchor is a Saturday or Sunday).
  - "N weeks ago" is the week holding the day 7*N days back; "N months ago" that calendar month.
  - Seasons are meteorological and northern (spring = March to May, ..., winter = December to
    February). "last summer" is the latest summer that ended by the anchor; "next" the first that
    starts after it; "this" the one holding the anchor, else the nearest one.
  - Days are calendar days of the anchor's own timezone (a naive anchor is UTC).
Idempotent: a phrase already followed by a parenthesis holding a four-digit year is left alone, so
running the function twice changes nothing. Text without such phrases comes back byte-identical.
Months are never matched by name, so "may" the verb and "second place" are never touched.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from localmem.errors import InvalidInputError

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MS_THRESHOLD = 1e11  # epoch values this large are milliseconds (see module docstring)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def parse_timestamp(value: int | float | str | datetime | None, *, now: datetime | None = None) -> datetime:
    """An aware UTC datetime from epoch seconds/ms, an ISO-8601 or LoCoMo string, or a datetime."""
    if value is None:
        return _utc(now) if now is not None else datetime.now(timezone.utc)
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidInputError(
            f"timestamp {value!r} is a {type(value).__name__}: give Unix epoch seconds, an ISO-8601 string "
            "or a datetime")
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+(\.\d+)?", text):
            return _from_epoch(float(text), value)
        iso = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
        try:
            return _utc(datetime.fromisoformat(iso))
        except ValueError:
            pass
        try:
            return parse_locomo_datetime(text)
        except InvalidInputError:
            raise InvalidInputError(
                f"timestamp {value!r} is not a date: give ISO-8601 (e.g. '2023-05-08T13:56:00Z') or epoch seconds"
            ) from None
    return _from_epoch(float(value), value)


def _from_epoch(seconds: float, original: object) -> datetime:
    if not math.isfinite(seconds):
        raise InvalidInputError(f"timestamp {original!r} is not a finite number")
    if abs(seconds) >= _MS_THRESHOLD:
        seconds /= 1000.0
    try:
        return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=seconds)
    except OverflowError:
        raise InvalidInputError(f"timestamp {original!r} is outside the years 1 to 9999") from None


_LOCOMO = re.compile(r"\s*(\d{1,2}):(\d{2})\s*([ap])\.?m\.?\s+on\s+(\d{1,2})\s+([a-z]+),?\s+(\d{4})\s*", re.I)


def parse_locomo_datetime(text: str) -> datetime:
    """LoCoMo's session time, e.g. "1:56 pm on 8 May, 2023", as an aware UTC datetime."""
    found = _LOCOMO.fullmatch(text) if isinstance(text, str) else None
    month = found.group(5).capitalize() if found else ""
    if found is None or month not in MONTHS:
        raise InvalidInputError(f"{text!r} is not a LoCoMo session time like '1:56 pm on 8 May, 2023'")
    hour, minute = int(found.group(1)), int(found.group(2))
    if not 1 <= hour <= 12:
        raise InvalidInputError(f"{text!r} has hour {hour}; a 12-hour clock runs 1 to 12")
    hour = hour % 12 + (12 if found.group(3).lower() == "p" else 0)
    try:
        return datetime(int(found.group(6)), MONTHS.index(month) + 1, int(found.group(4)), hour, minute,
                        tzinfo=timezone.utc)
    except ValueError as error:
        raise InvalidInputError(f"{text!r} is not a real date/time: {error}") from None


def date_in_words(moment: datetime | date) -> str:
    """"8 May 2023": the moment's own calendar date, English month name, no leading zero."""
    return f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}"


@dataclass(frozen=True)
class RelativeDate:
    """One resolved phrase: where it is in the text, its date in words, and its time range [since, until)."""

    start: int
    end: int
    phrase: str
    words: str
    since: datetime
    until: datetime


_Resolved = tuple[str, date, date]  # words, first day, day after the last
_Handler = Callable[["re.Match[str]", date, str], "_Resolved | None"]

_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                 "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a couple of": 2, "couple of": 2,
                 "a couple": 2}
_VAGUE = ("a few", "few", "several")
_VAGUE_DAYS = {"day": (2, 7), "weekend": (14, 42), "week": (14, 42), "month": (60, 183), "year": (730, 2557)}
_COUNT = r"(?P<n>\d{1,3}|" + "|".join(sorted([*_NUMBER_WORDS, *_VAGUE], key=len, reverse=True)) + ")"
_UNIT = r"(?P<unit>day|weekend|week|month|year)s?"
_WEEKDAY = r"(?P<wd>" + "|".join(WEEKDAYS) + ")"
_WHICH = r"(?P<which>last|this past|this coming|this|next)"
_SEASONS = {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}
_FUTURE_CUE = re.compile(r"\b(will|going to|gonna|plan|plans|planning|tomorrow|next|hope to|hoping to|"
                         r"can['’]t wait|cannot wait|looking forward|shall|upcoming)\b|['’]ll\b"
                         r"|(?:\bam|\bare|['’]m|['’]re)\s+\w+ing\b", re.I)  # "I'm going on a picnic on Sunday"
_ALREADY = re.compile(r"\s*\([^()]*\b\d{4}\b[^()]*\)")


def _day(d: date) -> _Resolved:
    return date_in_words(d), d, d + timedelta(days=1)


def _week(d: date) -> _Resolved:
    monday = d - timedelta(days=d.weekday())
    return f"the week of {date_in_words(monday)}", monday, monday + timedelta(days=7)


def _month(d: date, shift: int = 0) -> _Resolved:
    index = d.year * 12 + d.month - 1 + shift
    first = date(index // 12, index % 12 + 1, 1)
    after = date((index + 1) // 12, (index + 1) % 12 + 1, 1)
    return f"{MONTHS[first.month - 1]} {first.year}", first, after


def _weekend(d: date, week_shift: int) -> _Resolved:
    saturday = d - timedelta(days=d.weekday()) + timedelta(days=5 + 7 * week_shift)
    return f"the weekend of {date_in_words(saturday)}", saturday, saturday + timedelta(days=2)


def _year(year: int) -> _Resolved:
    return str(year), date(year, 1, 1), date(year + 1, 1, 1)


def _shift(which: str) -> int:
    return {"last": -1, "this past": -1, "next": 1, "this coming": 1}.get(which, 0)


def _fixed_day(offset: int) -> _Handler:
    return lambda _m, d, _s: _day(d + timedelta(days=offset))


def _named_weekday(m: re.Match[str], d: date, sentence: str) -> _Resolved:
    target = WEEKDAYS.index((m.group("wd") or m.group("wd_on")).lower())
    which = (m.group("which") or "").lower()
    if not which:  # "on <weekday>": tense from the sentence
        which = "next" if _FUTURE_CUE.search(sentence) else "last"
    shift = _shift(which)
    if shift < 0:
        return _day(d - timedelta(days=(d.weekday() - target) % 7 or 7))
    if shift > 0:
        return _day(d + timedelta(days=(target - d.weekday()) % 7 or 7))
    return _day(d + timedelta(days=target - d.weekday()))


def _calendar(m: re.Match[str], d: date, _sentence: str) -> _Resolved:
    which, unit = (m.groupdict().get("which") or "this").lower(), m.group("unit").lower()
    shift = _shift(which)
    if unit == "week":
        return _week(d + timedelta(days=7 * shift))
    if unit == "weekend":
        return _weekend(d, shift)
    if unit == "month":
        return _month(d, shift)
    return _year(d.year + shift)


def _counted(m: re.Match[str], d: date, _sentence: str) -> _Resolved:
    raw, unit = " ".join(m.group("n").lower().split()), m.group("unit").lower()
    sign = -1 if m.groupdict().get("ago") else 1
    if raw in _VAGUE:  # an honest range, not an invented date
        first, last = _VAGUE_DAYS[unit]
        span = sorted((d + timedelta(days=sign * first), d + timedelta(days=sign * last)))
        relation = "before" if sign < 0 else "after"
        reference = {"month": _month(d)[0], "year": str(d.year)}.get(unit, date_in_words(d))
        return f"a few {unit}s {relation} {reference}", span[0], span[1] + timedelta(days=1)
    n = int(raw) if raw.isdigit() else _NUMBER_WORDS[raw]
    if unit == "weekend":
        return _weekend(d, sign * n)
    if unit == "day":
        return _day(d + timedelta(days=sign * n))
    if unit == "week":
        return _week(d + timedelta(days=sign * 7 * n))
    if unit == "month":
        return _month(d, sign * n)
    return _year(d.year + sign * n)


def _in_counted(m: re.Match[str], d: date, sentence: str) -> _Resolved | None:
    # "in a few days" is also a duration ("haven't talked in a few days", "not built in a day")
    return _counted(m, d, sentence) if _FUTURE_CUE.search(sentence) else None


def _other_day(_m: re.Match[str], d: date, _sentence: str) -> _Resolved:
    return f"a few days before {date_in_words(d)}", d - timedelta(days=7), d


def _bare_weekend(_m: re.Match[str], d: date, sentence: str) -> _Resolved:
    if _FUTURE_CUE.search(sentence) or d.weekday() >= 5:
        return _weekend(d, 0)  # the coming weekend, or the one we are in
    return _weekend(d, -1)


def _season(m: re.Match[str], d: date, _sentence: str) -> _Resolved:
    name, which = m.group("season").lower(), m.group("which").lower()
    start_month = _SEASONS[name]
    seasons = [(date(y, start_month, 1), _month(date(y, start_month, 1), 3)[1]) for y in range(d.year - 2, d.year + 2)]
    if _shift(which) < 0:
        first, after = max(s for s in seasons if s[1] <= d)
    elif _shift(which) > 0:
        first, after = min(s for s in seasons if s[0] > d)
    else:
        first, after = min(seasons, key=lambda s: 0 if s[0] <= d < s[1] else min(abs((s[0] - d).days),
                                                                                   abs((d - s[1]).days)))
    label = "autumn" if name == "fall" else name
    years = f"{first.year}-{first.year + 1}" if start_month == 12 else str(first.year)
    return f"{label} {years}", first, after


_RULES: list[tuple[re.Pattern[str], _Handler]] = [
    (re.compile(r"\b(?:" + pattern + r")(?:['’]s)?\b", re.I), handler) for pattern, handler in [
        (r"the\s+day\s+before\s+yesterday", _fixed_day(-2)),
        (r"the\s+day\s+after\s+tomorrow", _fixed_day(2)),
        (r"yesterday|last\s+night", _fixed_day(-1)),
        (r"today|tonight|this\s+(?:morning|afternoon|evening)", _fixed_day(0)),
        (r"tomorrow", _fixed_day(1)),
        (_WHICH + r"\s+" + _WEEKDAY + r"|on\s+(?P<wd_on>" + "|".join(WEEKDAYS) + ")", _named_weekday),
        (_WHICH + r"\s+(?P<unit>weekend|week|month|year)", _calendar),
        (r"(?:earlier|later)\s+this\s+(?P<unit>week|month|year)", _calendar),
        (_COUNT + r"\s+" + _UNIT + r"\s+(?:(?P<ago>ago|back)|from\s+now)", _counted),
        (r"the\s+other\s+day", _other_day),
        (r"(?:over|for|on|during)\s+the\s+(?P<unit>weekend)", _bare_weekend),
        (r"in\s+" + _COUNT + r"\s+(?P<unit>day|week)s?", _in_counted),
        (_WHICH + r"\s+(?P<season>spring|summer|autumn|fall|winter)", _season),
    ]
]


def _sentence_around(text: str, start: int, end: int) -> str:
    left = max(text.rfind(mark, 0, start) for mark in ".!?\n")
    rights = [i for i in (text.find(mark, end) for mark in ".!?\n") if i >= 0]
    return text[left + 1: min(rights) if rights else len(text)]


def find_relative_dates(text: str, anchor: datetime) -> list[RelativeDate]:
    """Every relative time phrase in ``text``, resolved against ``anchor``, in order, without overlaps."""
    tz = anchor.tzinfo or timezone.utc
    d = anchor.date()
    candidates = []
    for pattern, handler in _RULES:
        for m in pattern.finditer(text):
            if _ALREADY.match(text, m.end()):
                continue
            try:
                resolved = handler(m, d, _sentence_around(text, m.start(), m.end()))
                if resolved is None:
                    continue
                words, first, after = resolved
                since = datetime.combine(first, time(), tz).astimezone(timezone.utc)
                until = datetime.combine(after, time(), tz).astimezone(timezone.utc)
            except (ValueError, OverflowError):
                continue  # the date would fall outside the years 1 to 9999: leave the phrase as it is
            candidates.append(RelativeDate(m.start(), m.end(), m.group(0), words, since, until))
    found: list[RelativeDate] = []
    for candidate in sorted(candidates, key=lambda c: (c.start, -c.end)):
        if not found or candidate.start >= found[-1].end:
            found.append(candidate)  # the longest phrase starting first wins ("the day before yesterday")
    return found


def resolve_relative_dates(text: str, anchor: datetime) -> str:
    """``text`` with each relative time phrase followed by its date in words: "yesterday (7 May 2023)"."""
    pieces, cursor = [], 0
    for found in find_relative_dates(text, anchor):
        pieces += [text[cursor:found.end], f" ({found.words})"]
        cursor = found.end
    return "".join(pieces) + text[cursor:] if pieces else text
