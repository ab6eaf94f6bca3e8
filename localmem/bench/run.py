"""The one command: ``localmem bench [--quick] [--out DIR] [--sizes ...] [--seed N]``.

Runs the sections in order (product: Memory.search and add() as a user calls them; quality;
then latency, scoring, ingestion, retrieval), then writes results.json, report.md and the PNG
figures into the output folder (``--out``, default a dated folder in the current directory).
Data sets are read from ``--data DIR``, ``$LOCALMEM_BENCH_DATA`` or the cache that ``localmem
bench data fetch`` fills; what has no data is skipped and named at the end (product, latency,
scoring and ingestion run on generated text without any). ``localmem bench data ...`` goes to fetch.py. Milvus Lite
data folders live in a temporary directory and are deleted afterwards; only the
embedding cache (~/.cache/localmem/bench) outlives a run.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import math
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from localmem.bench.datasets import DATA_ENV, FETCH_HINT
from localmem.dist import extra_hint
from localmem.errors import DependencyError

SECTIONS = ("product", "quality", "latency", "scoring", "ingestion", "retrieval")
# (section, part, data sets it needs); a part not listed runs on generated data when its data set is absent.
NEEDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("latency", "latency on real text (ran on generated text instead)", ("locomo", "memorybank")),
    ("scoring", "scoring: SciFact", ("scifact",)), ("scoring", "scoring: LoCoMo", ("locomo",)),
    ("ingestion", "ingestion: add(infer=True) extraction quality", ("locomo",)),
    ("retrieval", "retrieval", ("locomo",)))


def default_out(quick: bool) -> Path:
    """A new dated folder in the current directory: a run never overwrites an earlier one."""
    return Path(f"localmem-bench-{'quick' if quick else 'full'}-{time.strftime('%Y%m%d-%H%M%S')}")


@dataclass(frozen=True)
class Options:
    """Everything a run depends on; ``for_mode`` fills the full / quick defaults."""

    quick: bool = False
    out: Path = Path("localmem-bench")
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    seed: int = 0
    # 100 queries x 3 passes: FLAT without a filter costs ~0.5 s per search at 100k rows on 2
    # busy cores, so this alone is ~2.5 min of the full run.
    queries: int = 100  # latency queries
    # product: Memory.search at these numbers of memories stored (the generated conversation's length is the
    # largest), add(infer=True) on the first turns of it
    memories: tuple[int, ...] = (250, 500, 1_000)
    product_queries: int = 100
    product_infer_turns: int = 100
    # quality: LoCoMo conversations (None: all), and how much of them the default add() (infer=True) reads
    quality_conversations: int | None = None
    quality_turns: int | None = None  # first turns of each; None: 200 in --quick, all in the full run
    quality_infer_conversations: int = 10
    quality_infer_turns: int = 100_000
    quality_scenario_chats: int | None = None  # scenario suite chats (None: all; 12 in --quick)
    repeats: int = 3
    warmup: int = 5
    k: int = 10
    device: str = "auto"
    threads: int | None = None  # cap every BLAS / OpenMP pool (torch, numpy, faiss) for the whole run
    sections: tuple[str, ...] = SECTIONS
    scifact_queries: int | None = None
    scifact_docs: int | None = None
    scoring_questions: int | None = None
    scoring_conversations: int | None = None
    ingest_single: int = 500
    ingest_batched: int | None = None
    retrieval_conversations: int | None = None
    retrieval_questions: int | None = None
    extraction_conversations: int | None = None
    extraction_turns: int | None = 100  # LLM-bound: ~2-3 s per add(infer=True) on 2 busy cores
    infer_questions: int = 10  # add(infer=True) retrieval: questions whose turns (+ neighbours) are added
    data: Path | None = None  # data folder (--data); None: $LOCALMEM_BENCH_DATA, else the fetch cache
    command: str = field(default="", compare=False)

    @classmethod
    def for_mode(cls, quick: bool, **overrides: Any) -> Options:
        base: dict[str, Any] = {"quick": quick, "out": default_out(quick)}
        if quick:
            base.update(sizes=(1_000, 5_000), queries=50, repeats=2, warmup=5, memories=(100, 200, 400),
                        product_queries=30, product_infer_turns=20, quality_conversations=2,
                        quality_infer_conversations=1, quality_infer_turns=30,
                        quality_scenario_chats=12, scifact_queries=100, scifact_docs=1_500,
                        scoring_questions=150, ingest_single=100,
                        ingest_batched=500, retrieval_conversations=2, retrieval_questions=100,
                        extraction_conversations=1, extraction_turns=30, infer_questions=3)
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)


def run_suite(options: Options) -> dict[str, Any]:
    """Run the chosen sections and write the outputs; returns what results.json holds."""
    from localmem.bench import data, env, ingestion, latency, plots, product, quality, report, retrieval, scoring
    from localmem.bench.embedding import Embedders

    started = time.perf_counter()
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    data.use_root(options.data)
    skipped = _skipped(options.sections)
    missing = sorted({n for entry in skipped for n in entry["needs"]})
    print(f"data folder: {data.data_dir()}" + (f" (missing: {', '.join(missing)})" if missing else ""), flush=True)
    emb = Embedders(device=options.device)
    results: dict[str, Any] = {"mode": "quick" if options.quick else "full", "seed": options.seed,
                               "command": options.command or "run_suite()",
                               "options": {k: (str(v) if isinstance(v, Path) else v)
                                           for k, v in asdict(options).items()},
                               "environment": env.describe(emb.device), "timings_s": {}}
    limit: contextlib.AbstractContextManager[None] = (
        contextlib.nullcontext() if options.threads is None else _thread_limit(options.threads))
    try:
        # Every store closes its client and stops its Lite engine (vector_stores/lite.py) before this
        # folder goes; a leftover file still must not fail a run whose figures are all in.
        with limit, tempfile.TemporaryDirectory(prefix="localmem-bench-", ignore_cleanup_errors=True) as tmp:
            work = Path(tmp)
            for section in options.sections:
                t0 = time.perf_counter()
                print(f"== {section}", flush=True)
                if section == "product":
                    results["product"] = product.run(
                        emb, sizes=list(options.memories), infer_turns=options.product_infer_turns,
                        queries=options.product_queries, seed=options.seed, warmup=options.warmup,
                        repeats=options.repeats, workdir=work)
                elif section == "quality":
                    results["quality"] = quality.run(quality.Scale(
                        quick=options.quick, conversations=options.quality_conversations,
                        turns=options.quality_turns,
                        infer_conversations=options.quality_infer_conversations,
                        infer_turns=options.quality_infer_turns,
                        scenario_chats=options.quality_scenario_chats), work)
                elif section == "latency":
                    results["latency"] = latency.run(
                        emb, sizes=list(options.sizes), n_queries=options.queries, seed=options.seed,
                        repeats=options.repeats, warmup=options.warmup, k=options.k, workdir=work)
                elif section == "scoring":
                    # The per-metric score samples stay in results.json's quantiles: the figure shows the
                    # default search's scores (product section) only.
                    results["scoring"], _ = scoring.run(
                        emb, scifact_queries=options.scifact_queries, scifact_docs=options.scifact_docs,
                        locomo_questions=options.scoring_questions,
                        locomo_conversations=options.scoring_conversations, seed=options.seed,
                        warmup=options.warmup, workdir=work)
                elif section == "ingestion":
                    results["ingestion"] = ingestion.run(
                        emb, n_single=options.ingest_single, n_batched=options.ingest_batched,
                        extraction_conversations=options.extraction_conversations,
                        extraction_turns=options.extraction_turns, seed=options.seed,
                        workdir=work)
                elif section == "retrieval":
                    if not data.has("locomo"):
                        print("   skipped: needs LoCoMo", flush=True)
                        continue
                    results["retrieval"] = retrieval.run(
                        emb, conversations=options.retrieval_conversations,
                        max_questions=options.retrieval_questions, seed=options.seed, warmup=options.warmup,
                        repeats=options.repeats, workdir=work)
                    results["retrieval"]["infer"] = (retrieval.infer_subset(
                        emb, n_questions=options.infer_questions, seed=options.seed, workdir=work)
                        if options.infer_questions > 0 else {"skipped": "infer_questions=0"})
                results["timings_s"][section] = time.perf_counter() - t0
    finally:
        emb.close()
    results["skipped"] = skipped
    results["elapsed_s"] = time.perf_counter() - started
    results = _finite(results)
    pngs = plots.write_all(results, out)
    (out / "results.json").write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    (out / "report.md").write_text(report.render(results, pngs))
    return results


def _skipped(sections: tuple[str, ...]) -> list[dict[str, Any]]:
    from localmem.bench import data, quality

    needs = [*NEEDS, *(("quality", f"memory quality: {s.title}", s.needs) for s in quality.SUITES)]
    return [{"what": what, "needs": [n for n in wanted if not data.has(n)]}
            for section, what, wanted in needs if section in sections and not data.has(*wanted)]


@contextlib.contextmanager
def _thread_limit(threads: int) -> Iterator[None]:
    """Cap torch's OpenMP pool and every BLAS in the process (Milvus Lite's engine runs here too).

    On a loaded 2-core machine a 2-thread OpenMP region waits for a descheduled thread: one
    query's embedding was measured at ~480 ms with 2 threads and ~11 ms with 1.
    """
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")
    except ImportError:
        raise SystemExit("--threads needs threadpoolctl: pip install threadpoolctl") from None
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpoolctl.threadpool_limits(threads):
            yield
    finally:
        torch.set_num_threads(before)


def _finite(value: Any) -> Any:
    """NaN and infinities become null, so results.json is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def parse(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="localmem bench", description="Run the benchmark suite: Memory.search and "
                                     "add() latency, memory quality, search latency vs N per index, L2 vs cosine vs "
                                     "IP, ingestion rates, full-product retrieval.")
    parser.add_argument("--quick", action="store_true", help="small sizes and subsets: a few minutes on 2 cores")
    parser.add_argument("--out", type=Path, help="results folder (default: ./localmem-bench-<mode>-<date>)")
    parser.add_argument("--sizes", type=int, nargs="+",
                        help="index-sweep corpus sizes (latency section; default 1000 10000 100000)")
    parser.add_argument("--memories", type=int, nargs="+",
                        help="memories stored when Memory.search is timed (product section; default 250 500 1000)")
    parser.add_argument("--seed", type=int, help="seed of every sample and the corpus expansion (default 0)")
    parser.add_argument("--queries", type=int, help="latency queries per configuration")
    parser.add_argument("--repeats", type=int, help="timed passes over the queries (median reported)")
    parser.add_argument("--device", help="embedder device: auto (CUDA if torch sees one), cpu, cuda")
    parser.add_argument("--threads", type=int,
                        help="cap torch, OpenMP and BLAS threads for the whole run (Milvus Lite's engine included)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--data", type=Path, help=f"benchmark data folder (default ${DATA_ENV}, else the cache that "
                        f"'{FETCH_HINT}' fills)")
    parser.epilog = (f"'localmem bench data list|fetch' shows and downloads the data sets ({FETCH_HINT} --help). "
                     "exit codes: as for every localmem command (localmem --help lists them).")
    args = parser.parse_args(argv)
    return Options.for_mode(
        args.quick, out=args.out, sizes=tuple(args.sizes) if args.sizes else None,
        memories=tuple(args.memories) if args.memories else None, seed=args.seed,
        queries=args.queries, repeats=args.repeats, device=args.device, threads=args.threads,
        sections=tuple(args.sections) if args.sections else None, data=args.data,
        command=" ".join(["localmem bench", *map(shlex.quote, argv if argv is not None else sys.argv[1:])]))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["data"]:
        from localmem.bench import fetch

        return fetch.main(argv[1:])
    options = parse(argv)
    _require_extra()
    results = run_suite(options)
    from localmem.bench.report import glance

    print("\n".join(glance(results)))
    for entry in results["skipped"]:
        print(f"skipped {entry['what']}: no {', '.join(entry['needs'])} data")
    if results["skipped"]:
        hint = " ".join(sorted({n for e in results["skipped"] for n in e["needs"]}))
        print(f"get the data with: {FETCH_HINT} {hint}   (or --data DIR pointing at a copy)")
    print(f"results in {options.out}/ (results.json, report.md, figures), {results['elapsed_s']:.0f} s")
    return 0


def _require_extra() -> None:
    """The plots need matplotlib, which only the [bench] extra installs: say so before any work."""
    if importlib.util.find_spec("matplotlib") is None:
        raise DependencyError(f"the benchmark suite needs matplotlib: {extra_hint('bench')}")


if __name__ == "__main__":
    raise SystemExit(main())
