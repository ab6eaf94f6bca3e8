"""The language model of add(infer=True): a GGUF file run in-process by llama.cpp.

The bundled model is Gemma 3 270M *base* (not chat-tuned), so both steps are
few-shot completion prompts whose answer is constrained by a GBNF grammar:
the output always has a parseable shape. Prompts are counted in tokens before
a call; a conversation is read one user message at a time (with the message
before it as context), each window checked to fit the context. Reconciliation
answers as the model does; the pipeline decides by the rules of ``rules.py``
first and checks the answer against the texts (``rules.checked``), for any model.

This module must not download anything: the model is a local file, the
default one found and checksummed through ``localmem.models``.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from localmem import english, models, progress
from localmem.config import LlmConfig
from localmem.errors import (
    ChecksumError,
    DependencyError,
    InvalidInputError,
    ModelError,
    PromptTooLongError,
)
from localmem.extractors import rules, whose
from localmem.extractors.gates import GateCounts
from localmem.extractors.parallel import GrammarPicker, ParallelDecoder, common_prefix
from localmem.extractors.postprocess import finish, merge
from localmem.extractors.prompting import (
    NO_FACTS,
    Grammar,
    extraction_grammar,
    extraction_prompt,
    parse_decision,
    parse_lines,
    reconcile_grammar,
    reconcile_prompt,
    render_message,
)
from localmem.protocols import Candidate
from localmem.records import Decision, Event, Fact, Message

GGUF_MAGIC = b"GGUF"
_PREPARE_HINT = "run 'localmem models prepare' to restore the bundled model, or set llm.config.model_path"
# Tokens kept free beyond the answer: counting a window's lines one by one can
# differ by a token or two from counting the joined prompt.
_MARGIN = 8


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    generation_seconds: float  # decoding time only, not the prompt's
    cut: bool = False  # reached max_tokens before the grammar ended it (a small model repeating itself)


class Backend(Protocol):
    """The two things LlamaCppModel needs from llama.cpp; tests pass a tiny fake."""

    @property
    def n_ctx(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def complete(self, prompt: str, grammar: Grammar, max_tokens: int) -> Completion: ...

    def complete_many(self, prompts: Sequence[str], grammar: Grammar, max_tokens: int, *,
                      on_done: Callable[[int], object] | None = None) -> list[Completion]:
        """One completion per prompt, in order; a backend may decode them together.
        ``on_done(n)``: n more prompts answered (for a progress bar)."""
        ...

    def close(self) -> None: ...


@dataclass
class Stats:
    """Running totals, for benchmarks and logs."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generation_seconds: float = 0.0
    cut_answers: int = 0  # answers cut at max_tokens: extraction keeps their complete lines, reconciliation ADDs

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.generation_seconds if self.generation_seconds else 0.0


