"""The text side of the LLM steps: prompts and grammars (data files), rendering, parsing.

Nothing here loads a model, so all of it is unit-testable without one. The
prompt and grammar texts live in ``prompts/`` as data files so they can be
read, diffed and tuned without touching code. Parsing is strict: output that
does not have the expected shape raises ExtractionError rather than being
guessed at (the grammar makes that rare; a truncated answer still can).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from localmem import english
from localmem.errors import ExtractionError
from localmem.protocols import Candidate
from localmem.records import Decision, Event, Fact, Message

_PACKAGE = "localmem.extractors"
NO_FACTS = "none"


@dataclass(frozen=True)
class Grammar:
    """A GBNF grammar and the text that completes every answer it allows.

    ``end`` is where the grammar allows nothing more but the model's end token: a
    decoder stops there instead of evaluating one more step to be told so (on the
    CPU that last step cost ~55 ms a prompt, its grammar filter most of it).
    """

    text: str
    end: str


def extraction_grammar() -> Grammar:
    # A fact line holds no newline, so the first blank line is the end (extract.gbnf).
    return Grammar(load_text("extract.gbnf"), "\n\n")


@cache
def load_text(name: str) -> str:
    """A prompt or grammar file shipped in localmem/extractors/prompts/."""
    return resources.files(_PACKAGE).joinpath("prompts", name).read_text(encoding="utf-8")


# -- extraction ----------------------------------------------------------------
def render_message(message: Message) -> str:
    """One conversation line; newlines inside a message would break the few-shot format."""
    return f"{message.role}: {' '.join(message.content.split())}\n"


def extraction_prompt(lines: Sequence[str], instructions: str | None = None) -> str:
    head = _instructions(instructions, "extract.txt")
    return head + load_text("extract_input.txt").format(conversation="".join(lines).rstrip("\n"))


def parse_lines(output: str) -> list[str]:
    """The fact lines of the grammar-shaped answer ``- fact\\n...`` ("- none": no lines);
    ExtractionError if the answer does not have that shape."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    if not lines:
        raise ExtractionError("the model gave an empty answer where a list of facts was expected")
    bodies: list[str] = []
    for line in lines:
        if not line.startswith("- "):
            raise ExtractionError(f"the model's answer is not a list of facts: {output[:200]!r}")
        body = line[2:].strip()
        if body.lower().rstrip(".") != NO_FACTS:
            bodies.append(body)
    return bodies


# The model copies the user's words ("I am working on ..."), which it does far more
# reliably than rewriting them; the rewrite to Mem0's subjectless style
# ("Working on ...") is done here, deterministically (its tables are english.py's).
def to_memory_style(text: str) -> str:
    """``I love my dog`` -> ``Loves dog``: a subjectless third-person memory, like Mem0's."""
    text = text.strip().rstrip(".!").strip()
    for pattern, replacement in english.SUBJECTLESS_LEADS:
        new = pattern.sub(replacement, text, count=1)
        if new != text:
            # "I am vegetarian" / "I am 30 years old": without the verb the fact would be one
            # word (and dropped as too short) or lose the "is" the attribute rules key on.
            if replacement == "" and pattern.pattern.startswith("^i") and (
                    len(new.split()) == 1 or new[:1].isdigit()):
                new = "is " + new
            text = new
            break
    else:
        words = text.split(" ")
        if len(words) >= 2 and words[0].lower() == "i":
            rest = words[1:]
            adverb = [rest.pop(0)] if rest[0].lower() in english.ADVERBS and len(rest) > 1 else []
            rest[0] = english.third_person(rest[0], english.SUBJECTLESS_IRREGULAR, english.SUBJECTLESS_KEEP)
            text = " ".join(adverb + rest)
    text = re.sub(r"\bmy\s+", "", text, flags=re.IGNORECASE)
    return text[:1].upper() + text[1:]


# -- reconciliation --------------------------------------------------------------
def reconcile_prompt(fact: Fact, candidates: Sequence[Candidate], instructions: str | None = None) -> str:
    head = _instructions(instructions, "reconcile.txt")
    memories = "\n".join(f"{c.key}. {' '.join(c.text.split())}" for c in candidates)
    body = load_text("reconcile_input.txt").format(memories=memories, fact=" ".join(fact.text.split()))
    return head + body.rstrip("\n")  # the answer follows "Answer:" on the same line


def reconcile_grammar(candidates: Sequence[Candidate]) -> Grammar:
    """The decision grammar, its ``key`` rule listing exactly the keys shown; one line."""
    keys = " | ".join(f'"{c.key}"' for c in candidates)
    return Grammar(load_text("reconcile.gbnf") + f"key ::= {keys}\n", "\n")


_DECISION = re.compile(r"^(ADD|NONE|DELETE|UPDATE)(?: (\d+))?(?:: (.+))?$")


def parse_decision(output: str, candidates: Sequence[Candidate]) -> Decision:
    """``ADD`` / ``NONE k`` / ``DELETE k`` / ``UPDATE k: text`` -> Decision; ExtractionError otherwise."""
    match = _DECISION.match(output.strip())
    if match is None:
        raise ExtractionError(f"the model's reconciliation answer is not a decision: {output[:200]!r}")
    event, key, text = Event(match.group(1)), match.group(2), (match.group(3) or "").strip()
    if event is Event.ADD:
        return Decision(Event.ADD, "")
    if key is None or int(key) not in {c.key for c in candidates}:
        raise ExtractionError(f"the model's decision {output.strip()!r} names no memory it was shown")
    if event is Event.UPDATE and not text:
        raise ExtractionError(f"the model's UPDATE decision has no text: {output.strip()!r}")
    return Decision(event, text, target_id=key)


def _instructions(custom: str | None, default_file: str) -> str:
    # A custom prompt replaces the instructions and examples; the input block and the
    # grammar stay ours, so the answer can still be parsed.
    if custom is None or not custom.strip():
        return load_text(default_file)
    return custom.strip() + "\n\n"
