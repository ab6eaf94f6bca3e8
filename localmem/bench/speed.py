"""Embedder paths, cold start, ingest and latency under load: ``python -m localmem.bench.speed``.

Sections (``--sections``): ``embed`` (query p50/p95 and batch throughput, torch vs
ONNX fp32 vs ONNX int8, timed interleaved), ``quality`` (SciFact nDCG@10 and LoCoMo
hit@5 per path, exact cosine scan: the int8 gate), ``search`` (Memory.search in one
LoCoMo conversation vs the exact-scan floors of each embedder), ``cold`` (wall time
of fresh CLI processes, and whether they imported torch), ``ingest``
(add(infer=False) one per call and batched), ``load`` (search and add p50 idle vs
with a busy-loop process on one core, in fresh processes: as shipped, and with
libgomp's default spinning restored, which is what localmem did before).
Writes benchmarks/results/speed/results.json and report.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

import localmem
from localmem import Memory, MemoryConfig
from localmem.bench import data, metrics
from localmem.bench.timing import median_of_passes, summarize, time_interleaved
from localmem.config import EmbedderConfig, VectorStoreConfig
from localmem.embedders.select import build_embedder
from localmem.protocols import Embedder

SECTIONS = ("embed", "quality", "search", "cold", "ingest", "load")
BACKENDS = ("torch", "onnx", "onnx-int8")
# The committed results folder when run from the checkout root, else a folder in the current directory.
OUT = Path("benchmarks/results/speed") if Path("benchmarks/results").is_dir() else Path("localmem-bench-speed")
_ROOT = Path(__file__).resolve().parents[1]


def embedder(backend: str) -> Embedder:
    return build_embedder(EmbedderConfig(backend=backend, device="cpu"))


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


# -- embed ---------------------------------------------------------------------------
def _embed_one(e: Embedder) -> Callable[[str], object]:
    return lambda q: e.embed([q])


def _search(m: Memory, user: str) -> Callable[[str], object]:
    return lambda q: m.search(q, user_id=user, limit=10)


def run_embed(n_queries: int, n_batch: int, repeats: int) -> dict[str, Any]:
    queries = [q.text for q in random.Random(0).sample(data.locomo_questions(), n_queries)]
    batch = [t.text for t in data.locomo_turns()[:n_batch]]
    embs = {b: embedder(b) for b in BACKENDS}
    passes = time_interleaved([_embed_one(e) for e in embs.values()], queries, warmup=5, repeats=repeats)
    out: dict[str, Any] = {"queries": n_queries, "batch_texts": n_batch, "load_before": loadavg()}
    for (name, e), p in zip(embs.items(), passes, strict=True):
        e.embed(batch[:64])
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            e.embed(batch)
            times.append(time.perf_counter() - start)
        out[name] = {"query": median_of_passes(p).to_dict(), "batch_texts_per_s": n_batch / float(np.median(times))}
    out["load_after"] = loadavg()
    for e in embs.values():
        e.close()
    return out


# -- quality -------------------------------------------------------------------------
def run_quality(scifact_docs: int | None) -> dict[str, Any]:
    """Exact-scan retrieval per path: the int8 gate (SciFact test nDCG@10, LoCoMo hit@5 over raw turns) and,
    query by query, int8 against fp32 over every SciFact claim (test and train) and LoCoMo turns as an
    episode stores them (with their date): a mean difference within 0.01 must hold beyond its noise."""
    from localmem.bench.memory_quality import load, stored_texts

    sf = data.scifact(max_docs=scifact_docs, splits=("test", "train"))
    test = set(data.scifact(max_docs=scifact_docs).query_ids)
    turns, questions = data.locomo_turns(), data.locomo_questions()
    by_conversation, dated_questions = load(None)
    dated = [t for kept in by_conversation.values() for t in kept]
    out: dict[str, Any] = {"scifact_docs": len(sf.docs), "scifact_queries": len(test),
                           "scifact_claims_paired": len(sf.queries), "locomo_turns": len(turns),
                           "locomo_questions": len(questions)}
    per_query: dict[str, dict[str, list[float]]] = {}
    for name in BACKENDS:
        e = embedder(name)
        docs, queries = e.embed(sf.docs), e.embed(sf.queries)
        ndcg = [metrics.ndcg_at([sf.doc_ids[i] for i in np.argsort(-(docs @ q))[:10]], sf.qrels[qid], 10)
                for q, qid in zip(queries, sf.query_ids, strict=True)]
        hits = _hits_at_5([t.conversation for t in turns], [t.dia_id for t in turns],
                          e.embed([t.text for t in turns]), [(q.conversation, q.evidence) for q in questions],
                          e.embed([q.text for q in questions]))
        dated_hits = _hits_at_5([t.conversation for t in dated], [t.dia_id for t in dated],
                                e.embed(stored_texts(by_conversation)),
                                [(q.conversation, q.evidence) for q in dated_questions],
                                e.embed([q.text for q in dated_questions]))
        on_test = [v for v, qid in zip(ndcg, sf.query_ids, strict=True) if qid in test]
        out[name] = {"scifact_ndcg_at_10": metrics.mean(on_test),
                     "locomo_hit_at_5": metrics.mean(hits), "scifact_all_claims_ndcg_at_10": metrics.mean(ndcg),
                     "locomo_dated_hit_at_5": metrics.mean(dated_hits)}
        per_query[name] = {"scifact": ndcg, "locomo_dated": dated_hits}
        e.close()
    for key in ("scifact_ndcg_at_10", "locomo_hit_at_5"):
        out[f"int8_minus_fp32_{key}"] = out["onnx-int8"][key] - out["onnx"][key]
    out["int8_vs_fp32_paired"] = {what: metrics.paired(per_query["onnx"][what], per_query["onnx-int8"][what])
                                  for what in ("scifact", "locomo_dated")}
    return out


def _hits_at_5(conversation_of: list[str], label_of: list[str], texts: np.ndarray[Any, Any],
               questions: list[tuple[str, frozenset[str]]], queries: np.ndarray[Any, Any]) -> list[float]:
    """Per question: whether an evidence turn is among the 5 nearest of its conversation's turns."""
    rows_of = {c: np.flatnonzero([x == c for x in conversation_of]) for c in set(conversation_of)}
    hits = []
    for (conversation, evidence), vec in zip(questions, queries, strict=True):
        rows = rows_of[conversation]
        top = rows[np.argsort(-(texts[rows] @ vec))[:5]]
        hits.append(metrics.hit_at([(label_of[i],) for i in top], evidence, 5))
    return hits


