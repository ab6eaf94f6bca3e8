"""Search latency vs corpus size, per Milvus index type, filtered and not, against the floor.

For every size N the same queries run against: the floor (exact numpy scan over the
unit vectors, with the filtered variant scanning only that user's rows), and a Milvus
Lite collection per index type (COSINE, localmem's default metric). Query embedding is
timed once per query (it does not depend on N or the index) and added to each store's
time query by query, so "total" is what a caller of search() would wait for.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np

from localmem.bench import floor, milvus_direct
from localmem.bench.data import corpus_source, latency_corpus, latency_queries
from localmem.bench.embedding import Embedders, normalise
from localmem.bench.timing import Stats, elementwise_sum, median_of_passes, time_each
from localmem.protocols import Vectors
from localmem.vector_stores import lite


def run(emb: Embedders, *, sizes: list[int], n_queries: int, seed: int, repeats: int, warmup: int, k: int,
        workdir: Path, index_types: tuple[str, ...] = milvus_direct.INDEX_TYPES) -> dict[str, Any]:
    queries = latency_queries(n_queries, seed)
    embed_passes = time_each(lambda q: emb.default.embed([q]), queries, warmup=warmup, repeats=repeats)
    qvecs = emb.default.embed(queries)
    texts, users = latency_corpus(max(sizes), seed)
    print(f"latency: corpus of {len(texts)} texts, {len(queries)} queries", flush=True)
    corpus = normalise(emb.embed_raw_cached(texts, progress=True))
    out: dict[str, Any] = {"device": emb.device, "corpus": corpus_source(), "queries": len(queries), "k": k,
                           "repeats": repeats,
                           "floor_blas_single_threaded": floor.blas_limit_available(),
                           "embed": median_of_passes(embed_passes).to_dict(), "sizes": {}}
    client = lite.open_client(workdir / "latency.db")
    try:
        for n in sorted(sizes):
            rng = random.Random(seed + n)
            # Filter on the user of a random row, so every filtered query has matches.
            filter_users = [users[rng.randrange(n)] for _ in queries]
            out["sizes"][str(n)] = _one_size(client, corpus[:n], users[:n], qvecs, filter_users, embed_passes,
                                             k=k, warmup=warmup, repeats=repeats, index_types=index_types)
    finally:
        lite.close_client(client, workdir / "latency.db")  # stops the engine before the run removes the folder
    return out


def _one_size(client: Any, corpus: Vectors, users: list[str], qvecs: Vectors, filter_users: list[str],
              embed_passes: list[list[float]], *, k: int, warmup: int, repeats: int,
              index_types: tuple[str, ...]) -> dict[str, Any]:
    n = len(corpus)
    rows_of = {u: np.flatnonzero(np.asarray(users) == u) for u in set(filter_users)}
    cases = list(range(len(qvecs)))
    exact = {"unfiltered": [floor.unit_scan(corpus, qvecs[i], k) for i in cases],
             "filtered": [rows_of[filter_users[i]][floor.unit_scan(corpus[rows_of[filter_users[i]]], qvecs[i], k)]
                          for i in cases]}
    with floor.single_threaded_blas():
        floors = {
            "unfiltered": time_each(lambda i: floor.unit_scan(corpus, qvecs[i], k), cases, warmup=warmup,
                                    repeats=repeats),
            "filtered": time_each(lambda i: floor.unit_scan(corpus[rows_of[filter_users[i]]], qvecs[i], k), cases,
                                  warmup=warmup, repeats=repeats),
        }
    result: dict[str, Any] = {"floor": {}, "indexes": {}}
    floor_total: dict[str, Stats] = {}
    for mode, passes in floors.items():
        floor_total[mode] = median_of_passes(elementwise_sum(embed_passes, passes))
        result["floor"][mode] = {"scan": median_of_passes(passes).to_dict(), "total": floor_total[mode].to_dict()}
    qlists = [q.tolist() for q in qvecs]
    for index_type in index_types:
        name = f"lat_{index_type.lower()}_{n}"
        print(f"  N={n}: {index_type} build", flush=True)
        build = milvus_direct.create(client, name, corpus, users, index_type, "COSINE")
        entry: dict[str, Any] = {"build": build.to_dict()}
        for mode in ("unfiltered", "filtered"):
            found: dict[int, set[int]] = {}  # the last pass's results: recall costs no extra searches

            def call(i: int, mode: str = mode, index_type: str = index_type, name: str = name,
                     found: dict[int, set[int]] = found) -> None:
                user = filter_users[i] if mode == "filtered" else None
                hits = milvus_direct.search(client, name, qlists[i], k, index_type, "COSINE", user)
                found[i] = {h[0] for h in hits}

            passes = time_each(call, cases, warmup=warmup, repeats=repeats)
            store = median_of_passes(passes)
            total = median_of_passes(elementwise_sum(embed_passes, passes))
            recall = float(np.mean([len(found[i] & set(exact[mode][i].tolist())) / max(1, len(exact[mode][i]))
                                    for i in cases]))
            entry[mode] = {"store": store.to_dict(), "total": total.to_dict(),
                           "ratio_total_to_floor": total.ratio(floor_total[mode]),
                           "ratio_store_to_scan": store.ratio(median_of_passes(floors[mode])),
                           f"recall_at_{k}_vs_exact": recall}
        result["indexes"][index_type] = entry
        client.drop_collection(name)
    return result
