"""The ONNX Runtime embedder (#13): prepared from the packaged weights, equal to torch, chosen on a CPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from localmem import LocalmemWarning, ModelError
from localmem.config import EmbedderConfig
from localmem.embedders import prepared
from localmem.embedders.export import prepare_onnx
from localmem.embedders.onnx import OnnxEmbedder
from localmem.embedders.prepared import verify_onnx
from localmem.embedders.select import build_embedder, find_export, resolve_source, wants_torch
from localmem.embedders.sentence_transformers import SentenceTransformerEmbedder
from localmem.models import MODELS_DIR_ENV, find_entry, models_dir, resolve_model

from .conftest import plain

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["I love hiking in the Alps with my dog.", "What is my sister's name?", "ok",
         "Caroline went to the LGBTQ support group on 7 May 2023.", " ".join(["long"] * 400)]


@pytest.fixture(scope="session")
def onnx_models() -> Iterator[Path]:
    """A models folder holding a verified ONNX export: the configured one if prepared, else one made here."""
    entry = find_entry("all-MiniLM-L6-v2")
    if all(v.ok for v in verify_onnx(entry)):
        yield models_dir()
        return
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.symlink(resolve_model("all-MiniLM-L6-v2"), folder / "all-MiniLM-L6-v2")
        prepare_onnx(entry, folder)  # ~20 s of CPU: torch export, check, int8 quantisation
        yield folder


@pytest.fixture
def use_models(onnx_models: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(MODELS_DIR_ENV, str(onnx_models))
    return onnx_models


def _copy_of(models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A models folder of its own (the weights linked, the export copied), made the one in use."""
    copy = tmp_path / "models"
    copy.mkdir()
    (copy / "all-MiniLM-L6-v2").symlink_to((models / "all-MiniLM-L6-v2").resolve())
    shutil.copytree(prepared.export_dir(models, "all-MiniLM-L6-v2"), prepared.export_dir(copy, "all-MiniLM-L6-v2"))
    monkeypatch.setenv(MODELS_DIR_ENV, str(copy))
    return copy


@pytest.mark.slow
def test_onnx_vectors_equal_torch_and_share_its_identity(use_models: Path,
                                                         real_embedder: SentenceTransformerEmbedder) -> None:
    onnx = build_embedder(EmbedderConfig(backend="onnx"))
    assert isinstance(onnx, OnnxEmbedder)
    got, want = onnx.embed(TEXTS), real_embedder.embed(TEXTS)
    assert got.shape == want.shape == (len(TEXTS), 384) and got.dtype == np.float32
    assert float(np.min(np.sum(got * want, axis=1))) >= 0.9999
    assert onnx.identity == real_embedder.identity
    assert onnx.embed([]).shape == (0, 384)
    int8 = build_embedder(EmbedderConfig(backend="onnx-int8"))
    assert float(np.min(np.sum(int8.embed(TEXTS) * want, axis=1))) >= 0.95
    # Close, not equal: int8 is another identity, so a store never mixes its vectors with these.
    assert int8.identity.fingerprint != onnx.identity.fingerprint


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_a_texts_vector_does_not_depend_on_the_texts_embedded_with_it(use_models: Path, backend: str) -> None:
    # int8 computes its activation scales over a whole run: texts sharing a run would move each other.
    embedder = build_embedder(EmbedderConfig(backend=backend))
    together = embedder.embed(TEXTS + ["a"] * 5)[:len(TEXTS)]
    alone = np.stack([embedder.embed([text])[0] for text in TEXTS])
    assert float(np.min(np.sum(together * alone, axis=1))) >= 0.99999
    embedder.close()
    # An explicit batch size still shares runs (the knob is kept for who wants it): close, not equal.
    batched = build_embedder(EmbedderConfig(backend=backend, batch_size=16)).embed(TEXTS)
    assert float(np.min(np.sum(batched * alone, axis=1))) >= 0.95