# -- search vs floors ------------------------------------------------------------------
def run_search(n_queries: int, repeats: int, workdir: Path) -> dict[str, Any]:
    turns = data.locomo_turns()
    conv = turns[0].conversation
    texts = list(dict.fromkeys(t.text for t in turns if t.conversation == conv))
    queries = [q.text for q in data.locomo_questions() if q.conversation == conv][:n_queries]
    embs = {b: embedder(b) for b in BACKENDS}
    stores: dict[str, Memory] = {}
    for precision in ("onnx", "onnx-int8"):  # one store of fp32 vectors (torch's too), one of int8
        config = MemoryConfig(vector_store=VectorStoreConfig(uri=str(workdir / f"search_{precision}.db")))
        stores[precision] = Memory(config, embedder=embs[precision])
        for lo in range(0, len(texts), 100):
            stores[precision].add([{"role": "user", "content": t} for t in texts[lo:lo + 100]], user_id=conv,
                                  infer=False)
    corpus = {name: embs[name].embed(texts) for name in stores}
    # Facades on those stores: torch and fp32 share one (the same identity), the embedder the only difference.
    home = {"torch": "onnx", "onnx": "onnx", "onnx-int8": "onnx-int8"}
    facades = {name: Memory(stores[home[name]].config, embedder=e, store=stores[home[name]].store,
                            history=stores[home[name]].history_store) for name, e in embs.items()}

    def floor(name: str) -> Callable[[str], object]:
        vectors, e = corpus[home[name]], embs[name]
        return lambda q: np.argpartition(-(vectors @ e.embed([q])[0]), 10)[:10]

    fns = [_search(m, conv) for m in facades.values()] + [floor(name) for name in embs]
    passes = time_interleaved(fns, queries, warmup=5, repeats=repeats)
    names = [f"memory_search_{n}" for n in facades] + [f"floor_{n}" for n in embs]
    out: dict[str, Any] = {"scope_memories": len(texts), "queries": len(queries), "load": loadavg()}
    out.update({n: median_of_passes(p).to_dict() for n, p in zip(names, passes, strict=True)})
    for name in ("onnx", "onnx-int8"):
        for base in ("torch", name):
            out[f"search_{name}_over_floor_{base}_p50"] = (out[f"memory_search_{name}"]["p50_ms"]
                                                           / out[f"floor_{base}"]["p50_ms"])
    for memory in stores.values():
        memory.close()
    return out


