"""Whose a fact is: speakers found in messages, first and second person rewritten to names."""

from __future__ import annotations

import pytest

from localmem.extractors.gates import GateCounts
from localmem.extractors.postprocess import finish
from localmem.extractors.whose import Turn, about_listener, name_persons, split_speaker, turns, with_subject
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
    # Questions put the verb before the subject; "you" after a verb is its object.
    ("Have you ever been to Paris?", "Has Jolene ever been to Paris?"),
    ("What do you think?", "What does Jolene think?"),
    ("Did I tell you about my dog?", "Did Deborah tell Jolene about Deborah's dog?"),
    ("I hope you like it", "Deborah hopes Jolene likes it"),
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


@pytest.mark.parametrize(("line", "said", "listener"), [
    ("Is a great counselor", "I think you'd be a great counselor!", True),
    ("Would be a great counselor", "Wow, you'd be a great counselor", True),
    ("Melanie is a great counselor", "You would be a great counselor, I bet", True),
    ("Is proud of the kids", "You must be proud of your kids, I am proud of mine", True),
    ("Loves painting", "You know, I love painting", False),
    ("Went to a support group", "I went to a support group yesterday, you should come", False),
    ("Loves hiking", "I love hiking", False),
    ("Caroline would be a great counselor", "I think you'd be a great counselor", True),
    ("I'm a great counselor", "You'd be a great counselor! Your empathy will help people", True),
    ("I love painting", "You know, I love painting", False),
    # A line that keeps its persons is read exactly by name_persons instead.
    ("You'd be a great counselor", "You'd be a great counselor", False),
])
def test_a_line_from_what_was_said_about_the_listener_is_found(line: str, said: str, listener: bool) -> None:
    assert about_listener(line, said) is listener


@pytest.mark.parametrize(("proposed", "expected"), [
    ("Is a great counselor", "Caroline is a great counselor"),
    ("Melanie is a great counselor", "Caroline is a great counselor"),
    ("I'm a great counselor", "Caroline is a great counselor"),
    ("Melanie helps people with their problems", "Caroline helps people with their problems"),
    ("You'd be a great counselor", "Caroline would be a great counselor"),
    ("Melanie's kids love pottery", "Melanie's kids love pottery"),  # her own words: hers
])
def test_what_the_speaker_says_about_the_listener_is_the_listeners(proposed: str, expected: str) -> None:
    turn = Turn(0, "Melanie", "Caroline", "I think you'd be a great counselor! Your empathy will really help "
                "the people you work with. My kids love pottery")
    fact = finish(proposed, turn, None, GateCounts())
    assert fact is not None and fact.text == expected and fact.speaker == "Melanie"
