"""BM25 scores with the statistics of the scope searched, whatever Milvus's segments are.

Milvus Lite scores BM25 with each segment's own statistics (document count, mean
length, document frequencies over every row the segment holds, of every scope),
so a message's word score depends on when rows were flushed and compacted: the
same messages added one flush per add() (as infer=True does, and as any chatbot
that searches between adds does) or 256 per flush gave different word rankings
for all 118 questions of two LoCoMo conversations (77 with a different top 5),
and a message alone in a fresh
segment scored about a twentieth of its due (idf of one document). Milvus's
BM25 search still draws the candidates, the rows that share a word with the
query; this module scores them again with one set of statistics per scope: the
messages of the scope and the facts that stand for no message (the rows that
rank as memories of their own, so facts drawn from messages leave the messages'
scores alone). The tokens are those of Milvus's "standard" analyzer (Unicode
words, lower-cased); k1 1.2, b 0.75, the plain BM25 issue #16 measured.

A store keeps the statistics of the scopes it has searched and updates them
with its own writes. Rows that another process writes to a shared server are
counted from the next time the scope is loaded (a new store handle), which
only nudges the weights of words.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from localmem import english

K1 = 1.2
B = 0.75


tokens = english.analyzer_tokens


@dataclass
class WordStats:
    """Document frequencies, count and total length of the documents of one scope."""

    df: Counter[str] = field(default_factory=Counter)
    docs: int = 0
    length: int = 0

    def count(self, texts: Iterable[str], sign: int = 1) -> None:
        """Add (``sign`` 1) or take away (-1) documents."""
        for text in texts:
            words = tokens(text)
            self.docs += sign
            self.length += sign * len(words)
            for word in set(words):
                self.df[word] += sign
                if self.df[word] <= 0:
                    del self.df[word]

    def mean_length(self) -> float:
        return self.length / self.docs if self.docs > 0 and self.length > 0 else 1.0

    def weights(self, query: str) -> dict[str, float]:
        """Each query word's weight: its count in the query times its idf in these documents."""
        if self.docs <= 0:
            return {}
        out = {}
        for word, count in Counter(tokens(query)).items():
            df = min(self.df.get(word, 0), self.docs)
            out[word] = count * math.log((self.docs - df + 0.5) / (df + 0.5) + 1.0)
        return out

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        """BM25 of each text for ``query``, the query read once (a search scores ~100 texts)."""
        weights, mean = self.weights(query), self.mean_length()
        out = []
        for text in texts:
            words = Counter(tokens(text))
            norm = K1 * (1.0 - B + B * sum(words.values()) / mean)
            out.append(sum(weight * tf * (K1 + 1.0) / (tf + norm)
                           for word, weight in weights.items() if (tf := words.get(word, 0))))
        return out
