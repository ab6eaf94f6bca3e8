"""A sentence-transformers embedder loaded strictly from local files.

Hugging Face's offline switches are set before the library is imported, so a
model folder that is incomplete fails loudly instead of reaching for the hub.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from localmem.config import EmbedderConfig
from localmem.devices import resolve_device
from localmem.errors import DependencyError, InvalidInputError, ModelError
from localmem.protocols import EmbedderIdentity, Vectors
from localmem.threads import configure_torch

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}

# Texts per encode() call when the config leaves it open (see EmbedderConfig.batch_size).
TORCH_BATCH = 64


def force_offline() -> None:
    """Make every Hugging Face library refuse the network for this process."""
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value


class SentenceTransformerEmbedder:
    def __init__(self, config: EmbedderConfig | None = None, model_path: str | Path | None = None,
                 identity: EmbedderIdentity | None = None) -> None:
        """``identity`` (from embedders/select.py) names the weights by content; without it, it is worked out."""
        self.config = config or EmbedderConfig()
        if identity is None:
            from localmem.embedders.select import resolve_source

            source = resolve_source(replace(self.config, model=str(model_path) if model_path else self.config.model))
            model_path = source.folder
            identity = EmbedderIdentity(source.name, 0, self.config.normalize or source.normalize_module,
                                        source.fingerprint)
        path = Path(model_path) if model_path else _default_model_path()
        if not path.is_dir() or not (path / "config.json").is_file():
            raise ModelError(
                f"embedder model folder {path} is missing or incomplete (no config.json); give a local "
                "sentence-transformers folder, or run 'localmem models prepare'")
        self.path = path
        force_offline()
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - a base dependency
            raise DependencyError("sentence-transformers is not installed: pip install sentence-transformers") from exc
        self._device = resolve_device(self.config.device)
        configure_torch(torch)
        try:
            with _quiet_loading():
                self._model: SentenceTransformer = SentenceTransformer(
                    str(path), device=self._device, local_files_only=True)
        except Exception as exc:
            raise ModelError(f"cannot load the embedder from {path}: {exc}") from exc
        # Renamed in sentence-transformers 5; the old name warns there.
        get_dims = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dims = get_dims()
        if dims is None:
            raise ModelError(f"the model at {path} does not declare an embedding dimension")
        # The identity is stored with a collection: a content fingerprint, the same as the ONNX path's.
        self._identity = replace(identity, dims=int(dims))
        # torch modules are not safe to call from several threads at once.
        self._lock = threading.Lock()

    @property
    def identity(self) -> EmbedderIdentity:
        return self._identity

    @property
    def device(self) -> str:
        return self._device

    def embed(self, texts: Sequence[str]) -> Vectors:
        if isinstance(texts, str):
            raise InvalidInputError("embed() takes a list of strings, not one string")
        if not texts:
            return np.zeros((0, self._identity.dims), dtype=np.float32)
        # A model whose modules end in Normalize is unit-length whatever this flag says (the identity says so).
        with self._lock:
            out = self._model.encode(
                list(texts), batch_size=self.config.batch_size or TORCH_BATCH, convert_to_numpy=True,
                normalize_embeddings=self.config.normalize, show_progress_bar=False)
        return np.ascontiguousarray(out, dtype=np.float32)

    def close(self) -> None:
        pass


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Hide transformers' per-load progress bar (noise on every Memory()), restoring its setting."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - a dependency of sentence-transformers
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def _default_model_path() -> Path:
    from localmem.models import resolve_model

    return resolve_model(DEFAULT_EMBEDDER)