# -- cold start -------------------------------------------------------------------------
COLD_COMMANDS = {
    "import localmem": [sys.executable, "-c", "import localmem"],
    "localmem --help": [sys.executable, "-m", "localmem", "--help"],
    "localmem models list": [sys.executable, "-m", "localmem", "models", "list"],
    "localmem search": [sys.executable, "-m", "localmem", "search", "hiking", "--user", "u", "--db", "{db}"],
    "localmem add --no-infer": [sys.executable, "-m", "localmem", "add", "I like hiking", "--user", "u",
                                "--no-infer", "--db", "{db}"],
    "localmem doctor": [sys.executable, "-m", "localmem", "doctor", "--db", "{db}"],
}


def run_cold(repeats: int, workdir: Path) -> dict[str, Any]:
    db = str(workdir / "cold.db")
    subprocess.run([sys.executable, "-m", "localmem", "add", "warm-up", "--user", "u", "--no-infer", "--db", db],
                   cwd=_ROOT, check=True, capture_output=True)
    # Compiled bytecode saves ~0.1 s of a cold command. A wheel install has it; an editable
    # checkout run with PYTHONDONTWRITEBYTECODE set recompiles localmem on every start.
    cached = any((Path(localmem.__file__).parent / "__pycache__").glob("memory.*.pyc"))
    out: dict[str, Any] = {"load": loadavg(), "localmem_bytecode_cached": cached}
    for name, template in COLD_COMMANDS.items():
        command = [part.replace("{db}", db) for part in template]
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(command, cwd=_ROOT, capture_output=True, check=False)
            times.append(time.perf_counter() - start)
        trace = subprocess.run([sys.executable, "-X", "importtime", *command[1:]], cwd=_ROOT, capture_output=True,
                               text=True, check=False).stderr
        out[name] = {"wall_s_median": float(np.median(times)), "wall_s_min": min(times),
                     "imports_torch": any(line.rstrip().endswith("| torch") for line in trace.splitlines()),
                     "import_s": _import_total(trace)}
    return out


def _import_total(trace: str) -> dict[str, float]:
    """Cumulative import seconds of the heavy top-level packages in an -X importtime trace."""
    totals: dict[str, float] = {}
    for line in trace.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() in ("localmem", "pymilvus", "milvus_lite", "onnxruntime", "torch",
                                                   "numpy", "tokenizers", "sentence_transformers", "pandas"):
            try:
                totals[parts[2].strip()] = max(totals.get(parts[2].strip(), 0.0), int(parts[1]) / 1e6)
            except ValueError:
                continue
    return totals


