"""What any run of the real 270M model must satisfy, on any CPU.

Greedy decoding of a small model is not the same on every machine: llama.cpp
picks other SIMD kernels (AVX2, AVX-512, NEON, CUDA), float sums differ and
near-tie tokens flip. So tests of the real model assert these contracts, never
one machine's exact facts; extraction quality is measured in benchmarks/.

The grounding rule here is deliberately independent of the product's
(``gates.grounded``): a fact's content words must mostly share a stem-ish
prefix with a word of the source, so the rewrite "I love" -> "Loves" passes and
a copied few-shot example ("Has a cat named Miso") does not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_WORD = re.compile(r"[a-z0-9]+")
# Words the rewrite adds or that prove nothing about the source.
_IGNORED = frozenset({"a", "an", "the", "is", "are", "was", "has", "have", "had", "does", "did", "not", "to", "of",
                      "and", "or", "in", "on", "at", "for", "with", "by", "be", "been", "it", "its", "their",
                      "they", "them", "his", "her", "he", "she", "i", "my", "me", "we", "our", "you", "your",
                      "will", "would", "can", "so", "very", "s"})
_FIRST_PERSON = re.compile(r"^(i|i'm|im|my|me|we|our)\b", re.IGNORECASE)


def _stems(text: str) -> set[str]:
    return {w[:4] for w in _WORD.findall(text.lower()) if w not in _IGNORED}


def is_grounded(fact: str, source: str, share: float = 0.5) -> bool:
    words = _stems(fact)
    return not words or len(words & _stems(source)) / len(words) >= share


def assert_fact_texts_honour_the_contract(texts: Iterable[str], source: str) -> None:
    """Every text is a subjectless, capitalised memory grounded in ``source``; no duplicates."""
    seen: list[str] = []
    for text in texts:
        assert text and text == text.strip(), repr(text)
        assert text[:1].isupper() or text[:1].isdigit(), f"not capitalised: {text!r}"
        assert not _FIRST_PERSON.match(text), f"first person not rewritten: {text!r}"
        assert is_grounded(text, source), f"not grounded in the input: {text!r} <- {source!r}"
        assert text not in seen, f"duplicate fact {text!r}"
        seen.append(text)
