"""report.md: the figures of results.json as tables, with what they mean."""

from __future__ import annotations

from typing import Any

from localmem.bench import milvus_direct, quality
from localmem.bench.datasets import FETCH_HINT

METRIC_NOTE = """\
**Why the rankings coincide for unit vectors.** For vectors with |a| = |b| = 1,
cosine(a, b) = a·b (inner product), and the squared Euclidean distance is
|a - b|² = |a|² + |b|² - 2a·b = 2 - 2·cos(a, b). All three are monotone functions of the
same number, so they order any set of candidates identically; the top-k lists differ
only where scores tie (float rounding, duplicate texts). localmem's L2 score
1 - d/2 undoes that transformation, so with the default (normalised) embedder a `threshold`
means the same under COSINE, IP and L2: it is a cosine similarity.

**Squared L2.** Milvus reports L2 "distance" as the *squared* Euclidean distance d = |a - b|²
(it skips the square root, which preserves the order). With unit vectors d lies in [0, 4]:
0 for identical directions, 2 for orthogonal ones, 4 for opposite ones. A threshold on the raw
distance is therefore on a squared scale (d = 0.5 is |a - b| ≈ 0.71, cosine 0.75).

**Without normalisation** (the Normalize module stripped, `normalize=False`): cosine is unchanged
(it normalises internally), inner product rewards long vectors (a text's norm leaks into its
rank), and L2 penalises vectors far from the query in length as well as direction. Scores
are then no longer on a common scale: IP is unbounded and 1 - d/2 can be far below 0, so a
threshold tuned for one model or metric does not transfer.
"""


