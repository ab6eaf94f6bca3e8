"""Whose a fact is: speakers found in messages, first and second person rewritten to names."""

from __future__ import annotations

import pytest

from localmem.extractors.whose import name_persons, split_speaker, turns, with_subject
from localmem.records import Message


@pytest.mark.parametrize(("line", "expected"), [
    ("My mother passed away a few years ago", "Deborah's mother passed away a few years ago"),
    ("I have a dog named Max", "Deborah has a dog named Max"),
    ("I'm a nurse", "Deborah is a nurse"),
    ("I really love painting", "Deborah really loves painting"),
    ("I don't drink coffee anymore", "Deborah doesn't drink coffee anymore"),
    ("I went hiking with your brother", "Deborah went hiking with Jolene's brother"),
    ("You're my best friend", "Jolene is Deborah's best friend"),
    ("We're moving to Paris", "Deborah is moving to Paris"),
    ("I was a teacher", "Deborah was a teacher"),
    ("Max is a golden retriever", "Max is a golden retriever"),  # already third person: untouched
])
def test_first_and_second_person_become_names(line: str, expected: str) -> None:
    assert name_persons(line, "Deborah", "Jolene") == expected


def test_second_person_is_kept_when_the_addressee_is_unknown() -> None:
    assert name_persons("I like your hat", "Deborah") == "Deborah likes your hat"


def test_a_subjectless_line_gets_the_speaker_as_subject() -> None:
    assert with_subject("Went to a support group", "Caroline") == "Caroline went to a support group"
    assert with_subject("Caroline went to a support group", "Caroline") == "Caroline went to a support group"
    assert with_subject("The support group was powerful", "Caroline") == "The support group was powerful"


def test_speakers_come_from_the_name_field_or_a_name_prefix() -> None:
    assert split_speaker(Message("user", "Deborah: I have a dog")) == ("Deborah", "I have a dog")
    assert split_speaker(Message("user", "I have a dog", name="Deb")) == ("Deb", "I have a dog")
    assert split_speaker(Message("user", "Update: I moved to Leeds")) == (None, "Update: I moved to Leeds")
    assert split_speaker(Message("user", "Correction: it is on May 2")) == (None, "Correction: it is on May 2")
    assert split_speaker(Message("user", "I moved: to Leeds")) == (None, "I moved: to Leeds")


def test_with_two_speakers_each_addresses_the_other() -> None:
    read = turns([Message("user", "Caroline: Hi Mel"), Message("user", "Melanie: Hey"),
                  Message("user", "Caroline: How are the kids?")])
    assert [(t.speaker, t.addressee) for t in read] == [
        ("Caroline", "Melanie"), ("Melanie", "Caroline"), ("Caroline", "Melanie")]
    assert turns([Message("user", "hello")])[0].speaker is None
