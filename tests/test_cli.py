"""The localmem command line, in-process through main(argv) and once as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from localmem.cli import main
from localmem.cli.main import (
    EXIT_CHECK_FAILED,
    EXIT_INVALID_INPUT,
    EXIT_NOT_FOUND,
    EXIT_STORE,
    build_parser,
)

pytestmark = pytest.mark.slow


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def as_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_memory_commands_round_trip_with_json(capsys: pytest.CaptureFixture[str]) -> None:
    added = as_json(capsys, "add", "--no-infer", "--user", "alice", "--metadata", '{"category": "hobbies"}',
                    "I love playing tennis")
    assert isinstance(added, dict)
    memory_id = added["results"][0]["id"]
    as_json(capsys, "add", "--no-infer", "--user", "alice", "Exam on November 20")
    hits = as_json(capsys, "search", "what sports", "--user", "alice", "--limit", "1")
    assert isinstance(hits, dict) and hits["results"][0]["id"] == memory_id and "score" in hits["results"][0]
    filtered = as_json(capsys, "list", "--user", "alice", "--filter", '{"category": "hobbies"}')
    assert isinstance(filtered, dict) and [r["id"] for r in filtered["results"]] == [memory_id]
    assert as_json(capsys, "update", memory_id, "Plays tennis on weekends") == \
        {"message": "Memory updated successfully!"}
    got = as_json(capsys, "get", memory_id)
    assert isinstance(got, dict) and got["memory"] == "Plays tennis on weekends" and got["updated_at"]
    history = as_json(capsys, "history", memory_id)
    assert isinstance(history, list) and [e["event"] for e in history] == ["ADD", "UPDATE"]
    assert as_json(capsys, "delete", memory_id) == {"message": "Memory deleted successfully!"}
    code, out, _ = run(capsys, "list", "--user", "alice")
    assert code == 0 and "Exam on November 20" in out and "tennis" not in out  # a table for people
    code, _, _ = run(capsys, "delete-all", "--user", "alice", "--yes")
    assert code == 0
    left = as_json(capsys, "list", "--user", "alice")
    assert left == {"results": []}


def test_bulk_add_from_a_file_and_export_import(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    lines = tmp_path / "notes.txt"
    lines.write_text("likes green tea\n\nhas a cat named Luna\nworks as a nurse\n")
    added = as_json(capsys, "add", "--user", "bob", "--file", str(lines))
    assert isinstance(added, dict) and [r["event"] for r in added["results"]] == ["ADD"] * 3
    export = tmp_path / "bob.jsonl"
    summary = as_json(capsys, "export", str(export), "--vectors")
    assert summary == {"memories": 3, "orphan_histories": 0, "history_events": 3, "vectors": True}
    imported = as_json(capsys, "import", str(export), "--db", "copy.db")
    assert imported == {"memories": 3, "skipped": 0, "reembedded": 0, "history_events": 3}
    again = as_json(capsys, "import", str(export), "--db", "copy.db")
    assert isinstance(again, dict) and again["skipped"] == 3 and again["memories"] == 0
    code, _, err = run(capsys, "import", str(export), "--db", "copy.db", "--on-conflict", "error")
    assert code == EXIT_INVALID_INPUT and "already exist" in err


def test_errors_are_one_line_with_documented_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (("get", "no-such-id"), EXIT_NOT_FOUND, "no memory with id"),
        (("search", "   ", "--user", "u"), EXIT_INVALID_INPUT, "query"),
        (("list",), EXIT_INVALID_INPUT, "needs user_id"),
        (("list", "--user", "u", "--filter", '{"k": {"between": 1}}'), EXIT_INVALID_INPUT, "between"),
        (("reset",), EXIT_INVALID_INPUT, "--yes"),
        (("add", "--no-infer", "--user", "u", "x", "--db", "plainfile"), EXIT_STORE, "not a Milvus Lite 3"),
    ]
    Path("plainfile").write_text("not a store")
    for argv, expected, fragment in cases:
        code, _, err = run(capsys, *argv)
        assert code == expected, (argv, err)
        assert err.startswith("localmem: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
        assert fragment in err, err
    assert Path("plainfile").read_text() == "not a store"


def test_models_and_doctor(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    listed = as_json(capsys, "models", "list")
    assert isinstance(listed, list) and {m["name"] for m in listed} >= {"all-MiniLM-L6-v2", "gemma-3-270m-q4_k_m"}
    path = as_json(capsys, "models", "path", "all-MiniLM-L6-v2")
    assert isinstance(path, dict) and (Path(path["path"]) / "config.json").is_file()
    report = as_json(capsys, "doctor")
    assert isinstance(report, dict) and report["ok"] is True
    assert {c["check"] for c in report["checks"]} >= {"device", "llama.cpp", "store", "offline"}
    # A corrupted model file is caught by verify and doctor, with exit code 8.
    models = tmp_path / "models"
    monkeypatch.setenv("LOCALMEM_MODELS_DIR", str(models))
    as_json(capsys, "models", "prepare", "all-MiniLM-L6-v2")
    config = models / "all-MiniLM-L6-v2" / "config.json"
    config.write_text(config.read_text().replace("384", "385"))
    code, out, _ = run(capsys, "models", "verify", "--json")
    problems = {m["name"]: m["problem"] for m in json.loads(out)}
    assert code == EXIT_CHECK_FAILED and "sha256" in problems["all-MiniLM-L6-v2"], problems
    code, out, _ = run(capsys, "doctor")
    assert code == EXIT_CHECK_FAILED and "PROBLEMS FOUND" in out


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in commands:
        with pytest.raises(SystemExit) as exited:
            main([name, "--help"])
        assert exited.value.code == 0
        assert "exit codes" in capsys.readouterr().out or name == "models"


def test_console_entry_point_runs_as_a_module() -> None:
    done = subprocess.run([sys.executable, "-m", "localmem", "get", "x", "--db", "s.db"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == EXIT_NOT_FOUND
    assert done.stderr.strip().splitlines() == ["localmem: error: no memory with id 'x': check the id (get_all() "
                                                "lists them)"]


def test_bundle_dry_run_plans_wheels_with_pinned_torch(capsys: pytest.CaptureFixture[str]) -> None:
    plan = as_json(capsys, "bundle", "out", "--dry-run")
    assert isinstance(plan, dict)
    flat = [" ".join(c) for c in plan["commands"]]
    assert any("torch==2.13.0" in c and "wheel" in c for c in flat)
    assert not Path("out").exists()
