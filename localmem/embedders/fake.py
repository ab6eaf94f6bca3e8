"""A deterministic, dependency-free embedder for unit tests of other logic.

Texts become hashed bag-of-words vectors, so texts sharing words are similar.
It is never a stand-in for the real model in product code or store tests.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from localmem.protocols import EmbedderIdentity, Vectors

_WORD = re.compile(r"[a-z0-9]+")


class HashingEmbedder:
    def __init__(self, dims: int = 64, normalized: bool = True) -> None:
        # The hashing scheme is the whole model: its name and size identify it.
        self._identity = EmbedderIdentity(name=f"hashing-{dims}", dims=dims, normalized=normalized,
                                          fingerprint=f"hashing-v1:{dims}")

    @property
    def identity(self) -> EmbedderIdentity:
        return self._identity

    @property
    def device(self) -> str:
        return "cpu"

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._identity.dims), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                out[row, bucket % self._identity.dims] += 1.0
            out[row, -1] += 1e-3  # no all-zero rows: cosine needs a norm
        if self._identity.normalized:
            out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    def close(self) -> None:
        pass