# -- ingest -----------------------------------------------------------------------------
def run_ingest(n_single: int, n_batched: int, workdir: Path) -> dict[str, Any]:
    texts = list(dict.fromkeys(t.text for t in data.locomo_turns()))
    out: dict[str, Any] = {"load": loadavg()}
    for name in BACKENDS:
        e = embedder(name)
        cfg = MemoryConfig(vector_store=VectorStoreConfig(uri=str(workdir / f"ingest_{name}.db")))
        with Memory(cfg, embedder=e) as memory:
            memory.add("warm-up", user_id="w", infer=False)
            memory.add([{"role": "user", "content": f"warm-up {i}"} for i in range(100)], user_id="w", infer=False)
            times = []
            for text in texts[:n_single]:
                start = time.perf_counter()
                memory.add(text, user_id="single", infer=False)
                times.append(time.perf_counter() - start)
            batch = texts[n_single:n_single + n_batched]
            start = time.perf_counter()
            for lo in range(0, len(batch), 100):
                memory.add([{"role": "user", "content": t} for t in batch[lo:lo + 100]], user_id="batch",
                           infer=False)
            elapsed = time.perf_counter() - start
        out[name] = {"single": summarize(times).to_dict(), "batched_memories_per_s": len(batch) / elapsed,
                     "batched_messages": len(batch), "batch_size": 100}
    return out


# -- latency under load ----------------------------------------------------------------
_LOAD_PROBE = """
import json, sys, time, numpy as np
from localmem import Memory, MemoryConfig
from localmem.config import EmbedderConfig, VectorStoreConfig
from localmem.bench import data
texts = list(dict.fromkeys(t.text for t in data.locomo_turns()))[:int(sys.argv[3])]
qs = [q.text for q in data.locomo_questions()][:int(sys.argv[4])]
cfg = MemoryConfig(vector_store=VectorStoreConfig(uri=sys.argv[1]), embedder=EmbedderConfig(backend=sys.argv[2]))
m = Memory(cfg)
for lo in range(0, len(texts), 100):
    m.add([{"role": "user", "content": t} for t in texts[lo:lo + 100]], user_id="u", infer=False)
for q in qs[:5]: m.search(q, user_id="u", limit=10)
def p50(fn, items):
    ts = []
    for x in items:
        s = time.perf_counter(); fn(x); ts.append(time.perf_counter() - s)
    return 1000 * float(np.median(ts))
print(json.dumps({"search_p50_ms": p50(lambda q: m.search(q, user_id="u", limit=10), qs),
                  "add_p50_ms": p50(lambda i: m.add(f"note {i} for the load probe", user_id="u", infer=False),
                                    range(len(qs)))}))
m.close()
"""


@contextmanager
def busy_loop() -> Iterator[None]:
    """A CPU-bound process pinned to core 0 (pure Python spin: no OpenMP of its own)."""
    code = "import os\nos.sched_setaffinity(0, {0})\nwhile True:\n    pass\n"
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.5)
        yield
    finally:
        proc.kill()
        proc.wait()


