"""Thread pools that sleep instead of spinning (#13), and imports that stay lazy."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from localmem import ConfigError
from localmem.threads import THREADS_ENV, intra_op_threads, onnx_session_options, parallel_runs, usable_cores

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "KMP_BLOCKTIME", THREADS_ENV)}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=clean | env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_import_sets_a_passive_openmp_wait_policy_and_keeps_a_user_value() -> None:
    assert _run("import os, localmem; print(os.environ['OMP_WAIT_POLICY'])") == "PASSIVE"
    assert _run("import os, localmem; print(os.environ['OMP_WAIT_POLICY'])", OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"


def test_import_localmem_and_the_cli_parser_load_no_heavy_package() -> None:
    heavy = ("numpy", "torch", "pymilvus", "onnxruntime", "sentence_transformers", "llama_cpp")
    code = f"""
        import sys
        import localmem
        from localmem.cli.main import build_parser
        build_parser()
        print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))
    """
    assert _run(code) == "[]"
    assert _run("from localmem import Memory; print(Memory.__name__)") == "Memory"


def test_a_cli_command_without_a_model_never_imports_torch(tmp_path: Path) -> None:
    code = f"""
        import sys
        from localmem.cli.main import main
        codes = [main(["models", "list", "--json"]), main(["doctor", "--db", {str(tmp_path / 'x.db')!r}, "--json"])]
        print("torch" in sys.modules, "sentence_transformers" in sys.modules)
    """
    assert _run(code).splitlines()[-1] == "False False"


def test_thread_count_follows_the_cores_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert intra_op_threads() == min(usable_cores(), 4)
    assert parallel_runs() == usable_cores()  # runs of one thread each: one per core, however many
    monkeypatch.setenv(THREADS_ENV, "3")
    assert intra_op_threads() == parallel_runs() == 3
    monkeypatch.setenv(THREADS_ENV, "zero")
    with pytest.raises(ConfigError, match=THREADS_ENV):
        intra_op_threads()


def test_onnx_sessions_do_not_spin() -> None:
    import onnxruntime as ort

    options = onnx_session_options(ort, threads=2)
    assert options.intra_op_num_threads == 2
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"


@pytest.mark.slow
def test_the_torch_embedder_sizes_its_pool(real_embedder: object) -> None:
    import torch

    assert torch.get_num_threads() == intra_op_threads()
