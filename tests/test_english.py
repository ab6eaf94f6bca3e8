"""english.py: the one home of the word rules' English (tables, tokenisers, third person)."""

from __future__ import annotations

import ast
from pathlib import Path

from localmem import english


def test_third_person_agrees_a_verb_and_keeps_past_tenses_and_modals() -> None:
    assert [english.third_person(v) for v in ["love", "go", "try", "play", "watch", "am", "don't", "went",
                                              "painted", "will", "could"]] == [
        "loves", "goes", "tries", "plays", "watches", "is", "doesn't", "went", "painted", "will", "could"]


def test_the_subjectless_tables_are_narrower_on_purpose() -> None:
    # Kept as they were before the tables were shared (english.SUBJECTLESS_*): changing them changes
    # prompting.to_memory_style's facts, which is a measured change, not a move.
    assert english.third_person("am", english.SUBJECTLESS_IRREGULAR, english.SUBJECTLESS_KEEP) == "ams"
    assert english.third_person("have", english.SUBJECTLESS_IRREGULAR, english.SUBJECTLESS_KEEP) == "has"
    assert english.third_person("shall", english.SUBJECTLESS_IRREGULAR, english.SUBJECTLESS_KEEP) == "shalls"
    assert english.ADVERBS < english.MORE_ADVERBS


def test_the_tokenisers_differ_where_their_rules_need_it() -> None:
    text = "I don't have 2 cats, Ana's"
    assert english.LETTER_WORD.findall(text.lower()) == ["i", "don't", "have", "cats", "ana's"]
    assert english.WORD.findall(text.lower()) == ["i", "don't", "have", "2", "cats", "ana's"]
    assert english.PLAIN_WORD.findall(text.lower()) == ["i", "don", "t", "have", "2", "cats", "ana", "s"]
    assert english.analyzer_tokens(text) == ["i", "don", "t", "have", "2", "cats", "ana", "s"]


def test_english_imports_nothing_from_localmem() -> None:
    # It sits below every module that reads English, so it must not import any of them back.
    tree = ast.parse(Path(english.__file__).read_text(encoding="utf-8"))
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.startswith("localmem")]