class LlamaCppModel:
    """extract_facts / reconcile on a local GGUF model; one loaded model per instance."""

    def __init__(self, config: LlmConfig | None = None, *, backend: Backend | None = None) -> None:
        self.config = config or LlmConfig()
        self._backend = backend if backend is not None else LlamaCppBackend(self.config)
        self._lock = threading.Lock()  # a llama.cpp context serves one call at a time
        self.stats = Stats()
        self.gates = GateCounts()

    # -- extraction --------------------------------------------------------
    def extract_facts(self, messages: Sequence[Message], custom_prompt: str | None = None) -> list[Fact]:
        return self.extract_batch(messages, custom_prompt)

    def extract_batch(self, messages: Sequence[Message], custom_prompt: str | None = None, *,
                      times: Sequence[datetime | None] | None = None) -> list[Fact]:
        """The facts of every turn of ``messages``, each with ``sources``: the indices of its message(s).

        Turns are the user messages and every message whose speaker is known (a ``name`` or
        a "Name: " prefix); each is read in its own prompt, and the prompts are decoded
        together (``Backend.complete_many``), which is where the speed of a batch comes from.
        ``times[i]``, when given, is the time of ``messages[i]``: its facts are dated from it.
        """
        if times is not None and len(times) != len(messages):
            raise InvalidInputError(f"times has {len(times)} entries for {len(messages)} messages: give one "
                                    "time (or None) per message")
        return self._extract([(messages, times)], custom_prompt)[0]

    def extract_many(self, conversations: Sequence[Sequence[Message]],
                     custom_prompt: str | None = None) -> list[list[Fact]]:
        """``extract_facts`` of each conversation, their turns decoded together in one batch
        (background extraction runs the queued add() calls so: a batch per call left each one's
        longest answers decoding almost alone, 197 of 396 steps on LoCoMo sessions)."""
        return self._extract([(messages, None) for messages in conversations], custom_prompt)

    def _extract(self, conversations: Sequence[tuple[Sequence[Message], Sequence[datetime | None] | None]],
                 custom_prompt: str | None) -> list[list[Fact]]:
        reads = [whose.turns(messages) for messages, _ in conversations]
        windows = [self._windows(messages, read, custom_prompt)
                   for (messages, _), read in zip(conversations, reads, strict=True)]
        outputs = iter(_ended_lines(one) for one in self._complete_many(
            [extraction_prompt(lines, custom_prompt) for group in windows for _, lines in group], extraction_grammar()))
        out: list[list[Fact]] = []
        for (_, times), read, group in zip(conversations, reads, windows, strict=True):
            names = frozenset(t.speaker for t in read if t.speaker)
            facts: list[Fact] = []
            for index, _ in group:
                time = times[index] if times is not None else None
                for line in parse_lines(next(outputs)):
                    fact = finish(line, read[index], time, self.gates, names)
                    if fact is not None:
                        facts.append(fact)
            out.append(merge(facts))
        return out

    def _windows(self, messages: Sequence[Message], read: Sequence[whose.Turn],
                 custom_prompt: str | None) -> list[tuple[int, list[str]]]:
        """(message index, prompt lines) per turn to read, with the message before it as context when that
        message is not itself read and fits.

        The 270M model reads facts almost only from the last line of a prompt
        (measured: of three messages it kept the last one's facts), so each
        turn gets its own prompt. Without user or named messages (an agent's
        notes) every message is a turn.
        """
        fixed = self._backend.count_tokens(extraction_prompt([], custom_prompt))
        budget = self._budget() - fixed
        if budget <= 0:
            raise PromptTooLongError(
                f"the extraction instructions alone are {fixed} tokens; with max_tokens={self.config.max_tokens} "
                f"nothing fits in n_ctx={self._backend.n_ctx}: shorten the custom prompt or raise llm.config.n_ctx")
        kept = [i for i, m in enumerate(messages) if m.role != "system" and read[i].text]
        targets = [i for i in kept if messages[i].role == "user" or read[i].speaker] or kept
        windows: list[tuple[int, list[str]]] = []
        for index in targets:
            # A named speaker's words are shown as the user's, the role the examples take notes on.
            target = Message("user" if read[index].speaker else messages[index].role, read[index].text)
            line = render_message(target)
            size = self._backend.count_tokens(line)
            if size > budget:
                # A long message is read in consecutive pieces, each on its own: nothing is cut off.
                for piece in self._pieces(target, budget):
                    if (piece_size := self._backend.count_tokens(piece)) > budget:
                        raise PromptTooLongError(
                            f"message {index} is {size} tokens; split at sentences and words it still has a "
                            f"{piece_size}-token piece, and only {budget} fit beside the {fixed}-token "
                            f"instructions and max_tokens={self.config.max_tokens} in "
                            f"n_ctx={self._backend.n_ctx}; raise llm.config.n_ctx")
                    windows.append((index, [piece]))
                continue
            before = [i for i in kept if i < index]
            context = None
            if before and before[-1] not in targets:
                context = render_message(Message(messages[before[-1]].role, read[before[-1]].text))
            if context is not None and size + self._backend.count_tokens(context) <= budget:
                windows.append((index, [context, line]))
            else:
                windows.append((index, [line]))
        return windows

    def _pieces(self, message: Message, budget: int) -> list[str]:
        """The message as rendered lines of whole sentences (whole words for an overlong sentence),
        each packed up to ``budget`` tokens."""
        def pack(units: list[str]) -> list[str]:
            out: list[str] = []
            current = ""
            for unit in units:
                joined = f"{current} {unit}".strip()
                if current and self._backend.count_tokens(render_message(Message(message.role, joined))) > budget:
                    out.append(current)
                    current = unit
                else:
                    current = joined
            return [*out, current] if current else out

        pieces: list[str] = []
        for chunk in pack(english.SENTENCE_BREAK.split(message.content.strip())):
            if self._backend.count_tokens(render_message(Message(message.role, chunk))) > budget:
                pieces.extend(pack(chunk.split()))
            else:
                pieces.append(chunk)
        return [render_message(Message(message.role, p)) for p in pieces]

    # -- reconciliation ----------------------------------------------------
    def reconcile(self, fact: Fact, candidates: Sequence[Candidate], custom_prompt: str | None = None) -> Decision:
        """The model's answer, parsed; the pipeline checks it (rules.checked).

        The model is not asked where the checks could accept no answer but a merge, for any memory
        shown: over 600 LoCoMo turns (6 conversations x 100, one add a session) it was asked 59 times
        (25 s of a 155 s ingest), and all 47 such calls ended as ADD. A merge is what is given up: the
        fact is then added beside the memory, and nothing is lost.
        """
        if not candidates or not any(rules.checks_could_accept(fact, c.text) for c in candidates):
            return Decision(Event.ADD, fact.text)
        answer = self._complete(reconcile_prompt(fact, candidates, custom_prompt), reconcile_grammar(candidates))
        if answer.cut:
            # The bundled model sometimes repeats itself to max_tokens (seen on LoCoMo: "UPDATE 0: Maria volunteers
            # at the homeless shelter Maria volunteers at ..."). Such an answer decides nothing: the fact is
            # added in its own words, as the checks do with every answer they refuse (stats.cut_answers counts it).
            return Decision(Event.ADD, fact.text)
        return parse_decision(answer.text, candidates)

    # -- shared ------------------------------------------------------------
    def _budget(self) -> int:
        return self._backend.n_ctx - self.config.max_tokens - _MARGIN

    def _complete(self, prompt: str, grammar: Grammar) -> Completion:
        return self._complete_many([prompt], grammar, together=False)[0]

    def _complete_many(self, prompts: Sequence[str], grammar: Grammar, *, together: bool = True) -> list[Completion]:
        """Completions in order; a cut one (``Completion.cut``) is the caller's to judge. Extraction
        prompts go ``together`` through the backend's batched decoder even one at a time (it keeps
        the few-shot prefix and filters the grammar cheaply); reconciliation prompts, with another
        prefix, use the plain path on the model's own context, where llama.cpp reuses the previous
        prompt's tokens: only reconciliation uses that context, so its few-shot prefix stays
        evaluated from one call to the next."""
        for prompt in prompts:
            size = self._backend.count_tokens(prompt)
            if size > self._budget():
                raise PromptTooLongError(
                    f"the prompt is {size} tokens; with max_tokens={self.config.max_tokens} it must stay under "
                    f"{self._budget()} for n_ctx={self._backend.n_ctx}: shorten the custom prompt or raise "
                    "llm.config.n_ctx")
        if not prompts:
            return []
        with self._lock:
            if together:
                # A bar only for a large add() watched on a terminal (progress.py); decoding is the same.
                with progress.bar(len(prompts), "extracting facts", unit="turn") as step:
                    done = self._backend.complete_many(prompts, grammar, self.config.max_tokens, on_done=step)
            else:
                done = [self._backend.complete(p, grammar, self.config.max_tokens) for p in prompts]
            for one in done:
                self.stats.calls += 1
                self.stats.prompt_tokens += one.prompt_tokens
                self.stats.completion_tokens += one.completion_tokens
                self.stats.generation_seconds += one.generation_seconds
                self.stats.cut_answers += one.cut
        return done

    def close(self) -> None:
        self._backend.close()


