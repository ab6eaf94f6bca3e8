"""Decode several grammar-constrained prompts together on one llama.cpp context.

Why: on a CPU, decoding one token of a 270M model is dominated by reading the
weights and by the 262k-word output layer; decoding eight sequences' tokens in
one batch costs little more than one, so a conversation's turns, each in its
own prompt, are read side by side. The prompts share the few-shot
instructions: those are evaluated once into sequence 0, kept between calls,
and copied (a KV-cache reference, not a recomputation) into one sequence per
prompt, so each prompt only pays for its own line.

Greedy decoding with a grammar sampler per sequence, as ``Llama.create_completion``
does with temperature 0; the answers are the same up to floating-point
differences of batched arithmetic. Uses llama-cpp-python's low-level API and
its internal ``LlamaContext`` wrapper (same model, second context).
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from localmem.errors import ExtractionError, ModelError

# Sequences decoded side by side; the KV cache holds the shared prefix once plus each one's own tokens.
PARALLEL = 8


class ParallelDecoder:
    """A second context on an already loaded ``llama_cpp.Llama``, sized for PARALLEL sequences."""

    def __init__(self, llm: Any, llama_cpp: Any, n_ctx: int, max_tokens: int) -> None:
        from llama_cpp import _internals

        self._llm = llm
        self._lib = llama_cpp
        params = llama_cpp.llama_context_default_params()
        for name in ("n_threads", "n_threads_batch", "flash_attn_type", "type_k", "type_v"):
            if hasattr(params, name) and hasattr(llm.context_params, name):
                setattr(params, name, getattr(llm.context_params, name))
        # Room for the prefix once and every sequence's prompt line and answer.
        self.n_ctx = n_ctx + PARALLEL * (max_tokens + 128)
        params.n_ctx = self.n_ctx
        params.n_batch = self.n_ctx
        params.n_ubatch = 512
        params.n_seq_max = PARALLEL + 1
        params.kv_unified = True  # the copied prefix is stored once and shared
        try:
            self._ctx: Any = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        except ValueError as exc:
            raise ModelError(f"llama.cpp cannot create a {self.n_ctx}-token context for batched "
                             f"extraction: {exc}") from exc
        self._vocab = llm._model.vocab
        self._n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        # llama_token_data laid out as numpy records, for filtering the whole vocabulary in C.
        self._candidates = np.zeros(self._n_vocab, dtype=[("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
        self._candidates["id"] = np.arange(self._n_vocab, dtype=np.int32)
        self._batch = llama_cpp.llama_batch_init(self.n_ctx, 0, 1)
        self._prefix: list[int] = []  # what sequence 0 holds

    def complete(self, prompts: Sequence[list[int]], grammar: str,
                 max_tokens: int) -> list[tuple[list[int], bool, float]]:
        """(answer tokens, finished before max_tokens, decode seconds) per tokenized prompt, at most PARALLEL."""
        if not 0 < len(prompts) <= PARALLEL:
            raise ValueError(f"between 1 and {PARALLEL} prompts at a time, got {len(prompts)}")
        lib, mem = self._lib, self._ctx.memory
        for seq in range(1, PARALLEL + 1):
            lib.llama_memory_seq_rm(mem, seq, -1, -1)
        shared = common_prefix(prompts)
        # Keep at least one token of each prompt to decode: its logits start the answer.
        shared = min(shared, *(len(p) - 1 for p in prompts))
        kept = common_prefix([self._prefix, prompts[0][:shared]])
        lib.llama_memory_seq_rm(mem, 0, kept, -1)
        self._prefix = self._prefix[:kept]
        if shared > kept:
            self._decode([(0, pos, prompts[0][pos], False) for pos in range(kept, shared)])
            self._prefix = list(prompts[0][:shared])
        started = time.perf_counter()
        items: list[tuple[int, int, int, bool]] = []
        for seq, prompt in enumerate(prompts, start=1):
            lib.llama_memory_seq_cp(mem, 0, seq, -1, -1)
            items += [(seq, pos, prompt[pos], pos == len(prompt) - 1) for pos in range(shared, len(prompt))]
        self._decode(items)
        grammars = [self._grammar(grammar) for _ in prompts]
        answers: list[list[int]] = [[] for _ in prompts]
        finished = [False] * len(prompts)
        positions = [len(p) for p in prompts]
        # prompt number -> the row of the last batch that holds its next token's logits
        rows = {k: row for k, row in enumerate(i for i, item in enumerate(items) if item[3])}
        try:
            for _ in range(max_tokens):
                step: list[tuple[int, int, int, bool]] = []
                for k, row in rows.items():
                    token = self._sample(grammars[k], row)
                    if lib.llama_vocab_is_eog(self._vocab, token):
                        finished[k] = True
                        continue
                    answers[k].append(token)
                    step.append((k + 1, positions[k], token, True))
                    positions[k] += 1
                if not step:
                    break
                self._decode(step)
                rows = {item[0] - 1: i for i, item in enumerate(step)}
        finally:
            for compiled in grammars:
                lib.llama_sampler_free(compiled)
        seconds = time.perf_counter() - started
        return [(a, f, seconds / len(prompts)) for a, f in zip(answers, finished, strict=True)]

    def _grammar(self, grammar: str) -> Any:
        compiled = self._lib.llama_sampler_init_grammar(self._vocab, grammar.encode("utf-8"), b"root")
        if not compiled:
            raise ExtractionError("llama.cpp could not compile the extraction grammar")
        return compiled

    def _sample(self, grammar: Any, row: int) -> int:
        """The greedy token the grammar allows, for the logits of batch row ``row``.

        The grammar is first asked about the single best token only; most steps it is allowed,
        and only otherwise is the whole 262k-word vocabulary filtered (that filter, run on every
        step, costs more than the decoding itself: measured about 10x on 2 busy cores).
        """
        lib = self._lib
        logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(self._ctx.ctx, row), shape=(self._n_vocab,))
        token = int(logits.argmax())
        one = (lib.llama_token_data * 1)(lib.llama_token_data(token, float(logits[token]), 0.0))
        lib.llama_sampler_apply(grammar, ctypes.byref(lib.llama_token_data_array(one, 1, -1, False)))
        if not np.isfinite(one[0].logit):
            full = self._candidates
            full["logit"] = logits
            lib.llama_sampler_apply(grammar, ctypes.byref(lib.llama_token_data_array(
                full.ctypes.data_as(ctypes.POINTER(lib.llama_token_data)), self._n_vocab, -1, False)))
            token = int(full["logit"].argmax())
        lib.llama_sampler_accept(grammar, token)
        return token

    def _decode(self, items: Sequence[tuple[int, int, int, bool]]) -> None:
        """Evaluate (sequence, position, token, wants logits) rows in one llama_decode."""
        batch = self._batch
        for i, (seq, pos, token, logits) in enumerate(items):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = logits
        batch.n_tokens = len(items)
        code = self._lib.llama_decode(self._ctx.ctx, batch)
        if code != 0:
            raise ExtractionError(f"llama.cpp could not decode a batch of {len(items)} tokens (code {code}); "
                                  "raise llm.config.n_ctx or extract fewer messages at a time")

    def close(self) -> None:
        batch = self.__dict__.pop("_batch", None)
        if batch is not None:
            self._lib.llama_batch_free(batch)
            context: Any = self._ctx
            context.close()


def common_prefix(sequences: Sequence[Sequence[int]]) -> int:
    if not sequences:
        return 0
    n = min(len(s) for s in sequences)
    first = sequences[0]
    for i in range(n):
        if any(s[i] != first[i] for s in sequences[1:]):
            return i
    return n