def _f(value: Any, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_f(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return [*lines, ""]


def render(results: dict[str, Any], pngs: list[str]) -> str:
    env = results["environment"]
    gpu = env["gpu"]["name"] if env.get("gpu") else "none"
    lines = [f"# localmem benchmarks ({results['mode']} run)", "", *glance(results),
             "## How this ran", "",
             f"- Command: `{results['command']}`; seed {results['seed']}; took {results['elapsed_s']:.0f} s",
             f"- CPU: {env['cpu']} ({env['cores_usable']} usable cores, torch threads {env['torch_threads']}); "
             f"GPU: {gpu}; embedder device: **{env['embedder_device']}**",
             f"- Commit {env['git']['commit'] or 'n/a (installed package)'}"
             f"{' (dirty tree)' if env['git']['dirty'] else ''}; "
             f"pymilvus {env['packages']['pymilvus']}, milvus-lite {env['packages']['milvus-lite']}, "
             f"torch {env['packages']['torch']}, sentence-transformers {env['packages']['sentence-transformers']}",
             f"- Thread cap (`--threads`, torch + OpenMP + BLAS): {results['options'].get('threads') or 'none'}; "
             "Milvus Lite's engine runs in this process and shares these pools.",
             "- Latencies are per call, one caller, warm-up excluded, median over repeats of each percentile. "
             "QPS = 1000 / mean.", ""]
    if "product" in results:
        lines += _product(results["product"])
    if "quality" in results:
        lines += quality.render(results["quality"])
    if "latency" in results:
        lines += _latency(results["latency"])
    if "scoring" in results:
        lines += _scoring(results["scoring"])
    if "ingestion" in results:
        lines += _ingestion(results["ingestion"])
    if "retrieval" in results:
        lines += _retrieval(results["retrieval"])
    if results.get("skipped"):
        lines += ["## Skipped for want of data", "",
                  *[f"- {s['what']}: needs {', '.join(s['needs'])}" for s in results["skipped"]],
                  "", f"Get the data with `{FETCH_HINT} "
                  f"{' '.join(sorted({n for s in results['skipped'] for n in s['needs']}))}`, or point `--data DIR` "
                  "at a copy.", ""]
    lines += ["## Figures", ""] + [f"![{p}]({p})" for p in pngs] + [""]
    return "\n".join(lines)


def glance(results: dict[str, Any]) -> list[str]:
    """The figures a user came for, first: Memory.search, both add() modes, memory quality."""
    rows: list[list[str]] = []
    product = results.get("product")
    if product and product["sizes"]:
        for n in sorted(product["sizes"], key=int):
            size = product["sizes"][n]
            s, r = size["search"], size["ratio_to_floor"]
            rows.append([f"Memory.search, {n} memories stored", f"p50 {s['p50_ms']:.1f} ms, p95 {s['p95_ms']:.1f} ms",
                         f"{_f(r['p50_ms'])}× / {_f(r['p95_ms'])}× the floor (p50 / p95)"])
        lat = product["add_infer_false"]["latency"]
        rows.append(["add(infer=False), one turn per call", f"p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms",
                     f"{product['add_infer_false']['turns']} turns"])
        infer = product["add_infer_true"]
        if "skipped" in infer:
            rows.append(["add() default (infer=True, bundled model)", "not measured", infer["skipped"]])
        else:
            rows.append(["add() default (infer=True, bundled model), one turn per call",
                         f"p50 {infer['latency']['p50_ms'] / 1e3:.2f} s, p95 {infer['latency']['p95_ms'] / 1e3:.2f} s",
                         f"{infer['turns']} turns"])
    locomo = results.get("quality", {}).get("locomo")
    if locomo:
        named = {**{f"{k} ({sum(locomo['turns'].values())} turns)": v for k, v in locomo["rows"].items()
                    if k == "infer=False"},
                 **{f"{k} ({sum(locomo['infer_subset']['turns'].values())} turns)": v
                    for k, v in locomo.get("infer_subset", {}).get("rows", {}).items()
                    if k in ("infer=False", "infer=True")}}
        for name, row in named.items():
            rows.append([f"LoCoMo memory quality, {name}", f"evidence hit@5 {row['all']['evidence_hit_at_5']:.3f}, "
                         f"answer recall@5 {row['all']['answer_recall_at_5']:.3f}",
                         f"{row['all']['questions']} questions"])
    if not rows:
        return []
    lines = ["## At a glance", "", *_table(["what", "measured", "over"], rows)]
    if product:
        lines += [f"Memory.search and add() ran on a **generated** conversation ({product['turns']} turns in "
                  f"{product['sessions']} sessions, synthetic.py), not on real data: compare with other generated "
                  "runs only. The floor is the same query embedding plus an exact numpy scan of the scope's "
                  "vectors, timed alternately with Memory.search in this run.", ""]
    return lines


def _product(product: dict[str, Any]) -> list[str]:
    lines = ["## Memory.search and add() (generated conversation)", "",
             f"One scope, {product['turns']} generated turns (two speakers, every other turn a fact about someone "
             f"else), one add(infer=False) per turn; at each size, {product['questions']} generated questions "
             f"(each answered by one turn) searched with the default settings, limit {product['k']}, "
             f"{product['repeats']} pass(es), timed alternately with the floor.", ""]
    rows = [[n, d["search"]["p50_ms"], d["search"]["p95_ms"], d["floor"]["p50_ms"], d["floor"]["p95_ms"],
             d["ratio_to_floor"]["p50_ms"], d["ratio_to_floor"]["p95_ms"], d["hit_at_5"]]
            for n, d in sorted(product["sizes"].items(), key=lambda kv: int(kv[0]))]
    lines += _table(["memories stored", "search p50 ms", "search p95 ms", "floor p50 ms", "floor p95 ms",
                     "p50 × floor", "p95 × floor", "hit@5"], rows)
    largest = product["sizes"][max(product["sizes"], key=int)]
    scores = largest.get("scores")
    if scores:
        lines += [f"Scores at {largest['memories']} memories: the answering memory's median "
                  f"{_f(scores['relevant'].get('p50'))}, unrelated results' {_f(scores['irrelevant'].get('p50'))}; "
                  f"`threshold={_f(scores['threshold_keeping_90pct_relevant'])}` keeps 90% of answering memories "
                  f"and {_f(scores['irrelevant_share_above_that_threshold'])} of unrelated ones.", ""]
    return lines


def _latency(lat: dict[str, Any]) -> list[str]:
    e = lat["embed"]
    blas = "applied" if lat.get("floor_blas_single_threaded") else "threadpoolctl missing: not applied"
    lines = ["## Search latency vs corpus size, per index type (pymilvus on Milvus Lite)", "",
             f"{lat['queries']} {_corpus(lat.get('corpus', 'locomo+memorybank'))}, k={lat['k']}, COSINE, "
             f"{lat['repeats']} repeat(s). Query embedding alone: p50 {e['p50_ms']:.2f} ms, "
             f"p95 {e['p95_ms']:.2f} ms. *Total* = embedding + vector search, per query; the **floor** is "
             "embedding + exact numpy scan over the same unit vectors (filtered: over that user's rows only). "
             "Ratios are to the floor's same percentile. Filter: `user_id == <one of 100 users>` (~1% of rows). "
             f"HNSW M={milvus_direct.HNSW_BUILD['M']}, efConstruction={milvus_direct.HNSW_BUILD['efConstruction']}, "
             f"ef={milvus_direct.HNSW_SEARCH['ef']}; IVF_FLAT nlist≈4√N, nprobe={milvus_direct.IVF_NPROBE}; "
             "AUTOINDEX is HNSW in Milvus Lite when faiss is installed. The floor's scan runs with OpenBLAS "
             f"limited to one thread ({blas}): "
             "with torch loaded, multi-threaded OpenBLAS stalls ~8 ms per matrix-vector product above ~1k rows. "
             "Milvus Lite runs in this process and is measured with default threads unless `--threads` is given.",
             ""]
    rows = []
    for n, size in sorted(lat["sizes"].items(), key=lambda kv: int(kv[0])):
        for mode in ("unfiltered", "filtered"):
            fl = size["floor"][mode]
            rows.append([n, mode, "floor", fl["scan"]["p50_ms"], fl["total"]["p50_ms"], fl["total"]["p95_ms"],
                         fl["total"]["p99_ms"], fl["total"]["qps"], 1.0, 1.0, "1.00", "–"])
            for index, entry in size["indexes"].items():
                m = entry[mode]
                recall = next(v for k, v in m.items() if k.startswith("recall_at"))
                rows.append([n, mode, index, m["store"]["p50_ms"], m["total"]["p50_ms"], m["total"]["p95_ms"],
                             m["total"]["p99_ms"], m["total"]["qps"], m["ratio_total_to_floor"]["p50_ms"],
                             m["ratio_total_to_floor"]["p99_ms"], recall,
                             _build(entry["build"])])
    low = sorted({f"{index} (N={n})" for n, size in lat["sizes"].items() for index, entry in size["indexes"].items()
                  if (next(v for k, v in entry["filtered"].items() if k.startswith("recall_at")) or 1.0) < 0.9})
    if low:
        lines += ["**Filtered search recall below 0.9 vs exact:** " + ", ".join(low) + ". A graph/IVF index searched "
                  "with a ~1% filter visits too few matching rows at these search parameters and can return fewer "
                  "than k hits; FLAT is exact and, filtered, no slower here.", ""]
    lines += _table(["N", "filter", "index", "search p50 ms", "total p50 ms", "total p95", "total p99", "QPS",
                     "p50 × floor", "p99 × floor", f"recall@{lat['k']} vs exact", "build"], rows)
    return lines


def _corpus(source: str) -> str:
    if source == "generated":
        return ("generated questions over a generated corpus (no LoCoMo / MemoryBank data: figures comparable "
                "only with other generated runs)")
    return "real questions (MemoryBank probing + LoCoMo) over their texts"


def _build(build: dict[str, Any]) -> str:
    return f"{build['insert_rows_per_s']:.0f} rows/s, index {build['index_s']:.1f} s"


def _scoring(sc: dict[str, Any]) -> list[str]:
    lines = ["## L2 vs cosine vs inner product", "",
             f"Normalize module found and stripped for the raw variant: {_f(sc['normalize_module_stripped'])}; "
             "normalise(raw) vs the default embedder, max abs difference: "
             f"{_f(sc['normalise_matches_default_max_abs_diff'], 8)}. Every (variant, metric) is an exact FLAT "
             "collection; LoCoMo questions are searched within their conversation.", ""]
    for name, ds in sc["datasets"].items():
        norms = ds["raw_norms"]
        lines += [f"### {name} ({ds['docs']} docs, {ds['queries']} queries; raw vector norms "
                  f"{norms['min']:.2f}–{norms['max']:.2f}, median {norms['p50']:.2f})", ""]
        rows = []
        for variant, per_metric in ds["variants"].items():
            for metric in milvus_direct.METRICS:
                m = per_metric[metric]
                q = m["quality"]
                s = m["scores"]
                rows.append([variant, metric, q.get("ndcg_at_10"), q["hit"]["5"], q["recall"]["5"],
                             q["recall"]["10"], m["store_latency"]["p50_ms"], m["agreement_with_exact_numpy_at_10"],
                             s["relevant"].get("p50"), s["irrelevant"].get("p50"),
                             s["threshold_keeping_90pct_relevant"], s["irrelevant_share_above_that_threshold"]])
        lines += _table(["vectors", "metric", "nDCG@10", "hit@5", "recall@5", "recall@10", "search p50 ms",
                         "top-10 = exact", "relevant score p50", "irrelevant p50", "threshold keeping 90% rel.",
                         "irrelevant above it"], rows)
        agree = [[v, *[pm["agreement_at_10"][k] for k in sorted(pm["agreement_at_10"])]]
                 for v, pm in ds["variants"].items()]
        keys = sorted(next(iter(ds["variants"].values()))["agreement_at_10"])
        lines += ["Top-10 overlap between metrics:", "", *_table(["vectors", *keys], agree)]
        lines += ["Top-10 overlap, normalised vs raw vectors, same metric: " + ", ".join(
            f"{k} {_f(v, 3)}" for k, v in ds["normalised_vs_raw_at_10"].items()), ""]
    return [*lines, METRIC_NOTE]


def _ingestion(ing: dict[str, Any]) -> list[str]:
    single, batched, bulk = ing["single"], ing["batched"], ing["store_bulk"]
    lines = ["## Ingestion", "",
             f"{'LoCoMo turns' if ing.get('texts', 'locomo') == 'locomo' else 'Generated facts (no LoCoMo data)'}, "
             "each mode into a fresh Milvus Lite folder; add() includes embedding, the "
             "duplicate check and the history write; the floor is pymilvus's own `insert` of the same texts "
             "and precomputed vectors into a bare collection of the same shape (BM25 function, FLAT), "
             "plus the flush a first search would pay.", ""]
    lines += _table(["mode", "memories", "memories/s", "latency"], [
        ["add(infer=False), one message per call", single["messages"], single["memories_per_s"],
         f"p50 {single['per_add']['p50_ms']:.1f} ms, p95 {single['per_add']['p95_ms']:.1f} ms per add"],
        [f"add(infer=False), {ing['batch_messages']} messages per call", batched["messages"],
         batched["memories_per_s"], f"{batched['per_add_ms']:.0f} ms per add"],
        [f"floor: pymilvus insert, {ing['bulk_records']} rows per call", bulk["records"], bulk["memories_per_s"],
         f"insert {bulk['insert_s']:.2f} s + flush {bulk['flush_s']:.2f} s"]])
    infer = ing["infer"]
    if "skipped" in infer:
        lines += [f"add(infer=True): skipped — {infer['skipped']}", ""]
    else:
        shown = {k: v for k, v in infer.items() if k != "examples"}  # examples stay in results.json
        lines += ["add(infer=True), from localmem/bench/extraction.py:", "", "```", _flat(shown), "```", ""]
    return lines


def _retrieval(ret: dict[str, Any]) -> list[str]:
    t = ret["targets"]
    p, f = ret["product"], ret["floor"]
    lines = ["## Full-product retrieval (LoCoMo dev)", "",
             f"{len(ret['conversations'])} conversations ({', '.join(ret['conversations'])}), {ret['memories']} "
             f"memories, {ret['questions']} category 1-4 questions; Memory.add(infer=False) per session, "
             "Memory.search(user_id=conversation). Floor: same query embedding + exact numpy cosine over the "
             "vectors Milvus holds for that conversation. The two are timed alternately, query by query.", ""]
    lines += _table(["path", "p50 ms", "p95 ms", "p99 ms", "hit@1", "hit@5", "hit@10", "recall@5", "recall@10"], [
        [name, d["latency"]["p50_ms"], d["latency"]["p95_ms"], d["latency"]["p99_ms"], d["quality"]["hit"]["1"],
         d["quality"]["hit"]["5"], d["quality"]["hit"]["10"], d["quality"]["recall"]["5"],
         d["quality"]["recall"]["10"]] for name, d in (("Memory.search", p), ("floor", f))])
    lines += [f"Issue #2 targets: search p50 = {_f(t['p50_ratio_to_floor'])} × floor (target ≤ {t['p50_target']}): "
              f"{_f(t['p50_met'])}; hit@5 {_f(t['hit_at_5'], 3)} vs floor {_f(t['floor_hit_at_5'], 3)}: "
              f"{_f(t['hit_at_5_met'])}.", "",
              "hit@5 by category (1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop): " + ", ".join(
                  f"{c}: {_f(v)}" for c, v in p["quality"]["hit_at_5_by_category"].items()), ""]
    infer = ret.get("infer", {})
    if "skipped" in infer:
        lines += [f"infer=True retrieval: skipped — {infer['skipped']}", ""]
    elif infer:
        lines += [f"### add(infer=True) vs add(infer=False) on a small haystack ({infer['conversation']})", "",
                  f"{infer['questions']} multi-/single-hop questions; haystack = their evidence turns ± "
                  f"{infer['neighbours']} neighbours ({infer['turns']} turns), one add() per turn, default LLM. "
                  "A memory counts for the turn whose add() created or updated it.", ""]
        lines += _table(["add mode", "memories", "add p50 ms", "add p95 ms", "hit@1", "hit@5", "recall@5"], [
            [mode, d["memories"], d["add_latency"]["p50_ms"], d["add_latency"]["p95_ms"], d["quality"]["hit"]["1"],
             d["quality"]["hit"]["5"], d["quality"]["recall"]["5"]]
            for mode, d in (("infer=False (raw turns)", infer["raw"]), ("infer=True (extracted facts)",
                                                                         infer["infer"]))])
    return lines


def _flat(value: Any, prefix: str = "") -> str:
    if isinstance(value, dict):
        return "\n".join(_flat(v, f"{prefix}{k}.") for k, v in value.items())
    return f"{prefix.rstrip('.')}: {_f(value, 3)}"
