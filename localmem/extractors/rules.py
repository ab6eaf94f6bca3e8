"""Deterministic reconciliation rules for the cases a 270M model gets wrong.

Two kinds of contradiction are caught here, before any model is asked:

* negation: "Does not like pizza anymore" against "Likes pizza" (same content
  words, one of them negated);
* single-valued attributes ("slots"): "Moved to Berlin" against "Lives in
  Paris". Embeddings put these far apart (cosine about 0.4), so ``slot_of`` is
  also what the pipeline uses to show such memories to the reconciler at all.

The rules are English-only heuristics over short memory texts. They must stay
conservative: a rule that fires wrongly rewrites a user's memory, so anything
unclear is left to the model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from localmem.protocols import Candidate
from localmem.records import Decision, Event, Fact

_WORD = re.compile(r"[a-z0-9]+")
_NEGATIONS = {"not", "no", "never", "anymore", "longer", "nt", "dont", "doesnt", "didnt", "isnt", "cant",
              "stopped", "quit"}
# Words that carry no content for the negation comparison ("Does not like" vs "Likes").
_FILLER = _NEGATIONS | {"does", "do", "did", "is", "am", "are", "was", "were", "a", "an", "the", "any", "more",
                        "really", "still", "t", "s", "at", "all"}

# Words that only give a value (a number, a date, a time): what an update may change in a memory.
_VALUES = {"january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
           "dec", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "today",
           "tomorrow", "yesterday", "tonight", "one", "two", "three", "four", "five", "six", "seven", "eight",
           "nine", "ten", "eleven", "twelve", "pm"}
_ENDINGS = {"sold", "left", "ended", "cancelled", "canceled", "gave", "broke", "lost", "stopped", "quit", "retired",
            "divorced", "moved", "finished", "graduated", "former", "formerly", "used"}


@dataclass(frozen=True)
class Slot:
    name: str
    value: str


# Attributes a person has one value of at a time; the value ends before time words.
_VALUE = r"(?P<value>[a-z][a-z .'-]*?)(?=$|[,;.]| (?:last|next|this|since|in \d|for|with|and|because|now|recently)\b)"
_SLOTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((name, re.compile(pattern)) for name, pattern in (
    ("residence", r"^(?:lives|living|moved|moving|relocated|relocating|resides|residing|is based|now lives)"
                  r"(?: back)? (?:in|to) (?:a new \w+ in )?" + _VALUE),
    ("employer", r"^(?:works|working|is working|is employed|started working|got a job|has a new job|"
                 r"started a new job|joined) (?:as [a-z ]+? )?(?:at|for|by) " + _VALUE),
    ("name", r"^(?:name is|is called|is named) " + _VALUE),
    ("age", r"^is (?P<value>\d+) years old"),
))


def slot_of(text: str) -> Slot | None:
    """The single-valued attribute a memory text sets, if one of the known ones."""
    low = " ".join(text.lower().split())
    for name, pattern in _SLOTS:
        match = pattern.search(low)
        if match:
            value = match.group("value").strip(" .'-")
            value = re.sub(r"^(?:the|a|an) ", "", value)
            if value:
                return Slot(name, value)
    return None


def is_negated(text: str) -> bool:
    return any(w in _NEGATIONS for w in _words(text))


def could_be_same_fact(a: str, b: str) -> bool:
    """False when two similar texts differ in a number or in negation.

    The embedder scores "exam on November 20" vs "... November 21" at 0.99: above any
    near-duplicate threshold, yet the second is an update, not a repeat.
    """
    return re.findall(r"\d+", a) == re.findall(r"\d+", b) and is_negated(a) == is_negated(b)


def content_words(text: str) -> frozenset[str]:
    return frozenset(_stem(w) for w in _words(text) if w not in _FILLER)


def decide(fact: Fact, candidates: Sequence[Candidate]) -> Decision | None:
    """A decision the rules are sure of, or None to leave it to the model.

    A contradicted memory is replaced by the fact that contradicts it (UPDATE),
    not just deleted: "Does not like pizza anymore" is itself worth keeping.
    """
    new_slot = slot_of(fact.text)
    new_words, new_negated = content_words(fact.text), is_negated(fact.text)
    for candidate in candidates:
        old_slot = slot_of(candidate.text)
        if new_slot is not None and old_slot is not None and new_slot.name == old_slot.name:
            if new_slot.value == old_slot.value:
                return Decision(Event.NONE, candidate.text, target_id=str(candidate.key))
            return Decision(Event.UPDATE, fact.text, target_id=str(candidate.key))
        if new_words and new_words == content_words(candidate.text) and new_negated != is_negated(candidate.text):
            return Decision(Event.UPDATE, fact.text, target_id=str(candidate.key))
    return None


def adds_nothing(fact: Fact, memory: str) -> bool:
    """True when every content word of the fact is already in the memory."""
    return content_words(fact.text) <= content_words(memory)


def invents_nothing(text: str, *sources: str) -> bool:
    """True when every content word of ``text`` comes from one of the sources."""
    known: set[str] = set()
    for source in sources:
        known |= content_words(source)
    return content_words(text) <= known


def refines(text: str, memory: str) -> bool:
    """True when ``text`` may replace the memory: it keeps every content word of it but values.

    "Is learning Spanish" -> "Is learning Spanish on weekends" (more said), "Has an exam on
    November 20" -> "... November 21" (a value changed). Any other word dropped makes it another
    fact, added beside the memory: "Nate loves coconut milk" -> "Nate knows one recipe using
    coconut milk" lost "loves"; "John is excited for the season" -> "... for the view" lost
    "season" (both passed the rule before this, which asked for 60% of the words).
    """
    old, new = content_words(memory), content_words(text)
    return any(not is_value(w) for w in old & new) and all(is_value(w) for w in old - new)


def is_value(word: str) -> bool:
    """A word that only gives a value: a number, a date, a time."""
    return word in _VALUES or any(c.isdigit() for c in word)


def shares_content(a: str, b: str) -> bool:
    return bool(content_words(a) & content_words(b))


def ends_something(text: str) -> bool:
    """True for facts that say something stopped: negations and verbs like sold, quit, left."""
    return is_negated(text) or any(w in _ENDINGS for w in _words(text))


def _words(text: str) -> list[str]:
    # "doesn't" -> "doesnt": apostrophes are dropped so contractions stay one word.
    return _WORD.findall(text.lower().replace("'", "").replace("’", ""))


def _stem(word: str) -> str:
    # Enough to match "likes" with "like" and "lives" with "live"; not a real stemmer.
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word
