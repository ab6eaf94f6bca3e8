"""Import a slow module on a background thread while the caller does other start-up work.

Why: a fresh process opening the default store spends ~0.8 s importing pymilvus (it pulls
in pandas and gRPC) and ~0.6 s loading the embedder (onnxruntime, tokenizers, the model).
Much of the embedder's load runs in native code without the GIL, so importing pymilvus
beside it takes ~0.25 s off a cold ``localmem search``. Python's per-module import locks make
the overlap safe; the caller joins before it uses the module, and an import that fails on the
thread is simply tried again (and raises) where the caller imports it.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable


def in_background(*modules: str) -> Callable[[], None]:
    """Start importing ``modules`` (in order) on a daemon thread; returns a function that waits for them."""
    wanted = [m for m in modules if m not in sys.modules]
    if not wanted:
        return _nothing
    thread = threading.Thread(target=_import_quietly, args=(wanted,), name="localmem-preload", daemon=True)
    thread.start()
    return thread.join


def store_modules(local_file: bool) -> Callable[[], None]:
    """pymilvus, and for a local folder Milvus Lite's engine, imported in the background."""
    return in_background("pymilvus", "milvus_lite") if local_file else in_background("pymilvus")


def _import_quietly(modules: list[str]) -> None:
    for module in modules:
        try:
            importlib.import_module(module)
        except BaseException:  # the caller's own import raises it again, where it is reported
            return


def _nothing() -> None:
    return None
