"""Smoke test of the benchmark suite: the quick path on tiny sizes, outputs present and sane."""

from __future__ import annotations

import json
import math

import pytest

from localmem.bench import data, metrics
from localmem.bench.run import Options, parse, run_suite

pytestmark = pytest.mark.slow


def test_evidence_ids_are_normalised():
    assert data.normalise_evidence(["D8:6; D9:17", "D:11:26", "D"]) == {"D8:6", "D9:17", "D11:26"}


def test_expansion_is_deterministic_and_prefix_stable():
    small, users_small = data.latency_corpus(50, seed=3)
    big, _ = data.latency_corpus(6000, seed=3)  # past the real text: synthetic combinations
    assert big[:50] == small
    assert len(set(big)) == len(big)
    assert data.latency_corpus(50, seed=3) == (small, users_small)
    assert data.latency_corpus(50, seed=4)[0] != small


def test_ndcg_and_recall():
    assert metrics.ndcg_at(["a", "b"], {"a": 1}, 10) == pytest.approx(1.0)
    assert metrics.ndcg_at(["b", "a"], {"a": 1}, 10) == pytest.approx(1 / math.log2(3))
    assert metrics.recall_at([{"x"}, {"y", "z"}], {"z", "w"}, 2) == 0.5
    assert metrics.hit_at([{"x"}, {"z"}], {"z"}, 1) == 0.0


def test_cli_defaults():
    quick = parse(["--quick", "--sizes", "200", "--seed", "7"])
    assert quick.quick and quick.sizes == (200,) and quick.seed == 7
    assert quick.out.name.startswith("localmem-bench-quick-") and not quick.out.is_absolute()
    full = parse(["--threads", "1"])
    assert full.sizes == (1_000, 10_000, 100_000) and full.threads == 1 and not full.quick


def test_quick_suite_end_to_end(tmp_path, monkeypatch):
    # A private embedding cache: the test must not depend on (or fill) the user's.
    monkeypatch.setenv("LOCALMEM_BENCH_CACHE", str(tmp_path / "cache"))
    options = Options.for_mode(
        True, out=tmp_path / "out", sizes=(200,), queries=12, repeats=1, warmup=2, scifact_queries=15,
        scifact_docs=120, scoring_questions=15, scoring_conversations=1, ingest_single=5, ingest_batched=40,
        retrieval_conversations=1, retrieval_questions=12, extraction_conversations=1, extraction_turns=2,
        infer_questions=1)
    results = run_suite(options)

    out = tmp_path / "out"
    assert json.loads((out / "results.json").read_text())["seed"] == results["seed"]
    report = (out / "report.md").read_text()
    for heading in ("Search latency", "L2 vs cosine", "Ingestion", "Full-product retrieval"):
        assert heading in report
    for png in ("latency_vs_n.png", "scores_scifact.png", "scores_locomo.png", "recall_at_k.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert f"]({png})" in report

    env = results["environment"]
    assert env["embedder_device"] in ("cpu", "cuda", "mps") and env["packages"]["pymilvus"]

    size = results["latency"]["sizes"]["200"]
    assert size["floor"]["unfiltered"]["scan"]["p50_ms"] > 0
    for index in ("FLAT", "HNSW", "IVF_FLAT", "AUTOINDEX"):
        entry = size["indexes"][index]
        for mode in ("unfiltered", "filtered"):
            assert 0 < entry[mode]["store"]["p50_ms"] < 10_000
            assert entry[mode]["total"]["p50_ms"] >= entry[mode]["store"]["p50_ms"]
            assert entry[mode]["ratio_total_to_floor"]["p50_ms"] > 0.5
            assert 0.0 <= entry[mode]["recall_at_10_vs_exact"] <= 1.0
    assert size["indexes"]["FLAT"]["unfiltered"]["recall_at_10_vs_exact"] == pytest.approx(1.0)

    scoring = results["scoring"]
    assert scoring["normalize_module_stripped"] is True
    assert scoring["normalise_matches_default_max_abs_diff"] < 1e-5
    scifact = scoring["datasets"]["scifact"]["variants"]
    # Unit vectors: the three metrics rank identically, and the L2 score equals the cosine.
    assert scifact["normalised"]["agreement_at_10"]["COSINE~L2"] > 0.95
    assert scifact["normalised"]["L2"]["scores"]["relevant"]["p50"] == pytest.approx(
        scifact["normalised"]["COSINE"]["scores"]["relevant"]["p50"], abs=1e-3)
    assert 0.3 < scifact["normalised"]["COSINE"]["quality"]["ndcg_at_10"] <= 1.0
    assert scifact["normalised"]["COSINE"]["agreement_with_exact_numpy_at_10"] == pytest.approx(1.0)

    ingestion = results["ingestion"]
    for mode in ("single", "batched", "store_bulk"):
        assert ingestion[mode]["memories_per_s"] > 0
    assert ingestion["store_bulk"]["memories_per_s"] > ingestion["single"]["memories_per_s"]

    retrieval = results["retrieval"]
    assert retrieval["memories"] > 100 and retrieval["questions"] == 12
    for path in ("product", "floor"):
        hits = retrieval[path]["quality"]["hit"]
        assert 0.0 <= hits["1"] <= hits["5"] <= hits["20"] <= 1.0
    assert retrieval["targets"]["p50_ratio_to_floor"] > 0
