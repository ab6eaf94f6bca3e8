"""localmem.temporal: timestamps in, dates in words out, relative dates resolved by rules."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from localmem.errors import InvalidInputError
from localmem.temporal import (
    date_in_words,
    find_relative_dates,
    parse_locomo_datetime,
    parse_timestamp,
    resolve_relative_dates,
)

UTC = timezone.utc
MON_8_MAY_2023 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
LOCOMO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "locomo" / "locomo_dev.json"


def at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 12, 0, tzinfo=UTC)


# (anchor, text, expected). The anchor's weekday is in the comment where the rule depends on it.
CASES = [
    # days around a Monday
    (MON_8_MAY_2023, "we met yesterday", "we met yesterday (7 May 2023)"),
    (MON_8_MAY_2023, "Yesterday was fun", "Yesterday (7 May 2023) was fun"),
    (MON_8_MAY_2023, "I ran today.", "I ran today (8 May 2023)."),
    (MON_8_MAY_2023, "see you tonight!", "see you tonight (8 May 2023)!"),
    (MON_8_MAY_2023, "this morning I baked", "this morning (8 May 2023) I baked"),
    (MON_8_MAY_2023, "this evening", "this evening (8 May 2023)"),
    (MON_8_MAY_2023, "last night was loud", "last night (7 May 2023) was loud"),
    (MON_8_MAY_2023, "the day before yesterday", "the day before yesterday (6 May 2023)"),
    (MON_8_MAY_2023, "tomorrow", "tomorrow (9 May 2023)"),
    (MON_8_MAY_2023, "the day after tomorrow", "the day after tomorrow (10 May 2023)"),
    (MON_8_MAY_2023, "tomorrow's race", "tomorrow's (9 May 2023) race"),
    # weekdays (anchor Monday 8 May 2023)
    (MON_8_MAY_2023, "last Friday", "last Friday (5 May 2023)"),
    (MON_8_MAY_2023, "last Monday", "last Monday (1 May 2023)"),
    (MON_8_MAY_2023, "next Monday", "next Monday (15 May 2023)"),
    (MON_8_MAY_2023, "next Friday", "next Friday (12 May 2023)"),
    (MON_8_MAY_2023, "this Friday", "this Friday (12 May 2023)"),
    (MON_8_MAY_2023, "this past Saturday", "this past Saturday (6 May 2023)"),
    (MON_8_MAY_2023, "last Friday's game", "last Friday's (5 May 2023) game"),
    (MON_8_MAY_2023, "On Friday I went hiking.", "On Friday (5 May 2023) I went hiking."),
    (MON_8_MAY_2023, "I'll go on Friday.", "I'll go on Friday (12 May 2023)."),
    (MON_8_MAY_2023, "I’ll go on Friday.", "I’ll go on Friday (12 May 2023)."),
    (MON_8_MAY_2023, "We went out. I will see her on Sunday!", "We went out. I will see her on Sunday (14 May 2023)!"),
    (at(2023, 5, 5), "last Friday", "last Friday (28 April 2023)"),  # anchor is a Friday
    (at(2023, 5, 5), "next Friday", "next Friday (12 May 2023)"),
    (at(2023, 5, 5), "this Friday", "this Friday (5 May 2023)"),
    (at(2023, 5, 7), "this Monday", "this Monday (1 May 2023)"),  # Sunday: weeks run Monday to Sunday
    # weeks, weekends, months, years
    (MON_8_MAY_2023, "last week", "last week (the week of 1 May 2023)"),
    (MON_8_MAY_2023, "this week", "this week (the week of 8 May 2023)"),
    (MON_8_MAY_2023, "next week", "next week (the week of 15 May 2023)"),
    (MON_8_MAY_2023, "earlier this week", "earlier this week (the week of 8 May 2023)"),
    (MON_8_MAY_2023, "last weekend", "last weekend (the weekend of 6 May 2023)"),
    (MON_8_MAY_2023, "this weekend", "this weekend (the weekend of 13 May 2023)"),
    (at(2023, 5, 7), "last weekend", "last weekend (the weekend of 29 April 2023)"),
    (MON_8_MAY_2023, "I relaxed over the weekend.", "I relaxed over the weekend (the weekend of 6 May 2023)."),
    (MON_8_MAY_2023, "We'll camp for the weekend.", "We'll camp for the weekend (the weekend of 13 May 2023)."),
    (MON_8_MAY_2023, "last month", "last month (April 2023)"),
    (MON_8_MAY_2023, "next month", "next month (June 2023)"),
    (MON_8_MAY_2023, "earlier this month", "earlier this month (May 2023)"),
    (MON_8_MAY_2023, "last year's trip", "last year's (2022) trip"),
    (MON_8_MAY_2023, "next year", "next year (2024)"),
    (MON_8_MAY_2023, "earlier this year", "earlier this year (2023)"),
    # counted
    (MON_8_MAY_2023, "3 days ago", "3 days ago (5 May 2023)"),
    (MON_8_MAY_2023, "two weeks ago", "two weeks ago (the week of 24 April 2023)"),
    (MON_8_MAY_2023, "a week ago", "a week ago (the week of 1 May 2023)"),
    (MON_8_MAY_2023, "a couple of months ago", "a couple of months ago (March 2023)"),
    (MON_8_MAY_2023, "twelve years ago", "twelve years ago (2011)"),
    (MON_8_MAY_2023, "five years back", "five years back (2018)"),
    (MON_8_MAY_2023, "two weekends ago", "two weekends ago (the weekend of 29 April 2023)"),
    (MON_8_MAY_2023, "I'll be back in 3 days", "I'll be back in 3 days (11 May 2023)"),
    (MON_8_MAY_2023, "We will meet in two weeks.", "We will meet in two weeks (the week of 22 May 2023)."),
    (MON_8_MAY_2023, "I'm going on a picnic on Sunday", "I'm going on a picnic on Sunday (14 May 2023)"),
    (MON_8_MAY_2023, "ten days from now", "ten days from now (18 May 2023)"),
    (MON_8_MAY_2023, "a few days ago", "a few days ago (a few days before 8 May 2023)"),
    (MON_8_MAY_2023, "the other day", "the other day (a few days before 8 May 2023)"),
    (MON_8_MAY_2023, "several years ago", "several years ago (a few years before 2023)"),
    # seasons (northern, meteorological)
    (MON_8_MAY_2023, "last summer", "last summer (summer 2022)"),
    (at(2023, 10, 2), "last summer", "last summer (summer 2023)"),
    (MON_8_MAY_2023, "this summer", "this summer (summer 2023)"),
    (MON_8_MAY_2023, "last winter", "last winter (winter 2022-2023)"),
    (MON_8_MAY_2023, "next fall", "next fall (autumn 2023)"),
    # month, year and leap-year boundaries
    (at(2024, 3, 1), "yesterday", "yesterday (29 February 2024)"),
    (at(2024, 3, 1), "the day before yesterday", "the day before yesterday (28 February 2024)"),
    (at(2023, 3, 1), "yesterday", "yesterday (28 February 2023)"),
    (at(2023, 1, 1), "yesterday", "yesterday (31 December 2022)"),
    (at(2023, 1, 1), "last month", "last month (December 2022)"),
    (at(2023, 1, 1), "last week", "last week (the week of 19 December 2022)"),
    (at(2023, 12, 31), "tomorrow", "tomorrow (1 January 2024)"),
    (at(2023, 12, 31), "next month", "next month (January 2024)"),
    (at(2023, 3, 31), "a month ago", "a month ago (February 2023)"),
    # several in one text, and the longest phrase wins
    (MON_8_MAY_2023, "Yesterday and last week; tomorrow too.",
     "Yesterday (7 May 2023) and last week (the week of 1 May 2023); tomorrow (9 May 2023) too."),
]

UNTOUCHED = [
    "second place in the race",
    "May I ask you something? I may go.",
    "a second ago",
    "we swim every Friday and on Sundays",
    "next time, the last one, this is the day",
    "a daytime person, a weekly meeting, yesterdays",
    "in the year 2020 many years ago",
    "for a few days I rested",
    "We haven't talked in a few days. Rome wasn't built in a day.",
    "it was recently, lately, a while ago",
    "",
    "  spaces\tand\nnewlines stay  ",
]


@pytest.mark.parametrize(("anchor", "text", "expected"), CASES)
def test_resolve_relative_dates(anchor, text, expected):
    assert resolve_relative_dates(text, anchor) == expected


@pytest.mark.parametrize(("anchor", "text", "expected"), CASES)
def test_resolving_twice_changes_nothing(anchor, text, expected):
    assert resolve_relative_dates(expected, anchor) == expected
    assert resolve_relative_dates(expected, anchor + timedelta(days=40)) == expected


@pytest.mark.parametrize("text", UNTOUCHED)
def test_text_without_relative_dates_is_byte_identical(text):
    assert resolve_relative_dates(text, MON_8_MAY_2023) == text


def test_days_are_those_of_the_anchors_timezone():
    late_evening = datetime(2023, 5, 8, 23, 30, tzinfo=timezone(timedelta(hours=2)))  # 21:30 UTC
    [found] = find_relative_dates("yesterday", late_evening)
    assert found.words == "7 May 2023"
    assert found.since == datetime(2023, 5, 6, 22, 0, tzinfo=UTC)
    assert found.until - found.since == timedelta(days=1)
    naive = datetime(2023, 5, 8, 1, 0)
    assert resolve_relative_dates("today", naive) == "today (8 May 2023)"


def test_dates_outside_the_calendar_leave_the_phrase_alone():
    last_day = datetime(9999, 12, 31, 12, 0, tzinfo=UTC)
    assert resolve_relative_dates("next year, tomorrow, yesterday", last_day) == (
        "next year, tomorrow, yesterday (30 December 9999)")
    first_day = datetime(1, 1, 1, 12, 0, tzinfo=UTC)
    assert resolve_relative_dates("last year and today", first_day) == "last year and today (1 January 1)"


def test_find_relative_dates_gives_spans_and_ranges():
    found = find_relative_dates("Last week we met, next month we go.", MON_8_MAY_2023)
    assert [(f.phrase, f.start, f.end) for f in found] == [("Last week", 0, 9), ("next month", 18, 28)]
    assert (found[0].since, found[0].until) == (datetime(2023, 5, 1, tzinfo=UTC), datetime(2023, 5, 8, tzinfo=UTC))
    assert (found[1].since, found[1].until) == (datetime(2023, 6, 1, tzinfo=UTC), datetime(2023, 7, 1, tzinfo=UTC))
    [vague] = find_relative_dates("a few days ago", MON_8_MAY_2023)
    assert vague.since < datetime(2023, 5, 5, tzinfo=UTC) < vague.until <= datetime(2023, 5, 8, tzinfo=UTC)


def test_date_in_words_is_day_month_year_without_leading_zero():
    assert date_in_words(datetime(2023, 5, 8, 23, 59)) == "8 May 2023"
    assert date_in_words(datetime(2024, 12, 25, tzinfo=UTC)) == "25 December 2024"


# parse_timestamp -------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    (0, datetime(1970, 1, 1, tzinfo=UTC)),
    (1683554160, datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
    (1683554160.5, datetime(2023, 5, 8, 13, 56, 0, 500000, tzinfo=UTC)),
    (1683554160000, datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),  # milliseconds
    (-86400, datetime(1969, 12, 31, tzinfo=UTC)),
    ("1683554160", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
    ("2023-05-08T13:56:00Z", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
    ("2023-05-08T15:56:00+02:00", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
    ("2023-05-08 13:56", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),  # naive is UTC
    ("2023-05-08", datetime(2023, 5, 8, tzinfo=UTC)),
    ("1:56 pm on 8 May, 2023", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
    (datetime(2023, 5, 8, 13, 56), datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
    (datetime(2023, 5, 8, 15, 56, tzinfo=timezone(timedelta(hours=2))), datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
])
def test_parse_timestamp(value, expected):
    parsed = parse_timestamp(value)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_parse_timestamp_none_is_now():
    fixed = datetime(2023, 5, 8, 15, 56, tzinfo=timezone(timedelta(hours=2)))
    assert parse_timestamp(None, now=fixed) == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    before = datetime.now(UTC)
    assert before <= parse_timestamp(None) <= datetime.now(UTC)


@pytest.mark.parametrize("value", [True, False, [], b"2023-05-08", "", "  ", "yesterday", "2023-13-01", "nan",
                                   math.nan, math.inf, -math.inf, 1e20, -1e20])
def test_parse_timestamp_rejects_bad_input_naming_it(value):
    with pytest.raises(InvalidInputError) as raised:
        parse_timestamp(value)
    assert repr(value) in str(raised.value)


# LoCoMo session times --------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("1:56 pm on 8 May, 2023", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
    ("12:00 am on 1 January, 2023", datetime(2023, 1, 1, 0, 0, tzinfo=UTC)),
    ("12:30 pm on 29 February, 2024", datetime(2024, 2, 29, 12, 30, tzinfo=UTC)),
    ("9:05 AM on 3 june 2022", datetime(2022, 6, 3, 9, 5, tzinfo=UTC)),
])
def test_parse_locomo_datetime(text, expected):
    assert parse_locomo_datetime(text) == expected


@pytest.mark.parametrize("text", ["13:00 pm on 8 May, 2023", "1:56 pm on 29 February, 2023",
                                  "1:56 pm on 8 Mai, 2023", "8 May 2023", ""])
def test_parse_locomo_datetime_rejects_other_text(text):
    with pytest.raises(InvalidInputError, match=re.escape(repr(text))):
        parse_locomo_datetime(text)


def test_every_locomo_dev_session_time_parses():
    if not LOCOMO.exists():
        pytest.skip(f"{LOCOMO} is absent (benchmark data lives beside the project root)")
    times = [value for sample in json.loads(LOCOMO.read_text()) for key, value in sample["conversation"].items()
             if key.endswith("_date_time")]
    assert len(times) > 100
    for text in times:
        assert 2020 <= parse_locomo_datetime(text).year <= 2025, text
