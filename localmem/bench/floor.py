"""The floor: an exact top-k scan in numpy over the same vectors a store would search.

Anything a vector store adds on top of this (RPC, serialisation, filtering, an
index's bookkeeping) is overhead that the ratios in the report make visible.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
from typing import Any

import numpy as np
import numpy.typing as npt

from localmem.protocols import Vectors

Ids = npt.NDArray[np.int64]


def single_threaded_blas() -> contextlib.AbstractContextManager[Any]:
    """Limit OpenBLAS to one thread while the floor is timed.

    With torch (or faiss) loaded, a multi-threaded OpenBLAS matrix-vector product over more
    than ~1,000 rows stalls for ~8 ms per call on these machines (a thread hand-off, not
    arithmetic: one thread does 5,000 x 384 in ~0.25 ms). A floor is only a floor if it is
    not slowed by that, so the scan runs single-threaded; the stores are measured as shipped.
    """
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")
    except ImportError:
        return contextlib.nullcontext()
    limits: contextlib.AbstractContextManager[Any] = threadpoolctl.threadpool_limits(1, user_api="blas")
    return limits


def blas_limit_available() -> bool:
    return importlib.util.find_spec("threadpoolctl") is not None


def scores(metric: str, matrix: Vectors, query: Vectors) -> npt.NDArray[np.float32]:
    """localmem's higher-is-better score of every row: cosine, inner product, or 1 - d/2 (squared L2)."""
    if metric == "IP":
        out = matrix @ query
    elif metric == "COSINE":
        norms = np.linalg.norm(matrix, axis=1) * float(np.linalg.norm(query))
        out = (matrix @ query) / np.maximum(norms, 1e-12)
    else:
        diff = matrix - query
        out = 1.0 - np.einsum("ij,ij->i", diff, diff) / 2.0
    return np.asarray(out, dtype=np.float32)


def top_k(values: npt.NDArray[np.float32], k: int) -> Ids:
    """Row numbers of the k highest values, best first (argpartition: O(N), then sort k)."""
    k = min(k, len(values))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-values, k - 1)[:k]
    return part[np.argsort(-values[part], kind="stable")].astype(np.int64)


def unit_scan(matrix: Vectors, query: Vectors, k: int) -> Ids:
    """The cosine floor for unit vectors: one matrix-vector product and a partial sort."""
    return top_k(matrix @ query, k)
