import warnings
from pathlib import Path

import pytest

from localmem import ConfigError, LocalmemWarning, Memory, MemoryConfig
from localmem.config import EmbedderConfig, VectorStoreConfig
from localmem.embedders.fake import HashingEmbedder


def test_mem0_quickstart_dict_maps_onto_typed_config() -> None:
    cfg = MemoryConfig.from_dict({
        "vector_store": {"provider": "milvus", "config": {
            "collection_name": "quickstart_mem0_with_milvus", "embedding_model_dims": "1536",
            "url": "./milvus.db", "metric_type": "l2"}},
        "version": "v1.1",
    })
    assert cfg.vector_store.uri == "./milvus.db"
    assert cfg.vector_store.embedding_model_dims == 1536
    assert cfg.vector_store.metric_type == "L2"
    # one history database per collection (the default collection here), beside the Milvus file
    assert str(cfg.resolved_history_path()).endswith(f"milvus.db.{cfg.vector_store.collection_name}.history.sqlite")


def test_server_uri_keeps_history_local() -> None:
    cfg = MemoryConfig.from_dict({"vector_store": {"config": {"uri": "http://localhost:19530", "token": "t"}}})
    assert not cfg.vector_store.is_local_file
    assert cfg.resolved_history_path().name == f"localmem_history.{cfg.vector_store.collection_name}.sqlite"


def test_llm_and_embedder_sections() -> None:
    cfg = MemoryConfig.from_dict({
        "embedder": {"provider": "huggingface", "config": {"model": "/m", "device": "cpu"}},
        "llm": {"provider": "llama_cpp", "config": {"model_path": "/x.gguf", "n_ctx": "4096", "temperature": 0}},
        "on_extraction_failure": "store_raw",
    })
    assert cfg.embedder.model == "/m"
    assert cfg.llm.n_ctx == 4096 and cfg.llm.temperature == 0.0
    assert cfg.on_extraction_failure == "store_raw"


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"vector_stor": {}}, "did you mean 'vector_store'"),
        ({"vector_store": {"provider": "qdrant"}}, "qdrant"),
        ({"llm": {"provider": "openai", "config": {}}}, "hosted"),
        ({"vector_store": {"config": {"colection_name": "x"}}}, "colection_name"),
        ({"vector_store": {"config": {"metric_type": "hamming"}}}, "metric_type"),
        ({"vector_store": {"config": {"embedding_model_dims": "many"}}}, "embedding_model_dims"),
        ({"vector_store": {"config": {"collection_name": "bad-name"}}}, "collection_name"),
        ({"vector_store": {"config": {"url": "a", "uri": "b"}}}, "both"),
        ({"graph_store": {"provider": "neo4j"}}, "graph_store"),
        ({"llm": {"config": {"n_ctx": 16}}}, "n_ctx"),
        ({"on_extraction_failure": "ignore"}, "on_extraction_failure"),
        ({"vector_store": {"config": {"fusion": "max"}}}, "fusion must be one of"),
        ({"vector_store": {"config": {"rrf_k": 0}}}, "rrf_k must be at least 1"),
        ({"vector_store": {"config": {"fusion_depth": 5000}}}, "fusion_depth must be in"),
        ({"vector_store": {"config": {"hybrid": "sometimes"}}}, r"vector_store\.config\.hybrid"),
        ("not a dict", "dict"),
    ],
)
def test_bad_config_names_the_problem(config: object, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        MemoryConfig.from_dict(config)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("near_duplicate_threshold", "0.9", 0.9),
        ("near_duplicate_threshold", 1, 1.0),
        ("similarity_candidates", "7", 7),
        ("strip_scope_from_query", "false", False),
        ("strip_scope_from_query", "True", True),
        ("strip_scope_from_query", False, False),
        ("history_db_path", "h.sqlite", "h.sqlite"),
        ("custom_prompt", "Extract facts.", "Extract facts."),
    ],
)
def test_top_level_values_are_coerced_like_nested_ones(key: str, value: object, expected: object) -> None:
    cfg = MemoryConfig.from_dict({key: value})
    field = "custom_fact_extraction_prompt" if key == "custom_prompt" else key
    got = getattr(cfg, field)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("near_duplicate_threshold", "high"),
        ("near_duplicate_threshold", True),
        ("near_duplicate_threshold", "nan"),
        ("similarity_candidates", 2.5),
        ("similarity_candidates", True),
        ("strip_scope_from_query", "no"),
        ("strip_scope_from_query", 0),
        ("history_db_path", 5),
        ("on_extraction_failure", ["raise"]),
        ("version", 1.1),
    ],
)
def test_top_level_values_of_the_wrong_type_are_refused_by_name(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"config.{key} has the wrong type"):
        MemoryConfig.from_dict({key: value})


def test_search_settings_are_read_and_coerced() -> None:
    vs = MemoryConfig.from_dict({"vector_store": {"config": {
        "hybrid": "false", "fusion": "Weighted", "rrf_k": "60", "fusion_depth": 30}}}).vector_store
    assert (vs.hybrid, vs.fusion, vs.rrf_k, vs.fusion_depth) == (False, "weighted", 60, 30)
    default = MemoryConfig.from_dict({}).vector_store
    assert (default.hybrid, default.fusion, default.rrf_k, default.fusion_depth) == (True, "rrf", 5, 40)


def test_nested_booleans_accept_only_true_and_false() -> None:
    assert MemoryConfig.from_dict({"llm": {"config": {"verbose": "false"}}}).llm.verbose is False
    with pytest.raises(ConfigError, match=r"llm\.config\.verbose"):
        MemoryConfig.from_dict({"llm": {"config": {"verbose": "off"}}})
    with pytest.raises(ConfigError, match=r"llm\.config\.n_ctx"):
        MemoryConfig.from_dict({"llm": {"config": {"n_ctx": 4096.5}}})


def test_a_version_other_than_v1_1_is_accepted_with_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert MemoryConfig.from_dict({"version": "v1.1"}).version == "v1.1"
    with pytest.warns(LocalmemWarning, match="version='v1.0' is ignored"):
        MemoryConfig.from_dict({"version": "v1.0"})


def test_embedder_embedding_dims_is_read_and_a_mismatch_warns(tmp_path: Path) -> None:
    def build(dims: int) -> Memory:
        config = MemoryConfig(vector_store=VectorStoreConfig(uri=str(tmp_path / "m.db")),
                              embedder=EmbedderConfig(embedding_dims=dims))
        return Memory(config, embedder=HashingEmbedder(dims=64))

    with pytest.warns(LocalmemWarning, match=r"embedder\.config\.embedding_dims=999 does not match"):
        build(999).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build(64).close()
