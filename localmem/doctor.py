"""``localmem doctor``: is this machine ready to run localmem offline, and on what?

Each check returns a Finding; any ``fail`` makes the verdict fail. Checks only
read: they never prepare models, create a store or touch the network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str


def run_checks(store_uri: str | None) -> list[Finding]:
    findings = [*_models(), _device(), _llama()]
    if store_uri is not None:
        findings += [_store(store_uri), _history(store_uri)]
    findings.append(_offline())
    return findings


def verdict(findings: list[Finding]) -> bool:
    return all(f.status != "fail" for f in findings)


def _models() -> list[Finding]:
    from localmem import models
    from localmem.embedders import prepared

    out = []
    for entry in models.load_manifest():
        result = models.verify_entry(entry)
        if result.ok:
            out.append(Finding(f"model {entry.name}", "ok", f"{result.path} matches the manifest (sha256)"))
        elif entry.source_package and not result.path.exists() and _importable(entry.source_package):
            out.append(Finding(f"model {entry.name}", "warn",
                               f"not in {result.path.parent}; {entry.source_package} is installed and is read from "
                               "there (or run 'localmem models prepare')"))
        else:
            out.append(Finding(f"model {entry.name}", "fail", result.problem))
        if entry.name == prepared.ONNX_EXPORTED:
            out += [_onnx_finding(v) for v in prepared.verify_onnx(entry)]
    return out


def _onnx_finding(result: object) -> Finding:
    from localmem.models import Verification

    assert isinstance(result, Verification)
    if result.ok:
        return Finding(f"model {result.name}", "ok", f"{result.path} matches its prepare record (sha256)")
    # A missing export only costs speed (torch runs instead); a damaged one is a failure.
    missing = "no ONNX export" in result.problem
    return Finding(f"model {result.name}", "warn" if missing else "fail", result.problem)


def _device() -> Finding:
    from importlib import metadata

    from localmem.embedders.select import wants_torch
    from localmem.threads import intra_op_threads

    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        return Finding("device", "fail", "torch is not installed: pip install torch==2.13.0")
    threads = f"{intra_op_threads()} intra-op thread(s), OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}"
    if not wants_torch("auto"):
        # A CPU-only torch build is known from its version file: no 2 s torch import for this check.
        return Finding("device", "ok", f"cpu: embedder on ONNX Runtime when exported (int8 for a store of int8 "
                                        f"vectors), else torch {version}; {threads}")
    import torch

    from localmem.devices import resolve_device

    device = resolve_device("auto")
    if device == "cuda":
        return Finding("device", "ok", f"cuda ({torch.cuda.get_device_name(0)}), torch {version}; embedder on torch")
    return Finding("device", "ok", f"{device}, torch {version}; embedder on torch; {threads}")


def _llama() -> Finding:
    try:
        import llama_cpp
    except ImportError:
        return Finding("llama.cpp", "fail", "llama-cpp-python is not installed: pip install llama-cpp-python")
    gpu = bool(llama_cpp.llama_supports_gpu_offload())
    backend = "with a GPU backend: layers are offloaded" if gpu else "CPU only (rebuild with CMAKE_ARGS for a GPU)"
    return Finding("llama.cpp", "ok", f"llama-cpp-python {llama_cpp.__version__}, {backend}")


def _store(uri: str) -> Finding:
    from localmem.config import VectorStoreConfig
    from localmem.vector_stores.milvus import MilvusStore

    health = MilvusStore.probe(VectorStoreConfig(uri=uri))
    return Finding("store", health.status, health.detail)


def _history(uri: str) -> Finding:
    """The store's history database, read only: its events, and work a crash or close left for the next open."""
    import sqlite3

    from localmem.config import MemoryConfig, VectorStoreConfig

    path = MemoryConfig(vector_store=VectorStoreConfig(uri=uri)).resolved_history_path()
    if not path.exists():
        return Finding("history", "ok", f"{path}: none yet (made by the first write)")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # names from the tuple below
                      for t in ("history", "intents", "jobs") if t in tables}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return Finding("history", "fail", f"{path} cannot be read as localmem's history: {exc}")
    detail = f"{path}: {counts.get('history', 0)} events"
    if counts.get("intents"):
        detail += (f"; {counts['intents']} batch(es) cut short by a crash, finished by the next open "
                   "(store and history then agree)")
    if counts.get("jobs"):
        detail += (f"; {counts['jobs']} add() call(s) awaiting background extraction: they run when a Memory opens "
                   "with background_extraction (or serve --background-extraction), or with its first add(infer=True)")
    return Finding("history", "warn" if counts.get("intents") else "ok", detail)


def _offline() -> Finding:
    forced = [k for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") if os.environ.get(k) == "1"]
    note = f"{', '.join(forced)} set" if forced else "set by localmem for its own process when it loads a model"
    return Finding("offline", "ok", f"no downloads, no telemetry; Hugging Face offline mode: {note}")


def _importable(package: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(package.replace("-", "_")) is not None
