"""How many threads localmem's compute pools use, and that they sleep instead of spinning.

Why: torch and the faiss/OpenMP code inside Milvus Lite (same process) default to
one OpenMP thread per core that *spin-waits* at every barrier. On a machine that
does anything else, a spinning thread shares its core with the other load and
every barrier waits for it: with one busy-loop process beside it on 2 cores, a
search took ~500 ms instead of ~25 ms and an add(infer=False) ~530 ms instead
of ~55 ms (issue #13). Sleeping waits (``OMP_WAIT_POLICY=PASSIVE``) and small
intra-op pools remove the collapse.

Where: the OpenMP runtime (libgomp, as torch's and faiss's Linux wheels use it)
reads ``OMP_WAIT_POLICY`` once, when the library is loaded. So
``set_process_defaults`` runs at the top of ``localmem/__init__.py``, before any
module that could load torch, onnxruntime or Milvus Lite. A value the user
exported is kept. If torch was imported before localmem, the policy it loaded
with stays; the intra-op sizes below still apply.

What this module must not do: import torch or onnxruntime itself (callers pass
them in), or change pools it does not own for longer than a call.
"""

from __future__ import annotations

import os
from typing import Any

THREADS_ENV = "LOCALMEM_THREADS"
# Passive: a waiting thread sleeps on a futex. KMP_BLOCKTIME is Intel/LLVM OpenMP's spin
# time (ms) for builds that link libiomp/libomp instead of libgomp.
_PROCESS_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
# Past 4 threads one query (a few dozen tokens) gains nothing: the work is too small to split.
_MAX_INTRA_OP = 4


def set_process_defaults() -> None:
    """Ask OpenMP runtimes loaded from now on to sleep, not spin, while waiting; keep user values."""
    for key, value in _PROCESS_DEFAULTS.items():
        os.environ.setdefault(key, value)


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def intra_op_threads() -> int:
    """Threads for one embedding call: $LOCALMEM_THREADS, else the usable cores up to 4."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value >= 1:
            return value
        from localmem.errors import ConfigError

        raise ConfigError(f"{THREADS_ENV}={raw!r} is not a positive integer; unset it or give e.g. 2")
    return min(usable_cores(), _MAX_INTRA_OP)


def parallel_runs() -> int:
    """Embedding runs side by side, one thread each: $LOCALMEM_THREADS, else the usable cores."""
    return intra_op_threads() if os.environ.get(THREADS_ENV, "").strip() else usable_cores()


def configure_torch(torch: Any) -> None:
    """Size torch's intra-op pool (process-wide in torch) to ``intra_op_threads``."""
    wanted = intra_op_threads()
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)


def onnx_session_options(ort: Any, threads: int | None = None) -> Any:
    """SessionOptions with a sized intra-op pool whose threads sleep between calls.

    onnxruntime's own pool (not OpenMP) spins by default too; ``allow_spinning=0``
    makes idle workers block instead. One inter-op thread: the graph is a chain.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or intra_op_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: warnings about unused initialisers are noise
    return options
