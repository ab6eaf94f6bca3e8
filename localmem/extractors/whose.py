"""Whose a fact is: find a message's speaker and rewrite first and second person to names.

The 270M model copies a speaker's words ("I have a dog named Max") far more
reliably than it rewrites them, so the rewrite to "Deborah has a dog named
Max" is done here, deterministically. A speaker is known from the message's
``name`` field or a leading "Name: " in its content; "you" becomes the other
speaker when a conversation has exactly two (or the previous message's speaker).

English-only word rules over short fact texts; nothing here calls a model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from localmem import english
from localmem.extractors.gates import clauses
from localmem.records import Message

# "Name: text" with one or two capitalised words before the colon. Words that open
# notes rather than name people ("Update: I moved") are not speakers (english.NOT_NAMES).
_PREFIX = re.compile(r"^\s*([A-Z][\w'.-]{0,30}(?: [A-Z][\w'.-]{0,30})?):\s+(\S.*)$", re.DOTALL)


@dataclass(frozen=True)
class Turn:
    """A message as the extractor reads it: who said it, to whom, and the words without the name prefix."""

    index: int
    speaker: str | None
    addressee: str | None
    text: str


def split_speaker(message: Message) -> tuple[str | None, str]:
    """(speaker, content without a "Name: " prefix); the ``name`` field wins over a prefix."""
    match = _PREFIX.match(message.content)
    prefixed = match is not None and match.group(1).lower() not in english.NOT_NAMES
    text = match.group(2).strip() if match is not None and prefixed else message.content.strip()
    name = (message.name or "").strip() or (match.group(1) if match is not None and prefixed else None)
    return name, text


def turns(messages: Sequence[Message]) -> list[Turn]:
    """Each message with its speaker and addressee (the other of exactly two speakers, else the previous one)."""
    split = [split_speaker(m) for m in messages]
    names = list(dict.fromkeys(name for name, _ in split if name))
    out: list[Turn] = []
    previous: str | None = None
    for index, (name, text) in enumerate(split):
        addressee: str | None = None
        if name is not None and len(names) == 2:
            addressee = names[1] if name == names[0] else names[0]
        elif name is not None and previous is not None and previous != name:
            addressee = previous
        out.append(Turn(index, name, addressee, text))
        previous = name or previous
    return out


# -- first and second person -> names (the word tables are english.py's) ----------------
def name_persons(text: str, speaker: str, addressee: str | None = None) -> str:
    """First person -> ``speaker``, second person -> ``addressee`` (kept when unknown), verbs agreeing.

    ``I love my dog`` -> ``Deborah loves Deborah's dog`` reads oddly, but a pronoun would need
    the speaker's gender, which is not known, and the name keeps whose the dog is for search.
    """
    words = english.REWRITE_TOKEN.findall(text.replace("’", "'").strip())
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        low = word.lower()
        contraction = english.PERSON_CONTRACTION.match(low)
        person = None
        if contraction is not None:
            person, suffix = contraction.group(1), contraction.group(2)
        elif low in english.FIRST_PERSON or low in english.SECOND_PERSON:
            person, suffix = low, ""
        if person is not None:
            name = speaker if person in english.FIRST_PERSON else addressee
            if name is None:
                out.append(word)
                i += 1
                continue
            out.append(name)
            if suffix:
                out.append(" " + english.IRREGULAR_PRESENT[suffix])
            elif (aux := _auxiliary_before(out)) is not None:  # a question: "Have you been" -> "Has Caroline been"
                out[aux] = _matching_case(out[aux], english.third_person(out[aux]))
            elif person != "you" or _opens_clause(out):  # "tell you about": an object, no verb to agree
                _agree(words, i)
            i += 1
            continue
        if low in english.FIRST_POSSESSIVE:
            out.append(f"{speaker}'s")
        elif low in english.FIRST_OBJECT:
            out.append(speaker)
        elif low in english.SECOND_POSSESSIVE and addressee is not None:
            out.append(f"{addressee}'s")
        elif low in english.SECOND_OBJECT and addressee is not None:
            out.append(addressee)
        else:
            out.append(word)
        i += 1
    result = "".join(out)
    return result[:1].upper() + result[1:]


def _auxiliary_before(out: list[str]) -> int | None:
    """The position in ``out`` of an auxiliary right before the subject just appended, if any
    ("Have you ...", "Did I ...": a question)."""
    j = len(out) - 2
    while j >= 0 and out[j].isspace():
        j -= 1
    return j if j >= 0 and out[j].lower() in english.QUESTION_OPENERS else None


def _opens_clause(out: list[str]) -> bool:
    """Whether the subject just appended to ``out`` starts a clause (is a subject, not an object): it opens
    the sentence or follows a word of english.CLAUSE_OPENERS."""
    j = len(out) - 2
    while j >= 0 and out[j].isspace():
        j -= 1
    return j < 0 or not out[j][:1].isalpha() or out[j].lower() in english.CLAUSE_OPENERS


def _matching_case(old: str, new: str) -> str:
    return new[:1].upper() + new[1:] if old[:1].isupper() else new


def _agree(words: list[str], subject: int) -> None:
    """Put the verb after a first/second-person subject in the third person singular, in place."""
    j = subject + 1
    while j < len(words) and words[j].isspace():
        j += 1
    if j < len(words) and words[j].lower() in english.MORE_ADVERBS:  # "I really love" -> "loves"
        j += 1
        while j < len(words) and words[j].isspace():
            j += 1
    if j < len(words) and (words[j].isalpha() or words[j].lower() in english.IRREGULAR_PRESENT):
        words[j] = english.third_person(words[j])


_STEM = 4  # words compare by their first letters: "loves" and "love", "painted" and "painting"


def about_listener(line: str, said: str) -> bool:
    """Whether the model's line comes from what the speaker said about the listener.

    "You'd be a great counselor", said by Melanie, came back from the model as "Is a great
    counselor", "I'm a great counselor" or "Melanie is a great counselor": a line whose words
    sit in a clause that "you" opens, more of them than in any clause "I" opens; its subject,
    missing, "I" or the speaker's name, stands for the listener. A line that keeps its "you" is
    left to ``name_persons``, which reads it exactly.
    """
    own = english.LETTER_WORD.findall(line.lower().replace("’", "'"))
    if any(w in english.LISTENER_WORDS for w in own):
        return False
    stems = {w[:_STEM] for w in own if len(w) > 3 and w not in english.SPEAKER_WORDS}
    best = {True: 0, False: 0}  # listener, speaker: the most of the line's words in one of their clauses
    for clause, _ in clauses(said.lower().replace("’", "'")):
        opened: bool | None = None
        words: set[str] = set()
        # A stretch runs from a person's word to the other person's ("you ... your kids" is one);
        # the final "you", "i" pair closes the last stretch, whoever it belongs to.
        for word in [*english.LETTER_WORD.findall(clause), "you", "i"]:
            listener = word in english.LISTENER_WORDS
            if (word in english.SPEAKER_WORDS or listener) and opened is not listener:
                if opened is not None:
                    best[opened] = max(best[opened], len(stems & words))
                opened, words = listener, set()
            elif len(word) > 3:
                words.add(word[:_STEM])
    return best[True] > best[False]


def with_subject(text: str, speaker: str) -> str:
    """A subjectless fact ("Went to a support group") gets the speaker as its subject."""
    first = text.split(" ", 1)[0].lower()
    if speaker.lower() in text.lower():
        return text
    if (first in english.SUBJECTLESS_START or (first.endswith("ed") and len(first) > 4)
            or first in english.IRREGULAR_PAST):
        return f"{speaker} {text[:1].lower()}{text[1:]}"
    return text
