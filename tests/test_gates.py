"""The quality gates on proposed facts: each rejection names its gate."""

from __future__ import annotations

import pytest

from localmem.extractors.gates import GateCounts, asked, rejects

SOURCE = "My mother passed away a few years ago. I don't eat meat. We have 2 cats, do you like them?"


@pytest.mark.parametrize(("proposed", "fact", "gate"), [
    ("I have a cat named Miso", "Deborah has a cat named Miso", "ungrounded"),  # copied from the prompt's examples
    ("I eat meat", "Deborah eats meat", "contradicts"),  # the "not" was dropped
    ("We have 3 cats", "Deborah has 3 cats", "contradicts"),  # a number the source does not have
    ("Deborah: My mother passed away a few years ago", "Deborah: Deborah's mother passed away a few years ago",
     "copy"),
    (SOURCE, SOURCE, "copy"),  # the whole message
    ("Do you like them", "Do Jolene like them", "fragment"),  # a question
    ("It passed away", "It passed away", "fragment"),  # dangling subject
    ("We have 2 cats", "Deborah likes them", "fragment"),  # dangling object
    ("Passed away", "Passed", "fragment"),  # one word
])
def test_each_gate_rejects_its_kind(proposed: str, fact: str, gate: str) -> None:
    assert rejects(proposed, fact, SOURCE, frozenset({"Deborah", "Jolene"})) == gate


@pytest.mark.parametrize(("proposed", "fact"), [
    ("My mother passed away a few years ago", "Deborah's mother passed away a few years ago"),
    ("I don't eat meat", "Deborah doesn't eat meat"),
    ("We have 2 cats", "Deborah has 2 cats"),
    ("I don't eat meat", "Does not eat meat"),  # Mem0's subjectless style passes too
])
def test_good_facts_pass_every_gate(proposed: str, fact: str) -> None:
    assert rejects(proposed, fact, SOURCE, frozenset({"Deborah"})) is None


@pytest.mark.parametrize(("fact", "source", "expected"), [
    ("Andrew goes bird-watching", "Yeah they're beautiful. Do you go bird-watching?", True),
    ("Andrew has a favorite animal", "That's great to hear! Do you have a favorite animal?", True),
    ("Audrey has new tags for the dogs", "So I got these new tags for my dogs - so cute! Do you like them?", False),
    ("Deborah has 2 cats", "We have 2 cats, do you like them?", False),
    ("Andrew spots birds when hiking", "Haven't gone bird-watching, but I do spot birds when I hike.", False),
])
def test_a_fact_only_a_question_gave_is_asked(fact: str, source: str, expected: bool) -> None:
    assert asked(fact, source) is expected
    if expected:
        assert rejects(fact, fact, source, frozenset({"Andrew"})) == "asked"


def test_an_interjection_no_is_not_a_negation() -> None:
    assert rejects("I went to Paris", "Ana went to Paris", "No, I went to Paris last year.") is None


def test_a_fact_made_only_of_names_and_function_words_is_a_fragment() -> None:
    assert rejects("Yes I did", "Deborah did", "Yes, I did, Jolene!", frozenset({"Deborah"})) == "fragment"


def test_counts_start_at_zero_for_every_gate() -> None:
    counts = GateCounts()
    assert counts.rejected == {"ungrounded": 0, "copy": 0, "contradicts": 0, "fragment": 0, "asked": 0, "owner": 0}
    assert counts.share("copy") == 0.0


def test_a_fact_that_drops_whose_it_is_or_says_only_a_date_is_refused() -> None:
    source = "My sister's wedding is on 14 March."
    assert rejects("Has a wedding on 14 March", "Has a wedding on 14 March", source) == "owner"
    assert rejects("Sister's wedding is on 14 March", "Sister's wedding is on 14 March", source) is None
    assert rejects("On March 3", "On March 3", "My dentist appointment is on March 3.") == "fragment"
