"""An embedder's identity by content, and whether a collection's recorded identity matches it.

A collection remembers what filled it (``EmbedderIdentity``, stored as a
collection property). Keying that on a folder name refused the bundled model
copied elsewhere and accepted a different model in a folder of the same name.
The identity is now a fingerprint of the files that decide the vectors: the
weights, the transformer config, the tokenizer, the pooling and module list.
The torch and ONNX paths of the same weights share it: ``models prepare``
checks that their vectors agree (cosine >= 0.9999) before the export is used.

Files that only record which library version saved a folder
(config_sentence_transformers.json, tokenizer_config.json, special_tokens_map.json)
are left out, so a re-saved copy of the same model keeps its identity.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localmem.protocols import EmbedderIdentity

# The bundled model's name before identities were content-based: collections written by
# localmem 0.1 carry only this name.
LEGACY_BUNDLED_NAME = "all-MiniLM-L6-v2"
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_DECISIVE = ("config.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json",
             "tokenizer.json", "vocab.txt", *_WEIGHTS)


def decisive_files(paths: Iterable[str]) -> list[str]:
    """Of a model folder's relative file paths, those that decide its vectors, sorted."""
    return sorted(p for p in paths if p in _DECISIVE)


def fingerprint_from_sums(sums: Mapping[str, str]) -> str:
    """``sha256:<hex>`` over (relative path, sha256) of the decisive files; others are ignored."""
    chosen = decisive_files(sums)
    if not any(p in _WEIGHTS for p in chosen):
        raise ValueError("no weights file (model.safetensors or pytorch_model.bin) among the model's files")
    digest = hashlib.sha256()
    for path in chosen:
        digest.update(f"{path}\0{sums[path]}\n".encode())
    return "sha256:" + digest.hexdigest()


def fingerprint_folder(folder: Path) -> str:
    """Hash a model folder's decisive files (reads the weights: ~0.2 s for 90 MB)."""
    from localmem.models import sha256_file

    present = [p for p in _DECISIVE if (folder / p).is_file()]
    return fingerprint_from_sums({p: sha256_file(folder / p) for p in present})


def has_normalize_module(folder: Path) -> bool:
    """Whether the sentence-transformers module list ends vectors at unit length whatever the config says."""
    import json

    modules = folder / "modules.json"
    if not modules.is_file():
        return False
    try:
        entries = json.loads(modules.read_text())
    except (OSError, ValueError):
        return False
    return any(str(m.get("type", "")).endswith("Normalize") for m in entries if isinstance(m, dict))


def bundled_fingerprint() -> str | None:
    """The bundled embedder's fingerprint from the manifest's sums (no hashing); None if it is not listed."""
    from localmem.errors import ModelError
    from localmem.models import find_entry

    try:
        entry = find_entry(LEGACY_BUNDLED_NAME)
    except ModelError:
        return None
    return fingerprint_from_sums({f.path: f.sha256 for f in entry.files})


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing a stored identity with the current embedder's."""

    ok: bool
    problem: str = ""
    # The stored record predates content identities and was accepted: rewrite it.
    upgrade: bool = False


def compare(stored: Mapping[str, Any], current: EmbedderIdentity, bundled_fingerprint: str | None) -> Comparison:
    """Same vectors? By fingerprint when recorded; a legacy record (name only) by name.

    A legacy record naming the bundled model is accepted only by the bundled weights
    (whatever folder they are read from). Any other legacy name is accepted on a name
    match, as before, once: the record is then rewritten with the fingerprint, so the
    next open is checked by content.
    """
    name = str(stored.get("name", ""))
    recorded = stored.get("fingerprint")
    if recorded:
        if recorded != current.fingerprint:
            return Comparison(False, f"was filled by embedder {name!r} ({str(recorded)[:19]}…), not by "
                                     f"{current.name!r} ({current.fingerprint[:19]}…)")
    elif name == LEGACY_BUNDLED_NAME and bundled_fingerprint is not None:
        if current.fingerprint != bundled_fingerprint:
            return Comparison(False, f"was filled by the bundled embedder {name!r}, not by {current.name!r}")
    elif name != current.name:
        return Comparison(False, f"was filled by embedder {name!r}, not {current.name!r}")
    normalized = stored.get("normalized")
    if normalized is not None and bool(normalized) != current.normalized:
        made = "unit-length" if normalized else "un-normalised"
        return Comparison(False, f"holds {made} vectors, but the embedder is set to normalize={current.normalized}")
    return Comparison(True, upgrade=not recorded and bool(current.fingerprint))
