"""Smoke tests of the benchmark suite: the quick path on tiny sizes, with the data fetched from a
loopback mirror of ../shared/data, and with no data at all; outputs present and sane."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import math
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from localmem.bench import data, datasets, metrics, synthetic
from localmem.bench.memory_quality import load
from localmem.bench.run import Options, parse, run_suite
from localmem.bench.sessions import main as sessions_main
from localmem.bench.sessions import sessions
from localmem.cli.main import main
from tests.conftest import LoopbackServer

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _private_bench_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A private embedding cache and no data folder unless a test gives one: nothing depends on the user's.
    monkeypatch.setenv("LOCALMEM_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)
    yield
    data.use_root(None)


@pytest.fixture
def shared_root(shared_data: Path) -> Iterator[None]:
    data.use_root(shared_data)
    yield
    data.use_root(None)


def test_evidence_ids_are_normalised():
    assert data.normalise_evidence(["D8:6; D9:17", "D:11:26", "D"]) == {"D8:6", "D9:17", "D11:26"}


@pytest.mark.usefixtures("shared_root")
def test_expansion_is_deterministic_and_prefix_stable():
    assert data.corpus_source() == "locomo+memorybank"
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


def test_generated_corpus_is_deterministic_and_labelled():
    assert data.corpus_source() == "generated"  # the private, empty data folder
    texts = synthetic.texts(3000, seed=1)
    assert len(set(texts)) == 3000 and texts == synthetic.texts(3000, seed=1) and texts != synthetic.texts(3000, 2)
    big, _ = data.latency_corpus(6000, seed=3)  # past the generated base: joined sentences
    assert len(set(big)) == len(big) and big[:50] == data.latency_corpus(50, seed=3)[0]
    gen = synthetic.labelled(40, seed=0)
    assert len(gen.queries) == 40 and set(gen.relevant) <= set(gen.doc_ids)
    for question, relevant in zip(gen.queries, gen.relevant, strict=True):
        person = relevant.split("|")[0]
        assert person in question and person in gen.docs[gen.doc_ids.index(relevant)]


def test_the_generated_conversation_states_each_fact_once():
    turns = synthetic.conversation(600, seed=2)
    assert turns == synthetic.conversation(600, seed=2) and turns != synthetic.conversation(600, seed=3)
    assert len({t.text for t in turns}) == 600 and {t.session for t in turns} == set(range(30))
    facts = [t.fact for t in turns if t.fact is not None]
    assert len(facts) == len(set(facts)) == 300  # one relevant turn per question
    for turn in turns:
        if turn.fact is not None:
            person = turn.fact.split("|")[0]
            assert person in turn.text and person in synthetic.question(turn.fact) and person not in synthetic.SPEAKERS
    with pytest.raises(ValueError, match="holds at most"):
        synthetic.conversation(5_000, seed=0)


def _mirror_of_shared_data(shared: Path, mirror: LoopbackServer) -> tuple[datasets.DataSet, ...]:
    """Serve ../shared/data under the official file names; a manifest pinned to what is served."""
    served = {"locomo10.json": (shared / "locomo" / "locomo_dev.json").read_bytes(),
              "memory_bank_en.json": (shared / "memorybank" / "memorybank_memory_bank_en.json").read_bytes(),
              "probing_questions_en.jsonl":
                  (shared / "memorybank" / "memorybank_probing_questions_en.jsonl").read_bytes()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv", "qrels/train.tsv"):
            archive.write(shared / "scifact" / name, f"scifact/{name}")
    served["scifact.zip"] = buffer.getvalue()
    hashes = {name: mirror.put(name, content)[1] for name, content in served.items()}
    return tuple(dataclasses.replace(entry, remotes=tuple(
        dataclasses.replace(r, sha256=hashes[r.url.rsplit("/", 1)[1]], upstream_md5=None) for r in entry.remotes))
        for entry in datasets.MANIFEST)


def test_quick_suite_end_to_end_on_data_fetched_from_a_loopback_mirror(
        tmp_path, monkeypatch, capsys, shared_data, mirror):
    monkeypatch.setattr(datasets, "MANIFEST", _mirror_of_shared_data(shared_data, mirror))
    fetched = tmp_path / "fetched"
    assert main(["bench", "data", "fetch", "--mirror", mirror.url, "--data", str(fetched)]) == 0
    assert capsys.readouterr().out.count("sha256 verified") == 4
    options = Options.for_mode(
        True, out=tmp_path / "out", data=fetched, sizes=(200,), queries=12, repeats=1, warmup=2, scifact_queries=15,
        scifact_docs=120, scoring_questions=15, scoring_conversations=1, ingest_single=5, ingest_batched=40,
        retrieval_conversations=1, retrieval_questions=12, extraction_conversations=1, extraction_turns=2,
        infer_questions=1, memories=(30,), product_queries=6, product_infer_turns=0, quality_conversations=1,
        quality_turns=80, quality_infer_turns=0, quality_scenario_chats=2)
    results = run_suite(options)

    out = tmp_path / "out"
    assert results["skipped"] == []
    assert json.loads((out / "results.json").read_text())["seed"] == results["seed"]
    report = (out / "report.md").read_text()
    for heading in ("At a glance", "Memory quality", "Search latency", "L2 vs cosine", "Ingestion",
                    "Full-product retrieval"):
        assert heading in report
    for png in ("search_latency.png", "search_scores.png", "recall_at_k.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert f"]({png})" in report

    # Memory quality is a section of the run (memory_quality.py on the data fetched above), on a subset.
    locomo = results["quality"]["locomo"]
    assert locomo["turns"] == {"conv-26": 80} and locomo["questions"] > 5
    row = locomo["rows"]["infer=False"]["all"]
    assert 0.3 < row["evidence_hit_at_5"] <= 1.0 and 0.0 < row["answer_recall_at_5"] <= 1.0
    assert "LoCoMo memory quality, infer=False (80 turns) | evidence hit@5 " in report
    # The scenario suite needs no data: its chats ship in the package.
    scenario = results["quality"]["scenarios"]
    assert scenario["chats"] == 2 and set(scenario["modes"]) == {"infer=False", "infer=True"}
    assert "Scenarios: what holds now, and whose it is" in report

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
    assert list(scoring["datasets"]) == ["generated", "scifact", "locomo"]
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
    scores = retrieval["product"]["scores"]  # the default search's scores on real turns: the figure's second panel
    assert scores["relevant_scores"] and scores["unrelated_scores"]
    assert len(scores["relevant_scores"]) + len(scores["unrelated_scores"]) <= 12 * 10
    # Similarities (docs: Search and scores); on LoCoMo the unrelated results of a top 10 are on-topic
    # too, so 12 questions say nothing of which group scores higher: the scenario suite's test does.
    assert all(-1.0 <= s <= 1.0 for s in [*scores["relevant_scores"], *scores["unrelated_scores"]])


def test_quick_run_without_any_data_runs_the_data_free_sections_cleanly(tmp_path, monkeypatch, capfd):
    """The user's first run: no data anywhere. Generated text, named skips, no traceback or gRPC noise
    (capfd reads file descriptors 1 and 2: gRPC's C core writes its GOAWAY lines there, not via Python)."""
    quick = Options.for_mode

    def smaller(is_quick, **overrides):  # the quick presets, with fewer adds and questions for a test
        return quick(is_quick, **{"ingest_single": 5, "ingest_batched": 40, "scifact_queries": 15,
                                  "product_queries": 8, "product_infer_turns": 2, "quality_scenario_chats": 2,
                                  **overrides})

    monkeypatch.setattr(Options, "for_mode", smaller)
    code = main(["bench", "--quick", "--sizes", "300", "--memories", "40", "80", "--queries", "10", "--repeats", "1",
                 "--threads", "1"])
    out, err = capfd.readouterr()
    assert code == 0, out + err
    for noise in ("Traceback", "GOAWAY", "too_many_pings", "FileNotFoundError", "warning"):
        assert noise not in out + err, out + err
    assert "skipped retrieval: no locomo data" in out
    assert "skipped memory quality: LoCoMo: evidence hit@5 / answer recall@5: no locomo data" in out
    assert "get the data with: localmem bench data fetch locomo memorybank scifact" in out, out
    [folder] = [p for p in tmp_path.iterdir() if p.name.startswith("localmem-bench-quick-")]
    assert out.strip().splitlines()[-1].startswith(f"results in {folder.name}/")
    results = json.loads((folder / "results.json").read_text())
    assert results["latency"]["corpus"] == "generated" and "retrieval" not in results
    assert list(results["scoring"]["datasets"]) == ["generated"]
    generated = results["scoring"]["datasets"]["generated"]["variants"]["normalised"]
    assert generated["agreement_at_10"]["COSINE~L2"] > 0.95 and generated["COSINE"]["quality"]["hit"]["5"] > 0.3
    assert results["ingestion"]["texts"] == "generated" and "skipped" in results["ingestion"]["infer"]
    report = (folder / "report.md").read_text()
    assert "Skipped for want of data" in report
    # With no data, memory quality is the scenario suite alone: its chats ship in the package.
    assert "## Memory quality" in report and "Scenarios: what holds now" in report and "### LoCoMo" not in report
    assert set(results["quality"]) == {"scenarios"} and results["quality"]["scenarios"]["chats"] == 2

    # What a user installing a memory library wants first, with no data: Memory.search against the floor
    # at each size, and add() both ways, on a conversation the report says is generated.
    product = results["product"]
    assert product["corpus"] == "generated" and product["questions"] == 8 and sorted(product["sizes"]) == ["40", "80"]
    for n, size in product["sizes"].items():
        assert size["memories"] == int(n)
        assert size["floor"]["p50_ms"] > 0 and 0 < size["search"]["p50_ms"] <= size["search"]["p95_ms"]
        assert size["ratio_to_floor"]["p50_ms"] == pytest.approx(size["search"]["p50_ms"] / size["floor"]["p50_ms"])
    scores = product["sizes"]["80"]["scores"]
    assert len(scores["relevant_scores"]) <= 8 and scores["unrelated_scores"] and "scores" not in product["sizes"]["40"]
    assert all(0 < s <= 1 for s in scores["relevant_scores"] + scores["unrelated_scores"])  # the fused score
    assert product["add_infer_false"]["turns"] == 80 and product["add_infer_false"]["latency"]["p50_ms"] > 0
    infer = product["add_infer_true"]
    assert infer["turns"] == 2 and infer["latency"]["p50_ms"] > product["add_infer_false"]["latency"]["p50_ms"]
    glance = report.split("## How this ran")[0]
    assert glance.startswith("# localmem benchmarks (quick run)\n\n## At a glance")
    for line in ("| Memory.search, 40 memories stored | p50 ", "| Memory.search, 80 memories stored | p50 ",
                 "| add(infer=False), one turn per call | p50 ",
                 "| add() default (infer=True, bundled model), one turn per call | p50 ",
                 "a **generated** conversation"):
        assert line in glance and line in out, line
    assert (folder / "search_latency.png").is_file() and (folder / "search_scores.png").is_file()


def test_the_accelerator_check_compares_the_auto_path_with_torch_on_the_cpu(shared_root, monkeypatch):
    """On this CPU machine auto is the ONNX export (or torch); on a GPU machine it is torch on cuda:
    either way its vectors must be the CPU torch path's."""
    from localmem.bench import accelerator

    monkeypatch.setattr(accelerator, "TEXTS", 40)
    monkeypatch.setattr(accelerator, "QUERIES", 10)
    result = accelerator.run(None)
    assert result["auto"]["device"] == "cpu" and result["texts"] == 40 and result["queries"] == 10
    assert result["identity_equal"] and result["cosine_auto_vs_cpu"]["min"] >= 0.9999
    assert result["same_top5_share"] >= 0.9
    assert all(v > 0 for v in [*result["query_p50_ms"].values(), *result["batch_texts_per_s"].values()])


@pytest.mark.usefixtures("shared_root")
def test_sessions_benchmark_adds_each_session_in_one_call_and_reports_the_floor(
        shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    turns, _ = load(8)
    first = next(iter(turns.values()))
    grouped = sessions(first)
    assert [t for group in grouped for t in group] == first
    assert all(len({t.when for t in group}) == 1 for group in grouped)
    assert all(a[-1].when != b[0].when for a, b in itertools.pairwise(grouped))
    sessions_main(["--conversations", "1", "--turns", "8", "--data", str(shared_data)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"1 conversations, {len(grouped)} sessions, 8 turns")
    infer, floor = (float(line.split(": ")[1].split()[0]) for line in lines[1:3])
    assert infer > floor > 0  # the model's work is on top of embedding and storing
    assert lines[4].startswith("add(infer=True), background_extraction: ")
    background = float(lines[4].split(": ")[1].split()[0])
    assert background > floor  # the wait for the facts is measured, not only add()


def test_the_extraction_benchmark_reads_a_model_without_extract_batch_one_message_a_call() -> None:
    # extract_batch is LlamaCppModel's, not part of LanguageModel: another model is read message by message.
    from datetime import datetime, timezone

    from localmem.bench.extraction import read_turns
    from localmem.protocols import Candidate
    from localmem.records import Decision, Event, Fact, Message

    class OneAtATime:
        def __init__(self) -> None:
            self.calls: list[list[str]] = []

        def extract_facts(self, messages: Sequence[Message], custom_prompt: str | None = None) -> list[Fact]:
            self.calls.append([m.content for m in messages])
            return [Fact(f"Said {messages[0].content}")]

        def reconcile(self, fact: Fact, candidates: Sequence[Candidate], custom_prompt: str | None = None) -> Decision:
            return Decision(Event.ADD, fact.text)

        def close(self) -> None:
            pass

    model = OneAtATime()
    now = datetime(2023, 5, 8, tzinfo=timezone.utc)
    facts = read_turns(model, [Message("user", "a"), Message("user", "b")], [now, now])
    assert model.calls == [["a"], ["b"]]
    assert [(f.text, f.sources) for f in facts] == [("Said a", (0,)), ("Said b", (1,))]
