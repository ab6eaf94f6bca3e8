"""Which embedder runs: ONNX Runtime on CPU when an export of these weights is prepared, else torch.

``backend: auto`` (the default): an explicit ``cuda``/``mps`` device, or a torch
build that can see an accelerator, means torch (sentence-transformers); on a CPU
the prepared ONNX export of the same weights, if ``models prepare`` made one; else
torch. Whether an accelerator is possible is read from torch's version file
without importing torch (a CPU wheel says ``cuda = None``), so a CPU process never
pays torch's ~2 s import. The identity (a content fingerprint of the weights) is
the same on every path: see identity.py.
"""

from __future__ import annotations

import importlib.util
import platform
import re
import sys
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from localmem.config import EmbedderConfig
from localmem.embedders import identity as ident
from localmem.embedders import prepared
from localmem.embedders.sentence_transformers import DEFAULT_EMBEDDER
from localmem.errors import ConfigError, LocalmemWarning, ModelError
from localmem.protocols import Embedder, EmbedderIdentity

BACKENDS = ("auto", "torch", "onnx", "onnx-int8")
# Which export ``auto`` uses on a CPU for a new store: fp32, whose vectors are torch's. int8 passes the
# exact-scan gate #13 set (SciFact test nDCG@10 and LoCoMo hit@5 within 0.01 of fp32: -0.002 / -0.002) at
# 2.5x the speed, but paired query by query over larger sets (the speed benchmark's quality section) it
# leans down on both: SciFact nDCG@10 over all 1,109 claims -0.003 (95% CI -0.008 to +0.002; worse on 107
# claims, better on 73, sign test p = 0.01), LoCoMo hit@5 over turns as episodes store them -0.010 (CI
# -0.025 to +0.006), and through Memory.add/search LoCoMo -0.009. Its gain is bulk infer=False ingest (an
# infer=True add is the model's time), so the default keeps the exact vectors (docs/models.md, "Which
# embedder path runs"; the figures in CHANGELOG.md). Its vectors are another identity (cosine ~0.99 to
# fp32's); ``auto`` opens a store with the precision that filled it (``alternatives``), so changing this
# never locks a store out.
DEFAULT_ONNX_VARIANT = "fp32"
_VARIANT = {"onnx": "fp32", "onnx-int8": "int8"}
_INT8 = "+int8"  # appended to the name and fingerprint of the fp32 identity
_FILES = {"fp32": "model.onnx", "int8": "model-int8.onnx"}


@dataclass(frozen=True)
class Source:
    """The model folder an embedder reads, and what identifies its vectors."""

    folder: Path
    name: str
    fingerprint: str
    normalize_module: bool  # the module list itself ends in Normalize


def build_embedder(config: EmbedderConfig, *, identity: EmbedderIdentity | None = None) -> Embedder:
    """The embedder ``config`` asks for, on the fastest path this machine has.

    ``identity`` (backend auto only): one of ``alternatives``, the vectors an opened store holds.
    """
    if config.backend not in BACKENDS:
        raise ConfigError(f"embedder.config.backend must be one of {BACKENDS}, got {config.backend!r}")
    source = resolve_source(config)
    if identity is not None and identity.fingerprint.endswith(_INT8):
        # int8 runs on the CPU only, whatever else this machine has.
        config = replace(config, backend="onnx-int8", device="cpu")
    if config.backend == "torch" or (config.backend == "auto" and wants_torch(config.device)):
        return _torch(config, source)
    if config.device not in ("auto", "cpu"):
        raise ConfigError(f"embedder.config.backend {config.backend!r} runs on the CPU only; "
                          f"device {config.device!r} needs backend 'torch' or 'auto'")
    if config.backend != "auto":
        variant = _VARIANT[config.backend]
        found = find_export(source, variant)
        if isinstance(found, Path):
            return _onnx(config, source, found, variant)
        raise ModelError(f"embedder.config.backend is {config.backend!r} but {found or 'no ONNX export is prepared'} "
                         f"for {source.name}; run 'localmem models prepare'")
    # auto on a CPU: the default export for a new store, else fp32 (torch's vectors), else torch itself.
    for variant in dict.fromkeys((DEFAULT_ONNX_VARIANT, "fp32") if identity is None else ("fp32",)):
        found = find_export(source, variant)
        if isinstance(found, Path):
            return _onnx(config, source, found, variant)
        if found:  # an export exists but is damaged or stale: say so, then try the next path
            warnings.warn(f"not using the ONNX {variant} export: {found}", LocalmemWarning, stacklevel=3)
    return _torch(config, source)


def alternatives(config: EmbedderConfig, chosen: EmbedderIdentity) -> tuple[EmbedderIdentity, ...]:
    """The bundled model's other identities ``auto`` can embed with here (int8 <-> fp32), best first.

    A store filled with one of them is opened with it (Memory asks the store; the store compares
    by content): a store an application filled with ``onnx-int8`` opens in ``localmem search``, and
    a change of machine (GPU or not) or of the default precision never locks anyone out.
    """
    if config.backend != "auto" or config.model:
        return ()
    source = resolve_source(config)
    fp32 = _identity(config, source, dims=_hidden_size(source.folder))
    int8 = _int8_identity(fp32)
    others = [fp32] if chosen.fingerprint != fp32.fingerprint else []  # an fp32 export or torch: always
    if chosen.fingerprint != int8.fingerprint and isinstance(find_export(source, "int8"), Path):
        others.append(int8)
    return tuple(others)


