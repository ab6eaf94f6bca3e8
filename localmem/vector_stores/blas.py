"""One BLAS thread while a Milvus Lite search runs.

Why: Milvus Lite's engine runs inside this process and scores a query with a numpy
matrix-vector product over the rows that pass the scope filter. With torch loaded,
a multi-threaded OpenBLAS product over more than ~1k rows spends most of its time
handing work between threads: 5,000 x 384 took 1.3 ms with 2 threads and 0.12 ms
with one. Measured interleaved on 2 cores, one search in a 3,435-memory scope: p50
10.2 ms -> 7.7 ms; in a 400-memory scope no difference (5.9 vs 6.1 ms).

OpenBLAS's pool is process-wide, so the limit is held only for one search call, by
threadpoolctl, which lets one thread at a time own the setting: if another thread
holds a limit already, ours is a no-op (that search just runs as it would have),
and the limit is always released by the thread that took it, on error too.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Any

_lock = threading.Lock()
_controller: Any = None


def single_threaded_blas() -> AbstractContextManager[Any]:
    """A context holding BLAS pools (OpenBLAS, MKL, BLIS) at one thread; enter it in the calling thread."""
    global _controller
    with _lock:
        if _controller is None:
            # Built on first use: it lists the BLAS libraries loaded at that point, and by
            # the first search numpy and Milvus Lite's engine are loaded. Costs ~50 ms once;
            # each limit after that costs ~15 us.
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
        controller = _controller
    limiter: AbstractContextManager[Any] = controller.limit(limits=1, user_api="blas")
    return limiter