def _ended_lines(answer: Completion) -> str:
    """A list of facts; if it was cut, the lines that ended, or the "no facts" answer when none did.

    Seen on LoCoMo: "- I'm motivated by my family, my friends, my job, my family, my friends, ..." to
    max_tokens. The message stays stored and findable either way.
    """
    if not answer.cut:
        return answer.text
    ended = answer.text[:answer.text.rfind("\n") + 1]
    return ended if ended.strip() else f"- {NO_FACTS}\n"


# -- llama.cpp ---------------------------------------------------------------------
class LlamaCppBackend:
    """A llama_cpp.Llama loaded once from a checked GGUF file."""

    def __init__(self, config: LlmConfig) -> None:
        self.config = config
        self.path = model_file(config.model_path)
        try:
            import llama_cpp
        except ImportError as exc:  # pragma: no cover - a base dependency
            raise DependencyError("llama-cpp-python is not installed: pip install llama-cpp-python") from exc
        self._llama_cpp = llama_cpp
        if not config.verbose:
            _silence_llama_cpp(llama_cpp)
        kwargs: dict[str, Any] = {"model_path": str(self.path), "n_ctx": config.n_ctx, "n_batch": config.n_batch,
                                  "n_gpu_layers": config.n_gpu_layers, "seed": config.seed,
                                  "verbose": config.verbose}
        if config.n_threads is not None:
            kwargs["n_threads"] = config.n_threads
        try:
            self._llm = llama_cpp.Llama(**kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"llama.cpp cannot load {self.path}: {exc}. The file may be truncated or not a "
                             f"model llama.cpp supports; {_PREPARE_HINT}") from exc
        try:
            self._check_output()
        except BaseException:
            self._llm.close()
            raise
        # No llama-cpp-python state cache: each save copies the context's whole logits table
        # (n_ctx x 262k floats; 0.5 s a call measured), which made reconciliation 2x slower.
        self._grammars: dict[str, Any] = {}
        self._parallel: ParallelDecoder | None = None  # made on the first batch
        self._picker: GrammarPicker | None = None  # made on the first single completion

    def _check_output(self) -> None:
        """Refuse a GGUF whose tensor data is damaged, as a ModelError, before it is used.

        Such a file passes the magic and structure checks and loads fine, then
        answers garbage until max_tokens (it surfaced as an ExtractionError). Its
        damaged quantisation scales make the logits non-finite: one forward pass
        over a few tokens (milliseconds) shows it. A user's path has no manifest
        checksum, so this is the check that applies to it.
        """
        llm: Any = self._llm
        llm.eval(llm.tokenize(b"The capital of France is", add_bos=True))
        logits = np.ctypeslib.as_array(self._llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1),
                                       shape=(llm.n_vocab(),))
        finite = bool(np.isfinite(logits).all())
        llm.reset()
        if not finite:
            raise ModelError(f"{self.path} loads but computes non-finite values: its weights are damaged. "
                             f"{_PREPARE_HINT}")

    @property
    def n_ctx(self) -> int:
        return int(self._llm.n_ctx())

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=True))

    def complete(self, prompt: str, grammar: Grammar, max_tokens: int) -> Completion:
        """One completion on the model's own context, which keeps the previous prompt's tokens:
        the part a new prompt shares with it (reconciliation's few-shot prefix) is not evaluated again."""
        llama_cpp = self._llama_cpp
        ctx = self._llm._ctx.ctx  # the C context, for llama.cpp's own decode timings
        llama_cpp.llama_perf_context_reset(ctx)
        started = time.perf_counter()
        tokens = self._llm.tokenize(prompt.encode("utf-8"), add_bos=True)
        if self.config.temperature == 0:
            answer, finished = self._greedy(tokens, grammar, max_tokens)
            text = self._llm.detokenize(answer).decode("utf-8", errors="replace")
            used = len(answer)
        else:
            compiled = self._grammars.get(grammar.text)
            if compiled is None:
                compiled = self._grammars[grammar.text] = llama_cpp.LlamaGrammar.from_string(grammar.text,
                                                                                          verbose=False)
            result: Any = self._llm.create_completion(
                tokens, max_tokens=max_tokens, temperature=self.config.temperature, seed=self.config.seed,
                grammar=compiled, repeat_penalty=1.0)
            choice = result["choices"][0]
            text, finished = choice["text"], choice["finish_reason"] != "length"
            used = int(result["usage"]["completion_tokens"])
        wall = time.perf_counter() - started
        perf = llama_cpp.llama_perf_context(ctx)
        seconds = perf.t_eval_ms / 1000.0 if perf.n_eval > 0 else wall
        return Completion(text=text, prompt_tokens=len(tokens), completion_tokens=used, generation_seconds=seconds,
                          cut=not finished)

    def _greedy(self, tokens: list[int], grammar: Grammar, max_tokens: int) -> tuple[list[int], bool]:
        """(answer tokens, ended by the grammar) for temperature 0: what ``create_completion`` gives with
        a grammar, its best allowed token each step, picked as the batched decoder picks them (see
        parallel.GrammarPicker: llama-cpp-python's grammar sampler filtered all 262k words every token)."""
        llm: Any = self._llm
        if self._picker is None:
            self._picker = GrammarPicker(self._llama_cpp, llm._model.vocab)
        picker = self._picker
        # Keep what the context already holds of this prompt, as Llama.generate does; at least the
        # last token is evaluated again, for its logits. A cache that cannot drop a suffix starts over.
        keep = min(common_prefix([llm.input_ids[:llm.n_tokens].tolist(), tokens]), len(tokens) - 1)
        if keep > 0 and not llm._ctx.kv_cache_seq_rm(-1, keep, -1):
            keep = 0
        llm.n_tokens = keep
        llm.eval(tokens[keep:])
        compiled = picker.compile(grammar.text)
        answer: list[int] = []
        try:
            for _ in range(max_tokens):
                logits = np.ctypeslib.as_array(self._llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1),
                                               shape=(picker.n_vocab,))
                token = picker.pick(compiled, logits)
                if picker.is_end(token):
                    return answer, True
                answer.append(token)
                if picker.done(grammar, answer):
                    return answer, True
                llm.eval([token])
            return answer, False
        finally:
            picker.free(compiled)

    def complete_many(self, prompts: Sequence[str], grammar: Grammar, max_tokens: int, *,
                      on_done: Callable[[int], object] | None = None) -> list[Completion]:
        """The prompts decoded PARALLEL at a time, each finished one's place taken by the next (see
        parallel.py), in order."""
        if self._parallel is None:
            self._parallel = ParallelDecoder(self._llm, self._llama_cpp, self.n_ctx, max_tokens)
        tokenized = [self._llm.tokenize(p.encode("utf-8"), add_bos=True) for p in prompts]
        out: list[Completion] = []
        for prompt, (answer, finished, seconds) in zip(
                tokenized, self._parallel.complete(tokenized, grammar, max_tokens, on_done), strict=True):
            text = self._llm.detokenize(answer).decode("utf-8", errors="replace")
            out.append(Completion(text, len(prompt), len(answer), seconds, cut=not finished))
        return out

    def close(self) -> None:
        parallel, self._parallel = self._parallel, None
        if parallel is not None:
            parallel.close()
        llm: Any = self.__dict__.pop("_llm", None)  # gone after close: a second close is a no-op
        if llm is not None:
            llm.close()


