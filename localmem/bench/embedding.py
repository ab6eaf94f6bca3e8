"""Corpus embeddings for the benchmarks, cached on disk, in both variants.

The bundled all-MiniLM-L6-v2 ends in a ``Normalize`` module. We embed corpora once
with that module stripped (the *raw* variant, what ``normalize_embeddings=False``
alone would not give us) and derive the default, unit-length variant by dividing by
the norm, which is exactly what ``Normalize`` computes; ``check_normalised`` proves it
on a sample against localmem's own embedder. Raw vectors are cached under
``~/.cache/localmem/bench/`` in blocks keyed by the block's text hash and the model's
weights sha256, so a rerun (or a bigger run sharing a prefix) embeds nothing again.
Query embeddings are never cached: their time is part of what we measure.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from localmem.bench.data import texts_hash
from localmem.config import EmbedderConfig
from localmem.embedders.sentence_transformers import SentenceTransformerEmbedder, force_offline
from localmem.models import find_entry, resolve_model
from localmem.progress import bar
from localmem.protocols import Vectors

MODEL_NAME = "all-MiniLM-L6-v2"
CACHE_ENV = "LOCALMEM_BENCH_CACHE"
BLOCK = 5000  # texts per cache file: prefixes of the corpus reuse whole blocks


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "localmem" / "bench")


def model_sha() -> str:
    entry = find_entry(MODEL_NAME)
    return next(f.sha256 for f in entry.files if f.path.endswith(".safetensors"))


def normalise(vectors: Vectors) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


class Embedders:
    """localmem's default embedder (for timed query embedding) and the raw, Normalize-free model."""

    def __init__(self, device: str = "auto", batch_size: int = 64) -> None:
        force_offline()
        self.default = SentenceTransformerEmbedder(EmbedderConfig(device=device, batch_size=batch_size))
        self.raw_default = SentenceTransformerEmbedder(
            EmbedderConfig(device=device, batch_size=batch_size, normalize=False))
        self.normalize_module_found = _strip_normalize(self.raw_default)
        self.device = self.default.device
        self.sha = model_sha()
        self.path = str(resolve_model(MODEL_NAME))

    def embed_raw_cached(self, texts: list[str], progress: bool = False) -> Vectors:
        """Raw (un-normalised) vectors of ``texts``, from the cache where possible."""
        blocks = []
        directory = cache_dir()
        directory.mkdir(parents=True, exist_ok=True)
        with bar(len(texts), f"embedding on {self.device}", unit="text", quiet=not progress) as step:
            for start in range(0, len(texts), BLOCK):
                chunk = texts[start:start + BLOCK]
                path = directory / f"{MODEL_NAME}-{self.sha[:16]}-raw-{texts_hash(chunk)[:24]}.npy"
                if path.is_file():
                    blocks.append(np.load(path))
                else:
                    vectors = self.raw_default.embed(chunk)
                    partial = path.with_suffix(".partial.npy")
                    np.save(partial, vectors)
                    os.replace(partial, path)
                    blocks.append(vectors)
                step(len(chunk))
        if not blocks:
            return np.zeros((0, self.default.identity.dims), dtype=np.float32)
        return np.ascontiguousarray(np.concatenate(blocks), dtype=np.float32)

    def check_normalised(self, texts: list[str]) -> float:
        """Max abs difference between normalise(raw) and the default embedder's output."""
        sample = texts[:32]
        return float(np.max(np.abs(normalise(self.raw_default.embed(sample)) - self.default.embed(sample))))

    def close(self) -> None:
        self.default.close()
        self.raw_default.close()


def _strip_normalize(embedder: SentenceTransformerEmbedder) -> bool:
    """Remove a trailing Normalize module so normalize_embeddings=False really gives raw vectors."""
    from sentence_transformers.models import Normalize

    model: Any = embedder._model  # the benchmark needs the module list; the product never does this
    found = [i for i, module in enumerate(model) if isinstance(module, Normalize)]
    for index in reversed(found):
        del model[index]
    return bool(found)
