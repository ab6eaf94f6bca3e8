"""Does the embedder use an accelerator, and do its vectors match the CPU's? ``python -m localmem.bench.accelerator``

Builds the embedder as ``device: "auto"`` does for a store of full-precision vectors and as
``device: "cpu"`` with torch, embeds the same texts on both (the LoCoMo turns and questions when the
benchmark data is present, else generated sentences), and prints as JSON: the device auto chose, the
cosine between the two paths' vectors, whether each question's top 5 among the texts is the same, and
query / batch timings on each.
``--model DIR`` checks another copy of the weights (default: the bundled model).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from localmem.bench import data
from localmem.config import EmbedderConfig
from localmem.embedders.select import build_embedder
from localmem.protocols import Embedder

TEXTS = 300
QUERIES = 100


def sample() -> tuple[list[str], list[str]]:
    if data.has("locomo"):
        return [t.text for t in data.locomo_turns()[:TEXTS]], [q.text for q in data.locomo_questions()[:QUERIES]]
    texts = data.latency_corpus(TEXTS, seed=0)[0]
    return texts, data.latency_queries(QUERIES, seed=0)


def query_p50_ms(embedder: Embedder, queries: list[str], repeats: int = 3) -> float:
    for q in queries[:10]:
        embedder.embed([q])  # warm-up: kernels compiled, caches filled
    times = []
    for _ in range(repeats):
        for q in queries:
            start = time.perf_counter()
            embedder.embed([q])
            times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def texts_per_s(embedder: Embedder, texts: list[str], repeats: int = 3) -> float:
    embedder.embed(texts)
    best = min(_timed(embedder, texts) for _ in range(repeats))
    return len(texts) / best


def _timed(embedder: Embedder, texts: list[str]) -> float:
    start = time.perf_counter()
    embedder.embed(texts)
    return time.perf_counter() - start


def run(model: str | None) -> dict[str, Any]:
    texts, queries = sample()
    cpu = build_embedder(EmbedderConfig(model=model, device="cpu", backend="torch"))
    # auto as it embeds for a store of full-precision vectors: torch on an accelerator, the fp32 export on
    # a CPU (never int8, another identity: see embedders/select.py).
    auto = build_embedder(EmbedderConfig(model=model, device="auto"), identity=cpu.identity)
    try:
        out: dict[str, Any] = {"auto": {"class": type(auto).__name__, "device": getattr(auto, "device", "cpu")},
                               "identity_equal": auto.identity == cpu.identity}
        a, c = auto.embed(texts), cpu.embed(texts)
        cosine = (a * c).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(c, axis=1))
        out["cosine_auto_vs_cpu"] = {"min": float(cosine.min()), "mean": float(cosine.mean())}
        qa, qc = auto.embed(queries), cpu.embed(queries)
        top_a, top_c = (np.argsort(-(q @ m.T), axis=1)[:, :5] for q, m in ((qa, a), (qc, c)))
        out["same_top5_share"] = float(np.mean([set(x) == set(y) for x, y in zip(top_a, top_c, strict=True)]))
        out["query_p50_ms"] = {"auto": query_p50_ms(auto, queries), "cpu_torch": query_p50_ms(cpu, queries)}
        out["batch_texts_per_s"] = {"auto": texts_per_s(auto, texts), "cpu_torch": texts_per_s(cpu, texts)}
        out["texts"], out["queries"] = len(texts), len(queries)
        return out
    finally:
        auto.close()
        cpu.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a sentence-transformers folder (default: the bundled model)")
    parser.add_argument("--data", type=Path, help="benchmark data folder (default: the usual places)")
    args = parser.parse_args(argv)
    if args.data:
        data.use_root(args.data)
    print(json.dumps(run(args.model), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
