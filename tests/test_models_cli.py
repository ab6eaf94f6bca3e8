"""``localmem models ...``: list / verify / prepare / path / register against a temp models folder.

Fast: nothing here loads a model; only the prepare test copies the embedder's files (marked slow).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localmem.cli import main
from localmem.cli.main import EXIT_CHECK_FAILED, EXIT_MODEL


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    monkeypatch.setenv("LOCALMEM_MODELS_DIR", str(folder))
    return folder


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_the_manifest_and_what_is_missing(capsys: pytest.CaptureFixture[str], models_dir: Path) -> None:
    code, out, _ = run(capsys, "models", "list", "--json")
    rows = json.loads(out)
    assert code == 0
    assert {r["name"]: r["role"] for r in rows} == {"all-MiniLM-L6-v2": "embedder", "gemma-3-270m-q4_k_m": "llm"}
    assert all(set(r) == {"name", "role", "size", "present", "source", "licence", "path"} for r in rows)
    assert all(r["present"] is False and r["path"].startswith(str(models_dir)) for r in rows)
    code, out, _ = run(capsys, "models", "list")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["NAME", "ROLE", "SIZE"]


def test_verify_fails_with_exit_8_when_files_are_missing(capsys: pytest.CaptureFixture[str],
                                                         models_dir: Path) -> None:
    code, out, _ = run(capsys, "models", "verify", "--json")
    rows = json.loads(out)
    assert code == EXIT_CHECK_FAILED
    assert all(not r["ok"] and "models prepare" in r["problem"] for r in rows)


def test_register_then_list_path_and_verify_a_local_file(capsys: pytest.CaptureFixture[str], models_dir: Path,
                                                         tmp_path: Path) -> None:
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + bytes(60))
    code, out, err = run(capsys, "models", "register", "tiny", str(gguf), "--role", "llm", "--json")
    assert code == 0, err
    assert json.loads(out) == {"name": "tiny", "role": "llm", "path": str(gguf.resolve()), "files": 1}
    code, out, _ = run(capsys, "models", "path", "tiny")
    assert code == 0 and out.strip() == str(gguf.resolve())
    code, out, _ = run(capsys, "models", "verify", "--json")
    ok = {r["name"]: r["ok"] for r in json.loads(out)}
    assert ok["tiny"] is True and code == EXIT_CHECK_FAILED  # the bundled ones are still unprepared
    # A changed file is caught by its recorded sha256.
    gguf.write_bytes(b"GGUF" + bytes(59) + b"!")
    code, out, _ = run(capsys, "models", "verify", "--json")
    problem = {r["name"]: r["problem"] for r in json.loads(out)}["tiny"]
    assert "sha256" in problem
    # The same name twice is refused with the model exit code and a one-line error.
    code, _, err = run(capsys, "models", "register", "tiny", str(gguf), "--role", "llm")
    assert code == EXIT_MODEL and err.startswith("localmem: error: ") and err.count("\n") == 1, err


@pytest.mark.parametrize("argv", [("models", "path", "nope"), ("models", "prepare", "nope"),
                                  ("models", "register", "x", "/no/such/file.gguf", "--role", "llm")])
def test_model_errors_are_one_line_with_exit_6(capsys: pytest.CaptureFixture[str], models_dir: Path,
                                               argv: tuple[str, ...]) -> None:
    code, _, err = run(capsys, *argv)
    assert code == EXIT_MODEL, err
    assert err.startswith("localmem: error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_register_needs_a_role(capsys: pytest.CaptureFixture[str], models_dir: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["models", "register", "x", "file.gguf"])
    assert exited.value.code == 2  # argparse's usage error, documented in the epilog
    assert "--role" in capsys.readouterr().err


def test_every_models_action_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for action in ("list", "verify", "prepare", "path", "register"):
        with pytest.raises(SystemExit) as exited:
            main(["models", action, "--help"])
        assert exited.value.code == 0
        assert "exit codes" in capsys.readouterr().out


@pytest.mark.slow
def test_prepare_materialises_and_verifies_the_embedder(capsys: pytest.CaptureFixture[str], models_dir: Path) -> None:
    code, out, err = run(capsys, "models", "prepare", "all-MiniLM-L6-v2", "--json")
    assert code == 0, err
    path, export = json.loads(out)
    assert Path(path) == models_dir / "all-MiniLM-L6-v2" and (Path(path) / "model.safetensors").is_file()
    # The ONNX export is derived from those weights at prepare time, checked against torch and recorded.
    assert Path(export) == models_dir / "onnx" / "all-MiniLM-L6-v2" and (Path(export) / "model.onnx").is_file()
    code, out, _ = run(capsys, "models", "verify", "--json")
    verified = {r["name"]: r["ok"] for r in json.loads(out)}
    assert verified["all-MiniLM-L6-v2"] is True
    assert verified["all-MiniLM-L6-v2 (onnx fp32)"] is True and verified["all-MiniLM-L6-v2 (onnx int8)"] is True


def test_a_models_folder_that_is_a_file_is_a_model_error(capsys: pytest.CaptureFixture[str], models_dir: Path,
                                                          tmp_path: Path) -> None:
    from localmem import ModelError, models

    models_dir.write_text("not a folder")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 64)
    for argv in (("models", "prepare", "all-MiniLM-L6-v2"), ("models", "register", "mine", str(gguf), "--role", "llm")):
        code, _, err = run(capsys, *argv)
        assert code == EXIT_MODEL and "is a file" in err and "Traceback" not in err, err
    with pytest.raises(ModelError, match="is a file"):
        models.prepare()
    assert models_dir.read_text() == "not a folder"
