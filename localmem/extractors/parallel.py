"""Decode several grammar-constrained prompts together on one llama.cpp context.

Why: on a CPU, decoding one token of a 270M model is dominated by reading the
weights and by the 262k-word output layer; decoding eight sequences' tokens in
one batch costs about twice one (59 against 27 ms a step on 2 cores, small
cache), so a conversation's turns, each in its own prompt, are read side by
side. The prompts share the few-shot instructions: those are evaluated once
into sequence 0, kept between calls, and copied (a KV-cache reference, not a
recomputation) into one sequence per prompt, so each prompt only pays for its
own line.

Greedy decoding with a grammar sampler per sequence, as ``Llama.create_completion``
does with temperature 0; the answers are the same up to floating-point
differences of batched arithmetic. Uses llama-cpp-python's low-level API and
its internal ``LlamaContext`` wrapper (same model, second context).
"""

from __future__ import annotations

import ctypes
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from localmem.errors import ExtractionError, ModelError
from localmem.extractors.prompting import Grammar

# Sequences decoded side by side; the KV cache holds the shared prefix once plus each one's own tokens.
PARALLEL = 8


class GrammarPicker:
    """Greedy decoding under a GBNF grammar, for one row of logits at a time.

    The grammar is first asked about the single best token only; most steps it is allowed,
    and only otherwise is the whole 262k-word vocabulary filtered. That filter, run on every
    step as llama-cpp-python's grammar sampler does, costs more than the decoding itself
    (about 10x on 2 busy cores; 86 ms a token in reconciliation). The token is the same:
    the best one the grammar allows.
    """

    def __init__(self, llama_cpp: Any, vocab: Any) -> None:
        self._lib = llama_cpp
        self._vocab = vocab
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(vocab))
        # llama_token_data laid out as numpy records, for filtering the whole vocabulary in C.
        self._candidates = np.zeros(self.n_vocab, dtype=[("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
        self._candidates["id"] = np.arange(self.n_vocab, dtype=np.int32)
        self._pieces: dict[int, bytes] = {}
        self._buffer = ctypes.create_string_buffer(256)

    def compile(self, grammar: str) -> Any:
        """A fresh grammar state (free it with ``free``)."""
        compiled = self._lib.llama_sampler_init_grammar(self._vocab, grammar.encode("utf-8"), b"root")
        if not compiled:
            raise ExtractionError("llama.cpp could not compile the grammar")
        return compiled

    def free(self, compiled: Any) -> None:
        self._lib.llama_sampler_free(compiled)

    def pick(self, compiled: Any, logits: Any) -> int:
        """The best token ``compiled`` allows after what it has accepted; it accepts that token too."""
        lib = self._lib
        token = int(logits.argmax())
        one = (lib.llama_token_data * 1)(lib.llama_token_data(token, float(logits[token]), 0.0))
        lib.llama_sampler_apply(compiled, ctypes.byref(lib.llama_token_data_array(one, 1, -1, False)))
        if not np.isfinite(one[0].logit):
            full = self._candidates
            full["logit"] = logits
            lib.llama_sampler_apply(compiled, ctypes.byref(lib.llama_token_data_array(
                full.ctypes.data_as(ctypes.POINTER(lib.llama_token_data)), self.n_vocab, -1, False)))
            token = int(full["logit"].argmax())
        lib.llama_sampler_accept(compiled, token)
        return token

    def is_end(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self._vocab, token))

    def piece(self, token: int) -> bytes:
        """The token's text."""
        text = self._pieces.get(token)
        if text is None:
            size = self._lib.llama_token_to_piece(self._vocab, token, self._buffer, len(self._buffer), 0, False)
            text = self._pieces[token] = self._buffer.raw[:max(size, 0)]
        return text

    def done(self, grammar: Grammar, answer: Sequence[int]) -> bool:
        """Whether ``answer`` (the tokens picked so far) ends with the grammar's ``end``."""
        end = grammar.end.encode("utf-8")
        tail = b""
        for token in reversed(answer):
            tail = self.piece(token) + tail
            if len(tail) >= len(end):
                break
        return tail.endswith(end)


@dataclass
class _Slot:
    """A prompt being decoded in one sequence of the batch."""

    prompt: int  # its index in the call
    grammar: Any  # its grammar state
    position: int  # where its next token goes
    need: int  # cache cells it may use: its own prompt tokens and the longest answer


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
        self._picker = GrammarPicker(llama_cpp, llm._model.vocab)
        self._batch = llama_cpp.llama_batch_init(self.n_ctx, 0, 1)
        self._prefix: list[int] = []  # what sequence 0 holds

    def complete(self, prompts: Sequence[list[int]], grammar: Grammar, max_tokens: int,
                 on_done: Callable[[int], object] | None = None) -> list[tuple[list[int], bool, float]]:
        """(answer tokens, finished before max_tokens, decode seconds) per tokenized prompt, in order.

        Any number of prompts: PARALLEL are decoded side by side, and the step after one
        finishes, the next prompt takes its sequence, its own tokens evaluated in the same
        batch as the others' next tokens (continuous batching). Decoding them in fixed groups
        of PARALLEL left the longest answer of each group decoding almost alone: on LoCoMo
        sessions 43% of the steps carried one sequence. An answer is finished at the
        grammar's end text, or at the end token where the grammar allows it earlier.
        ``on_done(1)`` is called as each answer ends (a progress bar's step).
        """
        if not prompts:
            return []
        lib, mem = self._lib, self._ctx.memory
        for seq in range(1, PARALLEL + 1):
            lib.llama_memory_seq_rm(mem, seq, -1, -1)
        # Keep at least one token of each prompt to decode: its logits start the answer.
        shared = min(common_prefix(prompts), *(len(p) - 1 for p in prompts))
        self._hold_prefix(prompts[0][:shared])
        room = self.n_ctx - shared  # cache cells for the prompts' own tokens and answers
        started = time.perf_counter()
        waiting = deque(range(len(prompts)))
        answers: list[list[int]] = [[] for _ in prompts]
        finished = [False] * len(prompts)
        active: dict[int, _Slot] = {}  # sequence -> the prompt it decodes
        rows: list[tuple[int, int, int, bool]] = []  # the next batch: (sequence, position, token, wants logits)
        try:
            while waiting or active:
                for seq in range(1, PARALLEL + 1):
                    if seq in active or not waiting:
                        continue
                    k = waiting[0]
                    own = prompts[k][shared:]
                    need = len(own) + max_tokens
                    # A prompt starts when its tokens and longest answer fit beside those decoding
                    # (alone it always fits: the caller checks each prompt against n_ctx).
                    if active and (sum(s.need for s in active.values()) + need > room
                                   or len(rows) + len(own) > self.n_ctx):
                        break
                    waiting.popleft()
                    lib.llama_memory_seq_cp(mem, 0, seq, -1, -1)
                    active[seq] = _Slot(k, self._picker.compile(grammar.text), len(prompts[k]), need)
                    rows += [(seq, shared + i, token, i == len(own) - 1) for i, token in enumerate(own)]
                self._decode(rows)
                step: list[tuple[int, int, int, bool]] = []
                for row, (seq, _, _, wants) in enumerate(rows):
                    if not wants:
                        continue
                    slot = active[seq]
                    logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(self._ctx.ctx, row),
                                                   shape=(self._picker.n_vocab,))
                    token = self._picker.pick(slot.grammar, logits)
                    answer = answers[slot.prompt]
                    ended = self._picker.is_end(token)
                    if not ended:
                        answer.append(token)
                        ended = self._picker.done(grammar, answer)
                    if ended or len(answer) == max_tokens:
                        finished[slot.prompt] = ended
                        self._picker.free(active.pop(seq).grammar)
                        lib.llama_memory_seq_rm(mem, seq, -1, -1)  # its cells serve the next prompt
                        if on_done is not None:
                            on_done(1)
                        continue
                    step.append((seq, slot.position, token, True))
                    slot.position += 1
                rows = step
        finally:
            for slot in active.values():
                self._picker.free(slot.grammar)
        seconds = time.perf_counter() - started
        return [(a, f, seconds / len(prompts)) for a, f in zip(answers, finished, strict=True)]

    def _hold_prefix(self, prefix: list[int]) -> None:
        """Make sequence 0 hold exactly ``prefix``, evaluating only what it does not hold yet."""
        kept = common_prefix([self._prefix, prefix])
        self._lib.llama_memory_seq_rm(self._ctx.memory, 0, kept, -1)
        self._prefix = self._prefix[:kept]
        if len(prefix) > kept:
            self._decode([(0, pos, prefix[pos], False) for pos in range(kept, len(prefix))])
            self._prefix = list(prefix)

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
