"""Embedder identity by content (#18.3): what a collection records, and what may reopen it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from localmem import ConfigError, Memory, MemoryConfig, SchemaMismatchError
from localmem.config import EmbedderConfig, VectorStoreConfig
from localmem.embedders import identity
from localmem.embedders.fake import HashingEmbedder
from localmem.embedders.select import resolve_source
from localmem.models import find_entry, resolve_model
from localmem.protocols import EmbedderIdentity
from localmem.vector_stores.milvus import MilvusStore

BUNDLED = identity.bundled_fingerprint()
assert BUNDLED is not None


def _bundled(normalized: bool = True, name: str = "all-MiniLM-L6-v2") -> EmbedderIdentity:
    return EmbedderIdentity(name, 384, normalized, BUNDLED or "")


def test_fingerprint_ignores_files_that_only_record_a_library_version() -> None:
    sums = {f.path: f.sha256 for f in find_entry("all-MiniLM-L6-v2").files}
    assert identity.fingerprint_from_sums(sums) == BUNDLED
    resaved = sums | {"config_sentence_transformers.json": "0" * 64, "tokenizer_config.json": "1" * 64}
    assert identity.fingerprint_from_sums(resaved) == BUNDLED
    assert identity.fingerprint_from_sums(sums | {"model.safetensors": "2" * 64}) != BUNDLED
    with pytest.raises(ValueError, match="no weights file"):
        identity.fingerprint_from_sums({"config.json": "0" * 64})


def test_compare_by_fingerprint_not_name() -> None:
    stored = _bundled().to_dict()
    # The bundled weights under another folder name: the same vectors, accepted.
    assert identity.compare(stored, _bundled(name="my-copy"), BUNDLED).ok
    other = EmbedderIdentity("all-MiniLM-L6-v2", 384, True, "sha256:" + "f" * 64)
    verdict = identity.compare(stored, other, BUNDLED)
    assert not verdict.ok and "not by 'all-MiniLM-L6-v2'" in verdict.problem


def test_compare_checks_normalisation() -> None:
    verdict = identity.compare(_bundled(normalized=False).to_dict(), _bundled(normalized=True), BUNDLED)
    assert not verdict.ok and "un-normalised" in verdict.problem


def test_legacy_records_are_accepted_by_the_bundled_weights_only_and_upgraded() -> None:
    legacy = {"name": "all-MiniLM-L6-v2", "dims": 384, "normalized": True}  # what localmem 0.1 wrote
    verdict = identity.compare(legacy, _bundled(name="renamed-folder"), BUNDLED)
    assert verdict.ok and verdict.upgrade
    impostor = EmbedderIdentity("all-MiniLM-L6-v2", 384, True, "sha256:" + "e" * 64)
    assert not identity.compare(legacy, impostor, BUNDLED).ok


def _store(path: Path, ident: EmbedderIdentity, **config: object) -> MilvusStore:
    return MilvusStore(VectorStoreConfig(uri=str(path), **config), ident)  # type: ignore[arg-type]


def test_same_folder_name_other_weights_is_refused_by_the_store(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    first = EmbedderIdentity("my-model", 64, True, "sha256:" + "a" * 64)
    _store(path, first).close()
    with pytest.raises(SchemaMismatchError, match="filled by embedder 'my-model'"):
        _store(path, EmbedderIdentity("my-model", 64, True, "sha256:" + "b" * 64))
    with pytest.raises(SchemaMismatchError, match="holds unit-length vectors"):
        _store(path, EmbedderIdentity("my-model", 64, False, first.fingerprint))
    # Same weights in a folder of another name: accepted.
    _store(path, EmbedderIdentity("renamed", 64, True, first.fingerprint)).close()


def test_a_collection_written_before_content_identities_opens_and_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "legacy.db"
    store = _store(path, _bundled())
    # Rewrite the record the way localmem 0.1 stored it: a name, no fingerprint.
    legacy = {"name": "all-MiniLM-L6-v2", "dims": 384, "normalized": True}
    store._client.alter_collection_properties(store._name, properties={"localmem.embedder": json.dumps(legacy)})
    store.close()
    reopened = _store(path, _bundled(name="copied-elsewhere"))
    props = reopened._client.describe_collection(reopened._name)["properties"]
    reopened.close()
    assert json.loads(props["localmem.embedder"])["fingerprint"] == BUNDLED
    with pytest.raises(SchemaMismatchError):  # now checked by content
        _store(path, EmbedderIdentity("all-MiniLM-L6-v2", 384, True, "sha256:" + "c" * 64))


def test_normalize_false_with_l2_or_ip_is_refused(tmp_path: Path) -> None:
    raw = HashingEmbedder(normalized=False)
    for metric in ("L2", "IP"):
        config = MemoryConfig(vector_store=VectorStoreConfig(uri=str(tmp_path / f"{metric}.db"), metric_type=metric))
        with pytest.raises(ConfigError, match="normalize is false"):
            Memory(config, embedder=raw)
    Memory(MemoryConfig(vector_store=VectorStoreConfig(uri=str(tmp_path / "cos.db"))), embedder=raw).close()


def test_normalize_module_makes_vectors_unit_length_whatever_the_flag() -> None:
    # The bundled model's module list ends in Normalize: normalize: false still yields unit vectors,
    # so its identity says normalized and L2/IP thresholds keep their meaning.
    source = resolve_source(EmbedderConfig(normalize=False))
    assert source.normalize_module


@pytest.mark.slow
def test_the_bundled_model_in_another_folder_has_the_bundled_identity(tmp_path: Path) -> None:
    original = resolve_model("all-MiniLM-L6-v2")
    copy = tmp_path / "some-other-name"
    for file in original.rglob("*"):
        if file.is_file():
            target = copy / file.relative_to(original)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(file, target)
    source = resolve_source(EmbedderConfig(model=str(copy)))
    assert source.fingerprint == BUNDLED and source.name == "some-other-name"
    (copy / "config.json").unlink()
    (copy / "config.json").write_text((original / "config.json").read_text().replace("384", "385"))
    assert resolve_source(EmbedderConfig(model=str(copy))).fingerprint != BUNDLED
