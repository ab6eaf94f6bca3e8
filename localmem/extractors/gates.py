"""Quality gates a proposed fact must pass before it is stored; each rejection is counted.

Measured on LoCoMo turns, the 270M model's raw lines include fragments ("Does
it", "A snake", "Passed away a few years ago" with no one's name), copies of
the whole message ("Deborah: Yes, I did"), lines copied from the prompt's
examples, and a few that drop or add a "not". Gates, in order:

* ``ungrounded``: under half of its content words occur in the source message;
* ``copy``: it is the message itself (a speaker prefix, or all the words of a
  message with several sentences or a question);
* ``contradicts``: its negation differs from the source sentence it came from,
  or it has a number the source does not;
* ``fragment``: a question, no content word, a dangling pronoun as subject or
  object ("It was so powerful", "Caroline loves it");
* ``asked``: its words come from a question ("Do you go bird-watching?" gave
  "Andrew goes bird-watching"), not from anything the message states;
* ``owner``: it keeps what the message said of someone's relation but drops the
  relation ("My sister's wedding is on 14 March" gave "Has a wedding on 14 March"):
  a fact about the wrong person is worse than none (the message stays the memory).

A fact made only of a date or number besides function words ("On March 3") is a
``fragment``.

Deterministic word rules, English only; nothing here calls a model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from localmem.extractors.rules import content_words, is_negated, is_value

GATES = ("ungrounded", "copy", "contradicts", "fragment", "asked", "owner")

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# Words that carry no content of their own: a fact made only of these says nothing.
_FUNCTION_WORDS = """
i me my mine myself we us our ours you your yours he him his she her hers it its they them their theirs this that
these those there here who what which when where why how a an the and or but so if then than to of in on at by for
with from about as into onto up down out over off is am are was were be been being have has had do does did done
will would can could shall should may might must not no yes yeah yep nope oh wow hey hi hello thanks thank great
cool awesome nice sure ok okay lol haha really very just also too still even well good glad happy sounds sound
totally definitely absolutely something anything everything thing things stuff one ones some any all
"""
_FUNCTION = frozenset(_FUNCTION_WORDS.split())
_DANGLING = frozenset({"it", "that", "this", "they", "them", "those", "these", "there", "he", "she", "him", "her",
                       "which", "what", "who", "how", "why", "where"})
_AUX = frozenset({"does", "do", "did", "is", "are", "was", "were", "can", "could", "will", "would", "have", "has"})
_SPEAKER_PREFIX = re.compile(r"^[A-Z][\w'.-]*(?: [A-Z][\w'.-]*)?:\s")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_INTERJECTION = re.compile(r"^\s*(?:no|nope|nah|oh no)\b[,.!]*\s*", re.IGNORECASE)


@dataclass
class GateCounts:
    """How many proposed facts each gate rejected, and how many were kept."""

    proposed: int = 0
    kept: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(GATES, 0))

    def share(self, gate: str) -> float:
        return self.rejected[gate] / self.proposed if self.proposed else 0.0


def rejects(proposed: str, fact: str, source: str, names: frozenset[str] = frozenset()) -> str | None:
    """The first gate that rejects the model's line ``proposed`` (as ``fact`` after rewriting), or None.

    ``source`` is the message the fact was read from, without its speaker prefix; ``names`` are the
    people's names, which count as neither content nor evidence.
    """
    if not grounded(proposed, source):
        return "ungrounded"
    if is_copy(proposed, fact, source):
        return "copy"
    if contradicts(proposed, source):
        return "contradicts"
    if is_fragment(fact, names):
        return "fragment"
    if asked(proposed, source):
        return "asked"
    if drops_owner(fact, source):
        return "owner"
    return None


# People a message may say something of: "my sister's wedding", "our son's school".
_RELATION_WORDS = """
sister brother mother mom mum father dad parents son daughter wife husband partner boyfriend girlfriend fiance fiancee
friend boss colleague coworker cousin aunt uncle grandma grandmother grandpa grandfather niece nephew kid kids child
children baby neighbor neighbour roommate
"""
_RELATIONS = frozenset(_RELATION_WORDS.split())
_POSSESSIVES = frozenset({"my", "our", "his", "her", "their", "your"})


def drops_owner(fact: str, source: str) -> bool:
    """True when the source says "my <relation>('s) <thing>" and the fact keeps the thing but not the relation."""
    said = _WORD.findall(source.lower().replace("’", "'"))
    kept = set(_WORD.findall(fact.lower().replace("’", "'")))
    kept |= {w[:-2] for w in kept if w.endswith("'s")}
    for i, word in enumerate(said):
        relation = word[:-2] if word.endswith("'s") else word
        if relation not in _RELATIONS or not (word.endswith("'s") or (i and said[i - 1] in _POSSESSIVES)):
            continue
        things = [w for w in said[i + 1:i + 3] if w not in _FUNCTION and not w.isdigit()]
        if things and relation not in kept and any(w in kept for w in things):
            return True
    return False


# Pronouns and auxiliaries: that "I have been" shares them with "How have you been?" proves nothing.
_NOT_EVIDENCE = frozenset({"i", "my", "me", "we", "our", "us", "im", "ive", "mine", "myself", "you", "your",
                           "have", "has", "had", "been", "be", "will", "would", "can", "could", "so", "very"})


def grounded(fact: str, source: str, share: float = 0.5) -> bool:
    """True when at least ``share`` of the fact's content words occur in the source text."""
    words = content_words(fact) - _NOT_EVIDENCE
    return bool(words) and len(words & content_words(source)) / len(words) >= share