def model_file(model_path: str | None) -> Path:
    """The GGUF file to load: the given path, or the bundled default, checked before llama.cpp sees it."""
    if model_path is None:
        entry = models.default_model("llm")
        path = models.resolve_model(entry.name)
        check_gguf(path)
        result = models.verify_entry(entry, path.parent)
        if not result.ok:
            raise ChecksumError(f"the bundled model {path} is damaged: {result.problem}; {_PREPARE_HINT}")
        return path
    path = Path(model_path).expanduser()
    check_gguf(path)
    return path


def check_gguf(path: Path) -> None:
    """ModelError unless ``path`` is a readable file that starts with the GGUF magic bytes."""
    if not path.is_file():
        raise ModelError(f"the language model file {path} does not exist; {_PREPARE_HINT}")
    try:
        with path.open("rb") as fh:
            magic = fh.read(len(GGUF_MAGIC))
    except OSError as exc:
        raise ModelError(f"cannot read the language model file {path}: {exc}") from exc
    if magic != GGUF_MAGIC:
        raise ModelError(f"{path} is not a GGUF file (it starts with {magic!r}, not {GGUF_MAGIC!r}); "
                         f"give a .gguf model in llm.config.model_path or {_PREPARE_HINT}")


_SILENT: list[Any] = []  # keeps the C callback alive for as long as llama.cpp may call it


def _silence_llama_cpp(llama_cpp: Any) -> None:
    """Drop llama.cpp's log lines (some are printed even with verbose=False).

    The log callback is process-wide; verbose=True in any config keeps the
    library's own logging, which was installed at import.
    """
    if _SILENT:
        return

    def _discard(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        return None

    callback = llama_cpp.llama_log_callback(_discard)
    _SILENT.append(callback)
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
