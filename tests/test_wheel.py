"""The wheel, as a user installs it: built from this checkout, installed with an extra into a fresh
virtual environment, imported from there. Nothing is fetched: the build runs without isolation
(hatchling from the dev extra) and pip resolves every dependency from the environment the venv
sees (--system-site-packages, so torch is not installed twice), with --no-index."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from localmem.dist import DIST_NAME

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def _clean_env() -> dict[str, str]:
    # No PYTHONPATH: the venv must import its own installed copy, not this checkout.
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_FIND_LINKS", "PIP_INDEX_URL")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("hatchling", reason="the wheel test builds with hatchling: pip install -e '.[dev]'")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-q", "-w", str(out), str(REPO)], check=True, env=_clean_env(), timeout=300)
    (built,) = out.glob("*.whl")
    return built


def test_the_wheel_is_this_project_by_its_own_name(wheel: Path) -> None:
    assert wheel.name.startswith(DIST_NAME.replace("-", "_") + "-")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert f"Name: {DIST_NAME}\n" in metadata
    assert "localmem/__init__.py" in names and "localmem/data/manifest.json" in names
    extras = {line.split(": ", 1)[1] for line in metadata.splitlines() if line.startswith("Provides-Extra: ")}
    assert {*EXTRAS, "dev"} <= extras
    assert not any(n.startswith("tests/") for n in names)


# What each extra makes importable in the venv.
EXTRAS = {"server": "localmem.server.app, localmem.server.mcp", "bench": "matplotlib, localmem.bench.run",
          "langchain": "localmem.integrations.langchain", "llamaindex": "localmem.integrations.llama_index"}


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_a_fresh_venv_installs_the_wheel_with_an_extra(wheel: Path, tmp_path: Path, extra: str) -> None:
    venv = tmp_path / "venv"
    # --without-pip: ensurepip would also seed an old setuptools that hides the one torch requires;
    # this interpreter's pip installs into the venv instead (pip --python).
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    # --no-index: every requirement of the extra must already be satisfied (a missing one fails here).
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-index",
                    "--disable-pip-version-check", f"{wheel}[{extra}]"], check=True, env=_clean_env(), timeout=300,
                   cwd=tmp_path)
    probe = ("import importlib.metadata as md, localmem; "
             f"print(localmem.__file__); print(md.version('{DIST_NAME}')); "
             f"print(sorted(md.distribution('{DIST_NAME}').metadata.get_all('Provides-Extra')))")
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, env=_clean_env(),
                          timeout=120, cwd=tmp_path, check=True)
    where, version, _ = done.stdout.splitlines()
    assert Path(where).resolve().is_relative_to(venv.resolve()), where  # the venv's copy, not the checkout
    import localmem

    assert version == localmem.__version__
    subprocess.run([str(python), "-c", f"import {EXTRAS[extra]}"], check=True, env=_clean_env(), timeout=120,
                   cwd=tmp_path)
    if extra == "server":  # the console script is the venv's own, and says so to an assistant's config
        done = subprocess.run([str(venv / "bin" / "localmem"), "mcp", "--print-config"], capture_output=True,
                              text=True, env=_clean_env(), timeout=120, cwd=tmp_path, check=True)
        assert f'"{venv / "bin" / "localmem"}"' in done.stdout
