"""The CPU embedder: a prepared ONNX export run by onnxruntime, with no torch import.

The export holds the transformer only (token ids -> token vectors). What
sentence-transformers does around it is redone here in numpy: the model's own
tokenizer.json through the ``tokenizers`` package (truncation at the model's
max_seq_length), mean pooling over real tokens, normalisation. ``models prepare``
checks the result against the torch path on fixed texts (cosine >= 0.9999), so
both paths share one identity and one store. Why: one query costs ~4x less than
through torch on 2 cores, and a process that never imports torch starts in a
fraction of the time.

Several texts are embedded one per session run, as many runs at once as there
are cores, each on one thread: no padding, no thread hand-offs inside a run, and
a text's vector never depends on the texts embedded with it (int8's activation
scales are computed per run, so in a shared batch they would). Measured on 2
cores, 512 LoCoMo turns: int8 400 texts/s in runs of 8, 462-476 one per run;
fp32 142-187 against 191-202.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from localmem.errors import DependencyError, InvalidInputError, ModelError
from localmem.protocols import EmbedderIdentity, Vectors
from localmem.threads import intra_op_threads, onnx_session_options, parallel_runs


class OnnxEmbedder:
    """Embeds with ``model_file`` (an ONNX export of the folder's transformer) and the folder's tokenizer."""

    def __init__(self, folder: Path, model_file: Path, identity: EmbedderIdentity, *,
                 batch_size: int | None = None, label: str = "onnx") -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise DependencyError(f"the ONNX embedder needs onnxruntime and tokenizers: pip install onnxruntime "
                                  f"tokenizers ({exc})") from exc
        self._identity = identity
        self._ort = ort
        # None: one text per run, runs side by side (see the module docstring); a number: texts per run.
        self._batch_size = batch_size
        self.label = label
        self.model_file = model_file
        max_length = _max_seq_length(folder)
        try:
            self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:
            raise ModelError(f"cannot read the tokenizer of {folder}: {exc}") from exc
        self._tokenizer.enable_truncation(max_length=max_length)
        pad_id = self._tokenizer.token_to_id("[PAD]")
        self._tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
        # One session on the sized pool, single texts included. Measured on 2 cores with a
        # ~50-token LoCoMo turn, p50 per text: 1 thread 14.7 ms idle / 14.2 ms beside a busy
        # loop / 32.9 ms beside two; 2 threads 11.0 / 12.9 / 28.3 ms. Its workers block when idle
        # (allow_spinning=0, threads.py), so a second thread costs nothing between calls.
        try:
            self._session = ort.InferenceSession(
                str(model_file), sess_options=onnx_session_options(ort, intra_op_threads()),
                providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"cannot load the ONNX export {model_file}: {exc}; run "
                             "'localmem models prepare' to rebuild it") from exc
        self._inputs = {i.name for i in self._session.get_inputs()}
        # For several texts: a one-thread session shared by one worker per core (a run is thread-safe),
        # made on first use: a process that only searches never holds the second copy of the weights.
        self._solo: tuple[Any, ThreadPoolExecutor] | None = None
        self._solo_lock = threading.Lock()

    @property
    def identity(self) -> EmbedderIdentity:
        return self._identity

    @property
    def device(self) -> str:
        return "cpu"

    def embed(self, texts: Sequence[str]) -> Vectors:
        if isinstance(texts, str):
            raise InvalidInputError("embed() takes a list of strings, not one string")
        if not texts:
            return np.zeros((0, self._identity.dims), dtype=np.float32)
        if len(texts) == 1:
            return self._run(self._session, list(texts))
        if self._batch_size is None:
            session, pool = self._side_by_side()
            return np.concatenate(list(pool.map(lambda text: self._run(session, [text]), texts)))
        # Sort by length so each batch pads to similar lengths (as sentence-transformers does).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self._identity.dims), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            chunk = order[start:start + self._batch_size]
            out[chunk] = self._run(self._session, [texts[i] for i in chunk])
        return out

    def close(self) -> None:
        with self._solo_lock:
            solo, self._solo = self._solo, None
        if solo is not None:
            solo[1].shutdown(wait=True)

    def _side_by_side(self) -> tuple[Any, ThreadPoolExecutor]:
        with self._solo_lock:
            if self._solo is None:
                session = self._ort.InferenceSession(
                    str(self.model_file), sess_options=onnx_session_options(self._ort, 1),
                    providers=["CPUExecutionProvider"])
                self._solo = (session, ThreadPoolExecutor(parallel_runs(), thread_name_prefix="localmem-embed"))
            return self._solo

    def _run(self, session: Any, texts: list[str]) -> Vectors:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        tokens = session.run(None, feeds)[0]  # (batch, tokens, dims)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        if self._identity.normalized:
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(pooled, dtype=np.float32)


def _max_seq_length(folder: Path) -> int:
    """sentence-transformers' truncation length (sentence_bert_config.json), else BERT's 512."""
    config = folder / "sentence_bert_config.json"
    try:
        value = json.loads(config.read_text()).get("max_seq_length") if config.is_file() else None
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {config}: {exc}") from exc
    return int(value) if value else 512