def resolve_source(config: EmbedderConfig) -> Source:
    """The model folder and its fingerprint: the manifest's sums for the bundled model, else hashed."""
    from localmem.models import find_entry, resolve_model

    if not config.model:
        entry = find_entry(DEFAULT_EMBEDDER)
        folder = resolve_model(DEFAULT_EMBEDDER)
        fingerprint = ident.fingerprint_from_sums({f.path: f.sha256 for f in entry.files})
        return Source(folder, DEFAULT_EMBEDDER, fingerprint, ident.has_normalize_module(folder))
    folder = Path(config.model).expanduser()
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise ModelError(f"embedder model folder {folder} is missing or incomplete (no config.json); give a local "
                         "sentence-transformers folder, or run 'localmem models prepare'")
    try:
        fingerprint = ident.fingerprint_folder(folder)
    except ValueError as exc:
        raise ModelError(f"cannot identify the embedder at {folder}: {exc}") from exc
    return Source(folder, folder.resolve().name, fingerprint, ident.has_normalize_module(folder))


def wants_torch(device: str) -> bool:
    """True for an explicit accelerator, or ``auto`` where torch could see CUDA, ROCm or MPS."""
    if device != "auto":
        return device != "cpu"
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return True  # Apple silicon: MPS
    build = _torch_build()
    if build is None:
        return False  # no torch at all
    if build == "cpu":
        return False
    from localmem.devices import resolve_device

    return resolve_device("auto") != "cpu"  # a CUDA/ROCm build: ask it (imports torch)


def find_export(source: Source, variant: str) -> Path | str:
    """The export file of these weights, or why there is none ("" when simply not prepared)."""
    from localmem.models import models_dir

    # Only the bundled model is exported; a copy of it elsewhere has its fingerprint and may use it.
    folder = prepared.export_dir(models_dir(), DEFAULT_EMBEDDER)
    try:
        record = prepared.read(folder)
    except ModelError as exc:
        return str(exc)
    if record is None:
        return ""
    if record.source_fingerprint != source.fingerprint:
        if source.name != DEFAULT_EMBEDDER:
            return ""  # a user model with no export of its own: torch, quietly
        return f"the export in {folder} was made from other weights than {source.folder}"
    entry = record.file(variant)
    if entry is None:
        return f"the export in {folder} has no {variant} variant"
    if variant == "int8" and record.made_with.get("int8") != prepared.INT8_RECIPE:
        return f"the int8 export in {folder} was made by an older recipe"
    problem = prepared.quick_problem(folder, entry)
    if problem and prepared.full_problem(folder, entry):  # size/mtime moved: the sha256 decides
        return problem
    return folder / entry.path


def _torch(config: EmbedderConfig, source: Source) -> Embedder:
    from localmem.embedders.sentence_transformers import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(config, model_path=source.folder,
                                       identity=_identity(config, source, dims=None))


def _onnx(config: EmbedderConfig, source: Source, model_file: Path, variant: str) -> Embedder:
    from localmem.embedders.onnx import OnnxEmbedder

    identity = _identity(config, source, dims=_hidden_size(source.folder))
    if variant == "int8":
        identity = _int8_identity(identity)
    return OnnxEmbedder(source.folder, model_file, identity, batch_size=config.batch_size, label=f"onnx-{variant}")


def _int8_identity(fp32: EmbedderIdentity) -> EmbedderIdentity:
    # int8 vectors agree with torch's only to cosine ~0.95-0.99 (short texts worst): not the same
    # vectors, so not the same identity; a store filled by one path is never searched with the other.
    return replace(fp32, name=fp32.name + _INT8, fingerprint=fp32.fingerprint + _INT8)


def _identity(config: EmbedderConfig, source: Source, dims: int | None) -> EmbedderIdentity:
    # dims=0 means "the torch model will tell"; SentenceTransformerEmbedder fills it in.
    return EmbedderIdentity(name=source.name, dims=dims or 0,
                            normalized=config.normalize or source.normalize_module, fingerprint=source.fingerprint)


def _hidden_size(folder: Path) -> int:
    import json

    try:
        return int(json.loads((folder / "config.json").read_text())["hidden_size"])
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"cannot read hidden_size from {folder / 'config.json'}: {exc}") from exc


def _torch_build() -> str | None:
    """'cpu' for a CPU-only torch wheel, 'accelerator' for a CUDA/ROCm one, None without torch.

    Reads torch/version.py as text: importing torch costs ~2 s, this ~0.1 ms.
    """
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    version_file = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        text = version_file.read_text()
    except OSError:
        return "accelerator"  # cannot tell: let torch answer
    for key in ("cuda", "hip"):
        match = re.search(rf"^{key}\s*(?::[^=]*)?=\s*(.+)$", text, re.MULTILINE)
        if match and match.group(1).strip() != "None":
            return "accelerator"
    return "cpu"