def _probe(backend: str, env: dict[str, str], workdir: Path, tag: str, size: tuple[int, int]) -> dict[str, float]:
    db = workdir / f"load_{tag}.db"
    args = [str(db), backend, str(size[0]), str(size[1])]
    done = subprocess.run([sys.executable, "-c", _LOAD_PROBE, *args], cwd=_ROOT, env=env,
                          capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"load probe {tag} failed: {done.stderr[-1500:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_load(workdir: Path, memories: int, queries: int) -> dict[str, Any]:
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    base["PYTHONPATH"] = str(_ROOT)
    base["LOCALMEM_BENCH_DATA"] = str(data.data_dir().resolve())  # the probes read the folder --data named
    # libgomp's default without OMP_WAIT_POLICY: spin 300k iterations before sleeping. GOMP_SPINCOUNT wins
    # over the PASSIVE that localmem sets, so this reproduces localmem before issue #13.
    spinning = base | {"GOMP_SPINCOUNT": "300000"}
    cases = {"onnx (default)": ("auto", base), "onnx-int8": ("onnx-int8", base),
             "torch, passive": ("torch", base), "torch, spinning (before)": ("torch", spinning)}
    out: dict[str, Any] = {"load_at_start": loadavg(), "memories": memories, "queries": queries}
    for i, (name, (backend, env)) in enumerate(cases.items()):
        idle = _probe(backend, env, workdir, f"{i}_idle", (memories, queries))
        with busy_loop():
            loaded = _probe(backend, env, workdir, f"{i}_busy", (memories, queries))
        out[name] = {"idle": idle, "busy_loop": loaded,
                     "search_ratio": loaded["search_p50_ms"] / idle["search_p50_ms"],
                     "add_ratio": loaded["add_p50_ms"] / idle["add_p50_ms"]}
    out["load_at_end"] = loadavg()
    return out


# -- report ----------------------------------------------------------------------------
def report(results: dict[str, Any]) -> str:
    lines = ["# Speed: embedder paths, cold start, ingest, latency under load", "",
             f"Command: `{results['command']}`  ", f"Machine: {results['machine']}", ""]
    if "embed" in results:
        e = results["embed"]
        lines += ["## Query embedding (one text per call, interleaved) and batch throughput", "",
                  "| path | p50 ms | p95 ms | batch texts/s |", "|---|---|---|---|"]
        lines += [f"| {b} | {e[b]['query']['p50_ms']:.2f} | {e[b]['query']['p95_ms']:.2f} | "
                  f"{e[b]['batch_texts_per_s']:.0f} |" for b in BACKENDS]
        lines += [""]
    if "quality" in results:
        q = results["quality"]
        lines += ["## Retrieval quality per path (exact cosine scan)", "",
                  f"SciFact: {q['scifact_queries']} queries over {q['scifact_docs']} docs; LoCoMo dev: "
                  f"{q['locomo_questions']} questions, searched within their conversation.", "",
                  "| path | SciFact nDCG@10 | LoCoMo hit@5 |", "|---|---|---|"]
        lines += [f"| {b} | {q[b]['scifact_ndcg_at_10']:.4f} | {q[b]['locomo_hit_at_5']:.4f} |" for b in BACKENDS]
        lines += ["", f"int8 - fp32: SciFact {q['int8_minus_fp32_scifact_ndcg_at_10']:+.4f}, "
                      f"LoCoMo {q['int8_minus_fp32_locomo_hit_at_5']:+.4f}", ""]
        if "int8_vs_fp32_paired" in q:
            lines += ["int8 against fp32, query by query: SciFact nDCG@10 over every claim (test and train), "
                      "LoCoMo hit@5 over the turns as episodes store them (dated).", "",
                      "| set | queries | fp32 | int8 | mean difference (95% CI) | int8 better / worse | sign test p |",
                      "|---|---|---|---|---|---|---|"]
            means = {"scifact": "scifact_all_claims_ndcg_at_10", "locomo_dated": "locomo_dated_hit_at_5"}
            for what, pair in q["int8_vs_fp32_paired"].items():
                lines.append(f"| {what} | {pair['queries']} | {q['onnx'][means[what]]:.4f} | "
                             f"{q['onnx-int8'][means[what]]:.4f} | "
                             f"{pair['mean_difference']:+.4f} ({pair['ci95_low']:+.4f} to {pair['ci95_high']:+.4f}) | "
                             f"{pair['after_better']} / {pair['after_worse']} | {pair['sign_test_p']:.2f} |")
            lines += [""]
    if "search" in results:
        s = results["search"]
        lines += [f"## Memory.search vs the exact-scan floors ({s['scope_memories']} memories in scope)", "",
                  "| what | p50 ms | p95 ms |", "|---|---|---|"]
        lines += [f"| {k} | {s[k]['p50_ms']:.2f} | {s[k]['p95_ms']:.2f} |" for k in s if isinstance(s[k], dict)]
        lines += [""] + [f"search ({name}) / torch floor, p50: {s[f'search_{name}_over_floor_torch_p50']:.2f}; "
                         f"/ its own floor: {s[f'search_{name}_over_floor_{name}_p50']:.2f}  "
                         for name in ("onnx", "onnx-int8") if f"search_{name}_over_floor_torch_p50" in s] + [""]
    if "cold" in results:
        c = results["cold"]
        lines += ["## Cold start (fresh process, wall time)", "", "| command | median s | min s | imports torch |",
                  "|---|---|---|---|"]
        lines += [f"| `{k}` | {v['wall_s_median']:.2f} | {v['wall_s_min']:.2f} | {v['imports_torch']} |"
                  for k, v in c.items() if isinstance(v, dict)]
        if "localmem_bytecode_cached" in c:
            lines += ["", f"localmem's compiled bytecode cached: {c['localmem_bytecode_cached']}"]
        lines += [""]
    if "ingest" in results:
        g = results["ingest"]
        lines += ["## Ingest, add(infer=False)", "", "| path | one per call p50 ms | batched memories/s |",
                  "|---|---|---|"]
        lines += [f"| {b} | {g[b]['single']['p50_ms']:.1f} | {g[b]['batched_memories_per_s']:.0f} |"
                  for b in BACKENDS if b in g]
        lines += [""]
    if "load" in results:
        ld = results["load"]
        lines += ["## Latency with a busy-loop process on core 0 vs without", "",
                  "| case | search p50 idle / busy ms | ratio | add p50 idle / busy ms | ratio |",
                  "|---|---|---|---|---|"]
        lines += [f"| {k} | {v['idle']['search_p50_ms']:.1f} / {v['busy_loop']['search_p50_ms']:.1f} | "
                  f"{v['search_ratio']:.2f} | {v['idle']['add_p50_ms']:.1f} / {v['busy_loop']['add_p50_ms']:.1f} | "
                  f"{v['add_ratio']:.2f} |" for k, v in ld.items() if isinstance(v, dict)]
        lines += [""]
    lines += ["Load average (1 min) is recorded beside each section in results.json: this machine is shared, "
              "so absolute figures carry the other load; interleaved comparisons are the fairer ones.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localmem.bench.speed", description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="fewer queries and repeats")
    parser.add_argument("--scifact-docs", type=int, default=None, help="SciFact docs (every relevant one kept)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--data", type=Path, help="benchmark data folder (default $LOCALMEM_BENCH_DATA)")
    args = parser.parse_args(argv)
    data.use_root(args.data)
    n, repeats = (40, 2) if args.quick else (150, 3)
    from localmem.bench.env import describe

    results: dict[str, Any] = {"command": " ".join(["python -m localmem.bench.speed", *(argv or sys.argv[1:])]),
                               "machine": {k: v for k, v in describe("cpu").items() if k in ("cpu", "cores_usable")}}
    path = args.out / "results.json"
    if path.is_file():  # sections not rerun keep their last figures
        results = json.loads(path.read_text()) | {"command": results["command"], "machine": results["machine"]}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for section in args.sections:
            print(f"speed: {section}", flush=True)
            start = time.perf_counter()
            if section == "embed":
                results["embed"] = run_embed(n, 256 if args.quick else 512, repeats)
            elif section == "quality":
                results["quality"] = run_quality(args.scifact_docs)
            elif section == "search":
                results["search"] = run_search(n, repeats, work)
            elif section == "cold":
                results["cold"] = run_cold(3 if args.quick else 5, work)
            elif section == "ingest":
                results["ingest"] = run_ingest(50 if args.quick else 200, 300 if args.quick else 1000, work)
            else:
                results["load"] = run_load(work, *((200, 20) if args.quick else (600, 60)))
            results[section]["elapsed_s"] = time.perf_counter() - start
            # After every section: a long run cut short keeps what it measured.
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(results, indent=2, default=str))
            (args.out / "report.md").write_text(report(results))
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
