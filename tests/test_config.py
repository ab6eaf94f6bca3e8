import pytest

from localmem import ConfigError, MemoryConfig


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
        ("not a dict", "dict"),
    ],
)
def test_bad_config_names_the_problem(config: object, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        MemoryConfig.from_dict(config)  # type: ignore[arg-type]