@pytest.mark.slow
def test_auto_opens_a_store_with_the_precision_that_filled_it(use_models: Path, tmp_path: Path,
                                                              real_embedder: SentenceTransformerEmbedder,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from localmem import Memory, MemoryConfig, SchemaMismatchError
    from localmem.config import VectorStoreConfig
    from localmem.embedders import select

    def config(name: str, backend: str = "auto") -> MemoryConfig:
        return MemoryConfig(vector_store=VectorStoreConfig(uri=str(tmp_path / name)),
                            embedder=EmbedderConfig(backend=backend))

    with Memory(config("new.db")) as memory:  # a new store: fp32, torch's vectors
        assert memory.embedder.identity == real_embedder.identity
    with Memory(config("int8.db", "onnx-int8")) as memory:  # an application that opted into int8
        memory.add("Alice adopted a grey cat named Miso", user_id="alice", infer=False)
        int8 = memory.embedder.identity
    assert int8.fingerprint == real_embedder.identity.fingerprint + "+int8"
    with Memory(config("int8.db")) as memory:  # `localmem search` on it: auto follows the store
        assert memory.embedder.identity == int8
        assert plain(memory.search("what pet does Alice have?", user_id="alice")["results"][0]["memory"]) == \
            "Alice adopted a grey cat named Miso"
    # The other way, were int8 the default: a store of fp32 vectors (torch's here) keeps fp32.
    monkeypatch.setattr(select, "DEFAULT_ONNX_VARIANT", "int8")
    with Memory(config("torch.db"), embedder=real_embedder) as memory:
        memory.add("Alice works night shifts at the hospital", user_id="alice", infer=False)
    with Memory(config("torch.db")) as memory:
        assert isinstance(memory.embedder, OnnxEmbedder) and memory.embedder.identity == real_embedder.identity
        assert memory.search("where does Alice work?", user_id="alice")["results"]
    # A named path is never swapped: int8 vectors are refused by the fp32 store.
    with pytest.raises(SchemaMismatchError, match="not comparable"):
        Memory(config("torch.db", "onnx-int8"))


def test_only_auto_with_the_bundled_model_has_alternatives(use_models: Path) -> None:
    from localmem.embedders.select import alternatives

    fp32 = build_embedder(EmbedderConfig(backend="onnx")).identity
    [int8] = alternatives(EmbedderConfig(), fp32)
    assert int8.fingerprint == fp32.fingerprint + "+int8" and int8.dims == fp32.dims
    assert alternatives(EmbedderConfig(), int8) == (fp32,)
    assert alternatives(EmbedderConfig(backend="onnx"), fp32) == ()
    assert alternatives(EmbedderConfig(model=str(resolve_model("all-MiniLM-L6-v2"))), fp32) == ()


@pytest.mark.slow
def test_an_int8_export_of_an_older_recipe_is_not_used(use_models: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    folder = prepared.export_dir(_copy_of(use_models, tmp_path, monkeypatch), "all-MiniLM-L6-v2")
    record = json.loads((folder / prepared.RECORD).read_text())
    record["made_with"]["int8"] = "8-bit weights, embeddings too"
    (folder / prepared.RECORD).write_text(json.dumps(record))
    assert "older recipe" in str(find_export(resolve_source(EmbedderConfig()), "int8"))
    with pytest.raises(ModelError, match=r"older recipe.*models prepare"):
        build_embedder(EmbedderConfig(backend="onnx-int8"))
    assert isinstance(build_embedder(EmbedderConfig(backend="onnx")), OnnxEmbedder)  # fp32 is not concerned


@pytest.mark.slow
def test_prepare_records_each_export_with_its_sha256(use_models: Path) -> None:
    record = prepared.read(prepared.export_dir(use_models, "all-MiniLM-L6-v2"))
    assert record is not None and {f.variant for f in record.files} == {"fp32", "int8"}
    assert record.source_fingerprint == resolve_source(EmbedderConfig()).fingerprint
    assert record.file("fp32").min_cosine_vs_torch >= 0.9999  # type: ignore[union-attr]
    assert all(v.ok for v in verify_onnx(find_entry("all-MiniLM-L6-v2"), use_models))


@pytest.mark.slow
def test_a_damaged_export_fails_verify_and_auto_falls_back_to_torch(use_models: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    copy = _copy_of(use_models, tmp_path, monkeypatch)
    target = prepared.export_dir(copy, "all-MiniLM-L6-v2") / "model.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    target.write_bytes(bytes(data))
    results = {v.name: v for v in verify_onnx(find_entry("all-MiniLM-L6-v2"), copy)}
    damaged = results["all-MiniLM-L6-v2 (onnx fp32)"]
    assert not damaged.ok and "sha256" in damaged.problem
    assert results["all-MiniLM-L6-v2 (onnx int8)"].ok
    assert isinstance(find_export(resolve_source(EmbedderConfig()), "fp32"), str)
    with pytest.warns(LocalmemWarning, match="not using the ONNX fp32 export"):
        fallback = build_embedder(EmbedderConfig(device="cpu"))
    assert isinstance(fallback, SentenceTransformerEmbedder)
    with pytest.raises(ModelError, match="models prepare"):
        build_embedder(EmbedderConfig(backend="onnx"))
    assert isinstance(build_embedder(EmbedderConfig(backend="onnx-int8")), OnnxEmbedder)  # untouched


def test_without_an_export_auto_uses_torch_and_onnx_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "all-MiniLM-L6-v2").symlink_to(resolve_model("all-MiniLM-L6-v2"))
    monkeypatch.setenv(MODELS_DIR_ENV, str(folder))
    assert find_export(resolve_source(EmbedderConfig()), "fp32") == ""
    with pytest.raises(ModelError, match="no ONNX export is prepared"):
        build_embedder(EmbedderConfig(backend="onnx"))
    [missing] = verify_onnx(find_entry("all-MiniLM-L6-v2"), folder)
    assert not missing.ok and "models prepare" in missing.problem


def test_onnx_backend_refuses_an_accelerator_device() -> None:
    from localmem import ConfigError

    with pytest.raises(ConfigError, match="runs on the CPU only"):
        build_embedder(EmbedderConfig(backend="onnx", device="cuda"))
    with pytest.raises(ConfigError, match="backend must be one of"):
        build_embedder(EmbedderConfig(backend="tensorflow"))


def test_accelerator_detection_agrees_with_torch_without_importing_it() -> None:
    code = textwrap.dedent("""
        import sys
        from localmem.embedders.select import wants_torch
        decided = wants_torch("auto")
        imported = "torch" in sys.modules
        import torch
        mps = getattr(torch.backends, "mps", None)
        has = torch.cuda.is_available() or bool(mps is not None and mps.is_available())
        print(decided, has, imported)
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    decided, has, imported = out.stdout.split()
    assert decided == has, out.stderr
    if has == "False":
        assert imported == "False"  # a CPU build is known from its version file alone
    assert wants_torch("cuda") and not wants_torch("cpu")


@pytest.mark.slow
def test_a_cpu_memory_and_cli_search_never_import_torch(use_models: Path, tmp_path: Path) -> None:
    if wants_torch("auto"):
        pytest.skip("this machine has an accelerator: torch is the right path here")
    code = textwrap.dedent(f"""
        import sys, warnings
        warnings.simplefilter("error")
        from localmem import Memory, MemoryConfig
        from localmem.cli.main import main
        from localmem.config import VectorStoreConfig
        with Memory(MemoryConfig(vector_store=VectorStoreConfig(uri={str(tmp_path / 'm.db')!r}))) as m:
            m.add("I keep bees on the roof", user_id="u", infer=False)
            kind = type(m.embedder).__name__
            top = m.search("insects", user_id="u")["results"][0]["memory"]
        code = main(["search", "bees", "--user", "u", "--db", {str(tmp_path / 'm.db')!r}, "--json"])
        print(kind, top.endswith(") I keep bees on the roof"), code, "torch" in sys.modules)
    """)
    env = os.environ | {MODELS_DIR_ENV: str(use_models)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.stdout.split()[-4:] == ["OnnxEmbedder", "True", "0", "False"], out.stderr[-2000:]


@pytest.mark.slow
def test_a_store_filled_on_torch_opens_and_searches_on_onnx(use_models: Path, tmp_path: Path,
                                                            real_embedder: SentenceTransformerEmbedder) -> None:
    from localmem import Memory, MemoryConfig
    from localmem.config import VectorStoreConfig

    config = MemoryConfig(vector_store=VectorStoreConfig(uri=str(tmp_path / "shared.db")))
    with Memory(config, embedder=real_embedder) as memory:
        memory.add([{"role": "user", "content": "Alice adopted a grey cat named Miso"},
                    {"role": "user", "content": "Alice works night shifts at the hospital"}], user_id="alice",
                   infer=False)
    onnx = build_embedder(EmbedderConfig(backend="onnx"))
    with Memory(config, embedder=onnx) as memory:
        hits = memory.search("what pet does Alice have?", user_id="alice")["results"]
    assert plain(hits[0]["memory"]) == "Alice adopted a grey cat named Miso"


def test_prepared_record_rejects_an_unknown_format(tmp_path: Path) -> None:
    (tmp_path / prepared.RECORD).write_text(json.dumps({"format": 99}))
    with pytest.raises(ModelError, match="format 99"):
        prepared.read(tmp_path)
    assert prepared.read(tmp_path / "absent") is None

