"""Prepare-time only: export a sentence-transformers model's transformer to ONNX, check it, quantise it.

Runs inside ``localmem models prepare`` (``prepare_models``: models.prepare with
this step; torch is imported here and nowhere on the ONNX runtime path). The
export is accepted only if, on ``CHECK_TEXTS``, every vector from onnxruntime
has cosine >= ``MIN_COSINE`` with the torch path's: then
both paths share one identity and may fill the same store. The int8 variant
(onnxruntime dynamic quantisation, per output channel) is checked the same way against
a looser floor and its measured closeness is recorded; whether it is the default
is decided by retrieval quality in benchmarks/, not here.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from localmem import models
from localmem.embedders import prepared
from localmem.embedders.identity import fingerprint_from_sums
from localmem.errors import DependencyError, ModelError
from localmem.models import ModelEntry, Progress
from localmem.protocols import EmbedderIdentity, Vectors

MIN_COSINE = 0.9999
# Measured: per-channel int8 keeps cosine 0.95-0.995 with torch's vectors (a one-word text is the worst);
# per-tensor quantisation fell to 0.84. int8 therefore has its own identity (embedders/select.py).
MIN_COSINE_INT8 = 0.95
OPSET = 17
# Short and long, plain and odd: what the check must hold for. Fixed, so records compare.
CHECK_TEXTS = (
    "I love hiking in the Alps with my dog.",
    "What is my sister's name?",
    "Caroline went to the LGBTQ support group on 7 May 2023 and found it powerful.",
    "a",
    "The mitochondria is the powerhouse of the cell; ATP synthase couples proton flow to phosphorylation.",
    "Mélanie prefers oat milk — never dairy — in her café au lait ☕.",
    "42",
    "User likes pizza",
    " ".join(["memory"] * 300),  # beyond max_seq_length: truncation must agree too
    "Remind me to call the dentist tomorrow at 9am about the crown replacement appointment.",
)


def export(folder: Path, out_dir: Path, model: str, source_fingerprint: str, *, quantize: bool = True) -> Path:
    """Write model.onnx (and model-int8.onnx) plus prepared.json into ``out_dir``; return out_dir."""
    torch, st_cls = _torch_modules()
    _require_mean_pooling(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    # No record while files are replaced: a half-done export is never loaded.
    (out_dir / prepared.RECORD).unlink(missing_ok=True)
    st_model = st_cls(str(folder), device="cpu", local_files_only=True)
    reference = np.asarray(st_model.encode(list(CHECK_TEXTS), convert_to_numpy=True, normalize_embeddings=True),
                           dtype=np.float32)
    files = []
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        fp32_tmp, int8_tmp = Path(tmp) / "model.onnx", Path(tmp) / "model-int8.onnx"
        with warnings.catch_warnings():
            # The tracer's notes on Python-side branches: the check below is what decides.
            warnings.simplefilter("ignore")
            _export_transformer(torch, st_model, fp32_tmp)
            if quantize:
                _quantize(fp32_tmp, int8_tmp)
        files.append(_accept(folder, fp32_tmp, out_dir / "model.onnx", "fp32", reference, MIN_COSINE))
        if quantize:
            files.append(_accept(folder, int8_tmp, out_dir / "model-int8.onnx", "int8", reference, MIN_COSINE_INT8))
    made_with = {p: _version(p) for p in ("torch", "onnxruntime", "onnx", "sentence-transformers")}
    made_with["opset"] = str(OPSET)
    if quantize:
        made_with["int8"] = prepared.INT8_RECIPE
    prepared.write(out_dir, prepared.PreparedRecord(model, source_fingerprint, tuple(files), made_with))
    return out_dir


def _torch_modules() -> tuple[Any, Any]:
    from localmem.embedders.sentence_transformers import force_offline

    force_offline()
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise DependencyError(f"exporting to ONNX needs torch and sentence-transformers: {exc}") from exc
    return torch, SentenceTransformer


def _require_mean_pooling(folder: Path) -> None:
    pooling = folder / "1_Pooling" / "config.json"
    try:
        config = json.loads(pooling.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot export {folder}: no readable 1_Pooling/config.json ({exc})") from exc
    modes = [k for k, v in config.items() if k.startswith("pooling_mode_") and v]
    if modes != ["pooling_mode_mean_tokens"]:
        raise ModelError(f"cannot export {folder}: the ONNX path does mean pooling only, the model uses {modes}")


def _export_transformer(torch: Any, st_model: Any, target: Path) -> None:
    """The transformer alone: (input_ids, attention_mask, token_type_ids) -> token vectors."""
    transformer = st_model[0].auto_model.eval()

    class TokenVectors(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.inner = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    sample = st_model.tokenizer(["an example sentence to trace", "two"], padding=True, return_tensors="pt")
    args = (sample["input_ids"], sample["attention_mask"],
            sample.get("token_type_ids", torch.zeros_like(sample["input_ids"])))
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "token_type_ids": {0: "batch", 1: "tokens"}, "token_vectors": {0: "batch", 1: "tokens"}}
    try:
        with torch.no_grad():
            torch.onnx.export(TokenVectors(), args, str(target), input_names=list(axes)[:3],
                              output_names=["token_vectors"], dynamic_axes=axes, opset_version=OPSET,
                              do_constant_folding=True, dynamo=False)
    except Exception as exc:
        raise ModelError(f"torch.onnx.export failed for {st_model}: {exc}") from exc


def _quantize(source: Path, target: Path) -> None:
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise DependencyError(f"int8 quantisation needs onnxruntime and onnx: {exc}") from exc
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                     op_types_to_quantize=["MatMul"])


def _accept(folder: Path, made: Path, target: Path, variant: str, reference: Vectors,
            floor: float) -> prepared.DerivedFile:
    """Compare the export's vectors with torch's; move it into place only if they agree."""
    from localmem.embedders.onnx import OnnxEmbedder
    probe = OnnxEmbedder(folder, made, EmbedderIdentity("check", reference.shape[1], True), label=variant)
    try:
        vectors = probe.embed(list(CHECK_TEXTS))
    finally:
        probe.close()
    cosine = float(np.min(np.sum(vectors * reference, axis=1)))
    if cosine < floor:
        raise ModelError(f"the {variant} ONNX export of {folder} disagrees with torch (min cosine {cosine:.6f} < "
                         f"{floor}); it was not installed")
    os.replace(made, target)
    stat = target.stat()
    return prepared.DerivedFile(variant, target.name, stat.st_size, stat.st_mtime_ns, models.sha256_file(target),
                                cosine)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def ensure(folder: Path, out_dir: Path, model: str, source_fingerprint: str) -> Path:
    """Export unless ``out_dir`` already holds a verified export of exactly these weights."""
    record = prepared.read(out_dir) if (out_dir / prepared.RECORD).is_file() else None
    if (record is not None and record.source_fingerprint == source_fingerprint and record.file("fp32")
            and record.file("int8") and record.made_with.get("int8") == prepared.INT8_RECIPE
            and not any(prepared.full_problem(out_dir, f) for f in record.files)):
        return out_dir
    return export(folder, out_dir, model, source_fingerprint)


def prepare_models(directory: Path | None = None, names: list[str] | None = None,
                   progress: Progress | None = None) -> list[Path]:
    """``models.prepare`` with the ONNX exports made after the embedder they come from."""
    return models.prepare(directory, names, progress, derive=_derive)


def _derive(entry: ModelEntry, directory: Path, progress: Progress | None) -> list[Path]:
    if entry.role != "embedder" or entry.name != prepared.ONNX_EXPORTED:
        return []
    if progress:
        progress(f"exporting {entry.name} to ONNX (fp32 and int8) and checking it against torch")
    return [prepare_onnx(entry, directory)]


def prepare_onnx(entry: ModelEntry, directory: Path) -> Path:
    """Derive the ONNX exports of a prepared embedder (torch runs here, at prepare time only)."""
    fingerprint = fingerprint_from_sums({f.path: f.sha256 for f in entry.files})
    return ensure(models.local_path(entry, directory), prepared.export_dir(directory, entry.name), entry.name,
                  fingerprint)