def contradicts(fact: str, source: str) -> bool:
    """True when the fact's negation differs from its closest source sentence, or it invents a number."""
    if not set(re.findall(r"\d+", fact)) <= set(re.findall(r"\d+", source)):
        return True
    words = content_words(fact)
    sentences = [_INTERJECTION.sub("", s) for s in _SENTENCE.split(source.strip()) if s.strip()]
    if not sentences or not words:
        return False
    closest = max(sentences, key=lambda s: len(words & content_words(s)))
    return is_negated(fact) != is_negated(closest)


_CLAUSE = re.compile(r"[,;:]\s+|\s+[-–—]\s+")


def clauses(text: str) -> list[tuple[str, bool]]:
    """The clauses of a message, each with whether it asks: the last clause of a sentence that ends
    in "?" ("We have 2 cats, do you like them?" states the cats, asks the liking)."""
    out: list[tuple[str, bool]] = []
    for sentence in _SENTENCE.split(text.strip()):
        parts = [p for p in _CLAUSE.split(sentence.strip()) if p.strip()]
        question = sentence.rstrip().endswith("?")
        out += [(part, question and i == len(parts) - 1) for i, part in enumerate(parts)]
    return out


def asked(fact: str, source: str) -> bool:
    """True when the clauses of the source that share the most content words with the fact are all
    questions (``clauses``)."""
    words = content_words(fact)
    shared = [(len(words & content_words(part)), question) for part, question in clauses(source)]
    best = max((n for n, _ in shared), default=0)
    return best > 0 and all(question for n, question in shared if n == best)


def is_copy(proposed: str, fact: str, source: str) -> bool:
    """The message restated, not a fact read from it."""
    if _SPEAKER_PREFIX.match(fact) or _SPEAKER_PREFIX.match(proposed):
        return True
    said = _WORD.findall(source.lower())
    several = len([s for s in _SENTENCE.split(source.strip()) if s.strip()]) > 1 or "?" in source
    return several and _WORD.findall(proposed.lower()) == said


def is_fragment(fact: str, names: frozenset[str] = frozenset()) -> bool:
    words = _WORD.findall(fact.lower().replace("’", "'"))
    if len(words) < 2 or fact.rstrip().endswith("?"):
        return True
    if words[0] in _DANGLING or (words[0] in _AUX and words[1] in _DANGLING | {"you", "i", "we"}):
        return True  # "It was so powerful", "Does it"
    if words[-1] in {"it", "that", "this", "them", "one"}:
        return True  # "Caroline loves it": what?
    lowered = {n.lower() for n in names} | {f"{n.lower()}'s" for n in names}
    # A date or a number alone says nothing ("On March 3": what is?).
    return not [w for w in words if w not in _FUNCTION and w not in lowered and not is_value(w)]
