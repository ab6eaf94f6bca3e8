"""The record of files ``models prepare`` derives from packaged weights (the ONNX exports).

The committed manifest names files whose bytes are known in advance. An export's
bytes are not: they depend on the torch exporter's version. So a derived file is
recorded where it is made, in ``<models>/onnx/<model>/prepared.json``: its size
and sha256, the fingerprint of the weights it came from, and how closely its
vectors matched the torch path on fixed texts when it was made. ``models verify``
and ``doctor`` re-hash the files against the record; loading checks size and
mtime only (hashing 90 MB on every start would cost ~0.2 s) and that the record
belongs to the weights in use.

``verify_models`` is ``models verify`` with these files (export.prepare_models is
``models prepare`` with them): models.py, below the embedders, is handed the ONNX
step rather than importing it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from localmem import models
from localmem.embedders.identity import fingerprint_from_sums
from localmem.errors import ModelError
from localmem.models import ModelEntry, Verification

# The bundled embedder that 'models prepare' also exports to ONNX (see export.py).
ONNX_EXPORTED = "all-MiniLM-L6-v2"
RECORD = "prepared.json"
FORMAT = 1
# How the int8 file is made; recorded, and a file made otherwise is made again by `models prepare`.
# Only the weight matrices: the embedding tables cost no arithmetic, and quantising them too cost
# LoCoMo hit@5 ~0.006 (exact scan). Weights in 7 bits (reduce_range): on CPUs without VNNI (AVX2)
# onnxruntime multiplies uint8 activations by int8 weights with an instruction that adds pairs of
# products into 16 bits, which 255 x 127 x 2 overflows and 255 x 64 x 2 does not, so every x86 CPU
# computes the same products. The 8-bit recipe before this lost LoCoMo hit@5 0.011 against fp32 on an
# AVX2 host (the speed benchmark's committed figure then) and 0.001 on an AVX-512 VNNI one.
INT8_RECIPE = "dynamic, MatMul weights only, per channel, 7-bit (reduce_range)"


@dataclass(frozen=True)
class DerivedFile:
    variant: str  # "fp32" or "int8"
    path: str  # relative to the record's folder
    size: int
    mtime_ns: int
    sha256: str
    min_cosine_vs_torch: float  # over the fixed check texts, when made


@dataclass(frozen=True)
class PreparedRecord:
    model: str
    source_fingerprint: str
    files: tuple[DerivedFile, ...]
    made_with: dict[str, str]

    def file(self, variant: str) -> DerivedFile | None:
        return next((f for f in self.files if f.variant == variant), None)


def export_dir(models_dir: Path, model: str) -> Path:
    return models_dir / "onnx" / model


def read(folder: Path) -> PreparedRecord | None:
    """The record in ``folder``, or None if there is none; ModelError if it is unreadable."""
    path = folder / RECORD
    if not path.is_file():
        return None
    try:
        raw: dict[str, Any] = json.loads(path.read_text())
        if raw.get("format") != FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT}")
        files = tuple(DerivedFile(**f) for f in raw["files"])
        return PreparedRecord(raw["model"], raw["source_fingerprint"], files, dict(raw.get("made_with", {})))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path} is unreadable ({exc}); run 'localmem models prepare' to rebuild it") from exc


def write(folder: Path, record: PreparedRecord) -> None:
    data = {"format": FORMAT, "model": record.model, "source_fingerprint": record.source_fingerprint,
            "files": [asdict(f) for f in record.files], "made_with": record.made_with}
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (RECORD + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, folder / RECORD)


def quick_problem(folder: Path, entry: DerivedFile) -> str:
    """Cheap load-time check (size and mtime against the record); "" when it holds."""
    path = folder / entry.path
    if not path.is_file():
        return f"{path} is missing"
    stat = path.stat()
    if stat.st_size != entry.size or stat.st_mtime_ns != entry.mtime_ns:
        return f"{path} changed since it was prepared"
    return ""


def full_problem(folder: Path, entry: DerivedFile) -> str:
    """The verify-time check: size and sha256 against the record; "" when it holds."""
    path = folder / entry.path
    if not path.is_file():
        return f"{path} is missing"
    if path.stat().st_size != entry.size:
        return f"{path} is {path.stat().st_size} bytes, the record says {entry.size}"
    digest = models.sha256_file(path)
    if digest != entry.sha256:
        return f"{path} sha256 {digest[:12]}… != recorded {entry.sha256[:12]}…"
    return ""


def verify_models(directory: Path | None = None) -> list[Verification]:
    """``models.verify`` with the ONNX exports checked against their record."""
    return models.verify(directory, lambda entry, folder: verify_onnx(entry, folder)
                         if entry.name == ONNX_EXPORTED else [])


def verify_onnx(entry: ModelEntry, directory: Path | None = None) -> list[Verification]:
    """Check the ONNX exports against their record (size, sha256) and the record against the weights."""
    folder = export_dir(directory or models.models_dir(), entry.name)
    label = f"{entry.name} (onnx)"
    try:
        record = read(folder)
    except ModelError as exc:
        return [Verification(label, folder, False, str(exc))]
    if record is None:
        return [Verification(label, folder, False, f"no ONNX export in {folder} (run 'localmem models prepare'; "
                                                   "until then the embedder runs on torch)")]
    if record.source_fingerprint != fingerprint_from_sums({f.path: f.sha256 for f in entry.files}):
        return [Verification(label, folder, False, "the export was made from other weights than the manifest's "
                                                   "(run 'localmem models prepare')")]
    return [Verification(f"{entry.name} (onnx {f.variant})", folder / f.path, not problem, problem)
            for f in record.files for problem in [full_problem(folder, f)]]
