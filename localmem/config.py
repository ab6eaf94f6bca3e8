"""Typed, frozen configuration, and the mapping from Mem0's familiar dict shape.

``MemoryConfig.from_dict`` accepts the dict a Mem0 user already has
(``{"vector_store": {"provider": "milvus", "config": {...}}, ...}``), rejects
unknown keys and hosted providers with a message that says what to use instead,
and never touches the network or a file.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from localmem.errors import ConfigError, LocalmemWarning

Metric = Literal["COSINE", "L2", "IP"]
IndexType = Literal["AUTOINDEX", "FLAT", "HNSW", "IVF_FLAT"]
OnExtractionFailure = Literal["raise", "store_raw"]
FusionMethod = Literal["rrf", "weighted"]

DEFAULT_DB_PATH = "./localmem.db"
DEFAULT_COLLECTION = "localmem"
# Mem0's response format version; the only one localmem produces.
SUPPORTED_VERSION = "v1.1"

_METRICS = ("COSINE", "L2", "IP")
_INDEX_TYPES = ("AUTOINDEX", "FLAT", "HNSW", "IVF_FLAT")
_FUSIONS = ("rrf", "weighted")
# Each fused list's rows come back with their fields: deeper costs time for nothing a top 100 needs.
_MAX_FUSION_DEPTH = 1000
_HOSTED = {"openai", "azure_openai", "anthropic", "gemini", "groq", "together", "ollama", "vertexai",
           "lmstudio", "deepseek", "xai", "litellm", "aws_bedrock", "mistral", "vllm", "langchain"}


@dataclass(frozen=True)
class VectorStoreConfig:
    """Milvus, as a Lite file (a path) or a server (``http(s)://`` uri, optional token)."""

    uri: str = DEFAULT_DB_PATH
    token: str = ""
    db_name: str = ""
    collection_name: str = DEFAULT_COLLECTION
    metric_type: Metric = "COSINE"
    # None: FLAT on a Milvus Lite file, AUTOINDEX on a server (see MilvusStore.index_type).
    index_type: IndexType | None = None
    # What the user asked for; the embedder's real size wins (see Memory).
    embedding_model_dims: int | None = None
    # Search: BM25 word matches fused with the dense ones where the store runs BM25 (false: dense
    # only), by reciprocal rank (k ``rrf_k``) or weighted scores, from each list's best
    # ``fusion_depth`` rows. The defaults were chosen on LoCoMo dev data (retrieval/fusion.py).
    hybrid: bool = True
    fusion: FusionMethod = "rrf"
    rrf_k: int = 5
    fusion_depth: int = 40
    # On a Milvus Lite file: memories of the scopes searched kept in memory to answer their
    # searches, filtered or not (retrieval/scopes.py), at most this many in all (~4 KB each); 0: none.
    cache_rows: int = 50_000

    @property
    def is_local_file(self) -> bool:
        return not self.uri.startswith(("http://", "https://", "tcp://", "unix:"))


@dataclass(frozen=True)
class EmbedderConfig:
    """A sentence-transformers model from a local folder; None means the bundled default."""

    model: str | None = None
    device: str = "auto"
    # auto: torch on CUDA/MPS, else the prepared ONNX export, else torch (embedders/select.py).
    backend: str = "auto"
    # Texts per model call; None: the path's own best. On the ONNX CPU path that is one text per run,
    # a run per core side by side (embedders/onnx.py: faster than shared batches on 2 cores, and a
    # text's vector does not depend on its neighbours); torch (CUDA/MPS) takes 64 a call.
    batch_size: int | None = None
    normalize: bool = True
    # Like vector_store.embedding_model_dims: a mismatch with the model's real size warns (see Memory).
    embedding_dims: int | None = None


@dataclass(frozen=True)
class LlmConfig:
    """A GGUF model run in-process by llama.cpp; None means the bundled Gemma 3 270M."""

    model_path: str | None = None
    n_ctx: int = 2048
    n_gpu_layers: int = -1  # -1: offload everything when the build has a GPU backend
    n_threads: int | None = None
    n_batch: int = 512
    temperature: float = 0.0
    max_tokens: int = 256
    seed: int = 0
    verbose: bool = False


@dataclass(frozen=True)
class MemoryConfig:
    vector_store: VectorStoreConfig = field(default_factory=VectorStoreConfig)
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    llm: LlmConfig = field(default_factory=LlmConfig)
    # None: an SQLite file beside the Milvus Lite folder, one per collection; for a server uri, a
    # "<collection>_history" collection on the server (localmem/history/milvus.py). A path: SQLite there.
    history_db_path: str | None = None
    custom_fact_extraction_prompt: str | None = None
    custom_update_memory_prompt: str | None = None
    on_extraction_failure: OnExtractionFailure = "raise"
    # With infer=True: whether the LLM extracts facts. False keeps what rules derive (contexts,
    # localmem/context.py) and never loads the model: ~80 ms an add instead of ~0.7 s (LoCoMo turns, p50).
    extract_facts: bool = True
    # With infer=True: add() returns once the messages are stored (findable) and their facts are drawn
    # by a background thread from a queue kept in the history database, so a crash loses none
    # (localmem/background.py); Memory.wait_for_extraction() waits for them. Needs an SQLite history.
    background_extraction: bool = False
    # Memories at least this similar (cosine) to a new fact are candidates for reconciliation.
    similarity_candidates: int = 5
    near_duplicate_threshold: float = 0.92
    # Drop the scope's own ids ("alice", "Alice's") from search queries: see localmem/query.py.
    strip_scope_from_query: bool = True
    # Mem0's response format: only "v1.1" exists here; another value is accepted with a warning.
    version: str = SUPPORTED_VERSION

    def resolved_history_path(self) -> Path:
        if self.history_db_path:
            return Path(self.history_db_path)
        vs = self.vector_store
        # One history database per collection: reset() and export read "all history", and
        # two collections in one Milvus file must not share (or wipe) each other's.
        if vs.is_local_file:
            db = Path(vs.uri)
            return db.with_name(f"{db.name}.{vs.collection_name}.history.sqlite")
        return Path(f"localmem_history.{vs.collection_name}.sqlite")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MemoryConfig:
        """Map Mem0's config dict onto typed config; raise ConfigError on anything unknown."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"config must be a dict, got {type(data).__name__}")
        top = dict(data)
        _reject_unknown("config", top, {
            "vector_store", "embedder", "llm", "history_db_path", "version",
            "custom_fact_extraction_prompt", "custom_update_memory_prompt", "custom_prompt",
            "on_extraction_failure", "similarity_candidates", "near_duplicate_threshold", "graph_store",
            "strip_scope_from_query", "extract_facts", "background_extraction",
        })
        if top.get("graph_store"):
            raise ConfigError("graph_store is not supported by localmem; remove it (relations are always [])")
        vs_cfg = _section(top, "vector_store", {"milvus"})
        if "url" in vs_cfg and "uri" in vs_cfg:
            raise ConfigError("vector_store.config has both 'url' and 'uri'; give one")
        if "url" in vs_cfg:
            vs_cfg["uri"] = vs_cfg.pop("url")
        emb_cfg = _section(top, "embedder", {"sentence_transformers", "huggingface"})
        if "model" in emb_cfg and "model_path" in emb_cfg:
            raise ConfigError("embedder.config has both 'model' and 'model_path'; give one")
        if "model_path" in emb_cfg:
            emb_cfg["model"] = emb_cfg.pop("model_path")
        llm_cfg = _section(top, "llm", {"llama_cpp"})
        extraction_prompt = top.get("custom_fact_extraction_prompt", top.get("custom_prompt"))
        kwargs: dict[str, Any] = {
            "vector_store": _build(VectorStoreConfig, "vector_store.config", vs_cfg),
            "embedder": _build(EmbedderConfig, "embedder.config", emb_cfg),
            "llm": _build(LlmConfig, "llm.config", llm_cfg),
        }
        types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
        if extraction_prompt is not None:
            key = "custom_fact_extraction_prompt" if "custom_fact_extraction_prompt" in top else "custom_prompt"
            kwargs["custom_fact_extraction_prompt"] = _coerce("config", key, types["custom_fact_extraction_prompt"],
                                                              extraction_prompt)
        for key in ("history_db_path", "custom_update_memory_prompt", "on_extraction_failure",
                    "similarity_candidates", "near_duplicate_threshold", "strip_scope_from_query", "extract_facts",
                    "background_extraction", "version"):
            if key in top and top[key] is not None:
                kwargs[key] = _coerce("config", key, types[key], top[key])
        if kwargs.get("version", SUPPORTED_VERSION) != SUPPORTED_VERSION:
            warnings.warn(f"config version={kwargs['version']!r} is ignored: localmem always returns Mem0's "
                          f"{SUPPORTED_VERSION} shapes ({{'results': [...]}}); set version to {SUPPORTED_VERSION!r} "
                          "or remove it to silence this warning", LocalmemWarning, stacklevel=2)
        cfg = cls(**kwargs)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        vs = self.vector_store
        if vs.metric_type not in _METRICS:
            raise ConfigError(f"vector_store.config.metric_type must be one of {_METRICS}, got {vs.metric_type!r}")
        if vs.index_type is not None and vs.index_type not in _INDEX_TYPES:
            raise ConfigError(f"vector_store.config.index_type must be one of {_INDEX_TYPES}, got {vs.index_type!r}")
        if not vs.collection_name.replace("_", "").isalnum() or vs.collection_name[0].isdigit():
            raise ConfigError(
                f"vector_store.config.collection_name {vs.collection_name!r} must be letters, digits and "
                "underscores, not starting with a digit (a Milvus rule)")
        if not vs.uri:
            raise ConfigError("vector_store.config.url is empty: give a file path or an http(s):// uri")
        if vs.fusion not in _FUSIONS:
            raise ConfigError(f"vector_store.config.fusion must be one of {_FUSIONS}, got {vs.fusion!r}")
        if vs.cache_rows < 0:
            raise ConfigError(f"vector_store.config.cache_rows must be 0 or more, got {vs.cache_rows}")
        if vs.rrf_k < 1:
            raise ConfigError(f"vector_store.config.rrf_k must be at least 1, got {vs.rrf_k}")
        if not 1 <= vs.fusion_depth <= _MAX_FUSION_DEPTH:
            raise ConfigError(f"vector_store.config.fusion_depth must be in 1..{_MAX_FUSION_DEPTH}, "
                              f"got {vs.fusion_depth}")
        if self.on_extraction_failure not in ("raise", "store_raw"):
            raise ConfigError("on_extraction_failure must be 'raise' or 'store_raw', "
                              f"got {self.on_extraction_failure!r}")
        if not 0.0 < self.near_duplicate_threshold <= 1.0:
            raise ConfigError("near_duplicate_threshold must be in (0, 1]")
        if self.similarity_candidates < 1:
            raise ConfigError("similarity_candidates must be at least 1")
        if self.llm.n_ctx < 256:
            raise ConfigError(f"llm.config.n_ctx={self.llm.n_ctx} is too small; use at least 256")
        if self.embedder.batch_size is not None and self.embedder.batch_size < 1:
            raise ConfigError("embedder.config.batch_size must be at least 1")


def _reject_unknown(where: str, given: Mapping[str, Any], allowed: set[str]) -> None:
    for key in given:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(f"unknown key {key!r} in {where}{did_you_mean}; allowed: {sorted(allowed)}")


def _section(top: Mapping[str, Any], name: str, providers: set[str]) -> dict[str, Any]:
    section = top.get(name)
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"{name} must be a dict with 'provider' and 'config'")
    _reject_unknown(name, section, {"provider", "config"})
    provider = section.get("provider", next(iter(sorted(providers))))
    if provider not in providers:
        why = " (a hosted service: localmem runs offline)" if provider in _HOSTED else ""
        raise ConfigError(f"{name}.provider {provider!r} is not supported{why}; use one of {sorted(providers)}")
    cfg = section.get("config") or {}
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{name}.config must be a dict")
    return dict(cfg)


_T = TypeVar("_T")


def _build(cls: type[_T], where: str, values: dict[str, Any]) -> _T:
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    _reject_unknown(where, values, set(fields))
    coerced: dict[str, Any] = {}
    for key, value in values.items():
        coerced[key] = _coerce(where, key, str(fields[key].type), value)
    return cls(**coerced)


def _coerce(where: str, key: str, annotation: str, value: Any) -> Any:
    """Accept what Mem0 users write (``"1536"`` for dims, ``"cosine"``, ``"0.9"``, ``"false"``); refuse the rest.

    Nothing is guessed: a float with a fraction is not an int, and only the words
    true/false are booleans (``bool("false")`` would be True).
    """
    if value is None and "None" in annotation:
        return None
    try:
        if annotation.startswith("int"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if annotation.startswith("float"):
            if isinstance(value, bool):
                raise TypeError
            number = float(value)
            if not math.isfinite(number):
                raise ValueError
            return number
        if annotation == "bool":
            if isinstance(value, str) and value.strip().lower() in ("true", "false"):
                return value.strip().lower() == "true"
            if not isinstance(value, bool):
                raise TypeError
            return value
        if annotation in ("Metric", "IndexType"):
            return str(value).upper()
        if annotation == "FusionMethod":
            return str(value).lower()
        if annotation.startswith("str") or annotation.startswith("OnExtractionFailure"):
            if not isinstance(value, str | Path):
                raise TypeError
            return str(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{where}.{key} has the wrong type: {value!r} is not {annotation}") from None
    return value
