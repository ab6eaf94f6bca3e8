"""The localmem command line, in-process through main(argv) and once as a real subprocess."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from localmem import bundle
from localmem.cli import main
from localmem.cli.main import (
    EXIT_CHECK_FAILED,
    EXIT_CONFIG,
    EXIT_ERROR,
    EXIT_INVALID_INPUT,
    EXIT_MODEL,
    EXIT_NOT_FOUND,
    EXIT_STORE,
    build_parser,
    exit_code,
)
from localmem.embedders.fake import HashingEmbedder
from localmem.errors import (
    BenchDataError,
    ChecksumError,
    ConfigError,
    DependencyError,
    ExtractionError,
    HistoryError,
    InvalidFilterError,
    LocalmemError,
    MemoryNotFoundError,
    SchemaMismatchError,
    StoreLockedError,
)
from localmem.history.sqlite import SQLiteHistory

from .conftest import MemoryFactory

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
    assert summary == {"memories": 3, "orphan_histories": 0, "history_events": 3, "vectors": True,
                       "queued_extractions": 0}
    imported = as_json(capsys, "import", str(export), "--db", "copy.db")
    assert imported == {"memories": 3, "skipped": 0, "reembedded": 0, "history_events": 3,
                        "queued_extractions": 0}
    again = as_json(capsys, "import", str(export), "--db", "copy.db")
    assert isinstance(again, dict) and again["skipped"] == 3 and again["memories"] == 0
    code, _, err = run(capsys, "import", str(export), "--db", "copy.db", "--on-conflict", "error")
    assert code == EXIT_INVALID_INPUT and "already exist" in err


def test_errors_are_one_line_with_documented_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (("get", "no-such-id"), EXIT_NOT_FOUND, "no memory with id"),
        (("search", "   ", "--user", "u"), EXIT_INVALID_INPUT, "query"),
        (("list",), EXIT_INVALID_INPUT, "'localmem list' needs --user, --agent, --run or --filter"),
        (("search", "tennis"), EXIT_INVALID_INPUT, "'localmem search' needs --user, --agent, --run or --filter"),
        (("list", "--user", "u", "--filter", '{"k": {"between": 1}}'), EXIT_INVALID_INPUT, "between"),
        (("reset",), EXIT_INVALID_INPUT, "--yes"),
        (("add", "--no-infer", "--user", "u", "x", "--db", "plainfile"), EXIT_STORE, "not a Milvus Lite 3"),
        (("import", "latin1.jsonl"), EXIT_INVALID_INPUT, "not UTF-8"),
    ]
    Path("plainfile").write_text("not a store")
    Path("latin1.jsonl").write_bytes('{"format": "caf\u00e9"}\n'.encode("latin-1"))
    for argv, expected, fragment in cases:
        code, _, err = run(capsys, *argv)
        assert code == expected, (argv, err)
        assert err.startswith("localmem: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
        assert fragment in err, err
    assert Path("plainfile").read_text() == "not a store"


def test_several_texts_are_several_memories(capsys: pytest.CaptureFixture[str]) -> None:
    added = as_json(capsys, "add", "--no-infer", "--user", "u", "one", "two")
    assert isinstance(added, dict) and len(added["results"]) == 2
    listed = as_json(capsys, "list", "--user", "u")
    assert isinstance(listed, dict) and sorted(r["memory"].rsplit(" ", 1)[-1] for r in listed["results"]) == [
        "one", "two"]


def test_history_shows_each_events_own_time(capsys: pytest.CaptureFixture[str]) -> None:
    added = as_json(capsys, "add", "--no-infer", "--user", "u", "Plays chess")
    assert isinstance(added, dict)
    memory_id = added["results"][0]["id"]
    main(["update", memory_id, "Plays chess on Sundays"])
    main(["delete", memory_id])
    capsys.readouterr()
    code, out, _ = run(capsys, "history", memory_id)
    header, *rows = out.splitlines()
    assert code == 0 and header.split()[:2] == ["EVENT", "WHEN"]
    times = {row.split()[0]: row.split()[1] for row in rows}
    assert list(times) == ["ADD", "UPDATE", "DELETE"] and len(set(times.values())) == 3, out


def test_a_large_add_ends_with_one_line_and_is_quiet_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    from localmem.cli.memory_cmds import TABLE_ROWS

    Path("many.txt").write_text("".join(f"note number {i}\n" for i in range(TABLE_ROWS + 10)))
    code, out, err = run(capsys, "add", "--user", "u", "--file", "many.txt")
    assert code == 0 and err == ""  # no progress bar: stderr is not a terminal here
    assert out.splitlines() == [f"{TABLE_ROWS + 10} memories written ({TABLE_ROWS + 10} ADD); --json lists them, "
                                "`localmem list` shows them"]


def test_progress_shows_on_a_terminal(tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios
    import threading

    from tests.serving import cli_env

    lines = tmp_path / "lines.txt"
    lines.write_text("".join(f"line {i}\n" for i in range(300)))
    out = tmp_path / "out.txt"
    # stderr is a terminal (the bar's; a 0-column one would show an empty bar), stdout a file (the summary's).
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    seen: list[bytes] = []

    def read() -> None:  # drained as it comes: a full pty buffer would block the child
        with contextlib.suppress(OSError):
            while chunk := os.read(leader, 65536):
                seen.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    with out.open("w") as stdout:
        done = subprocess.run([sys.executable, "-m", "localmem", "add", "--user", "u", "--file", str(lines)],
                              stdout=stdout, stderr=follower, env=cli_env(), cwd=tmp_path, timeout=300)
    os.close(follower)
    reader.join(10)
    os.close(leader)
    shown = b"".join(seen)
    assert done.returncode == 0, shown
    assert b"adding" in shown and b"300/300" in shown, shown
    assert out.read_text().startswith("300 memories written")


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
    # prepare repairs it, though the damaged file has the right size.
    as_json(capsys, "models", "prepare", "all-MiniLM-L6-v2")
    _, out, _ = run(capsys, "models", "verify", "--json")
    assert {m["name"]: m["ok"] for m in json.loads(out)}["all-MiniLM-L6-v2"] is True, out


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    [commands] = [a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert isinstance(commands, dict) and len(commands) == 17  # with serve and mcp
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
    # The bundle installs this project by its distribution name, not PyPI's unrelated 'localmem'.
    assert "'localmem-offline[bench]'" in bundle.install_script() and "'localmem[" not in bundle.install_script()
    flat = [" ".join(c) for c in plan["commands"]]
    assert any("torch==2.13.0" in c and "wheel" in c for c in flat)
    assert not Path("out").exists()


def _bench_data(root: Path) -> Path:
    for path in ("locomo/locomo10.json", "memorybank/memorybank_memory_bank_en.json",
                 "memorybank/memorybank_probing_questions_en.jsonl"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(path)
    (root / "SOURCES.json").write_text("[]")
    return root


def test_bundle_with_bench_data_carries_the_extra_and_the_data(capsys: pytest.CaptureFixture[str],
                                                              tmp_path: Path) -> None:
    data = _bench_data(tmp_path / "bench-data-here")
    plan = as_json(capsys, "bundle", "out", "--dry-run", "--with-bench-data", "--bench-data", str(data))
    assert isinstance(plan, dict) and plan["bench_data"] == str(data)
    assert any(c[-1].endswith("[bench]") for c in plan["commands"])
    code, _, err = run(capsys, "bundle", "out", "--dry-run", "--with-bench-data", "--bench-data",
                       str(tmp_path / "nothing"))
    assert code == EXIT_CHECK_FAILED and "run 'localmem bench data fetch' first" in err and err.count("\n") == 1


def test_bundled_bench_data_lands_where_localmem_bench_reads_it(tmp_path: Path) -> None:
    from localmem import bundle
    from localmem.bench import datasets

    out = tmp_path / "bundle"
    bundle._copy_bench_data(_bench_data(tmp_path / "src"), out / "bench-data")
    assert sorted(p.name for p in (out / "bench-data").iterdir()) == ["SOURCES.json", "locomo", "memorybank"]
    # Run install.sh's bench-data step as written, with an empty cache: the data must then be found.
    script = bundle.install_script()
    start = script.index("if [ -d bench-data ]")
    step = script[start:script.index("\nfi\n", start) + 4]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "x y")}
    done = subprocess.run(["sh", "-c", step], cwd=out, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    target = tmp_path / "x y" / "localmem" / "bench-data"
    assert done.stdout.strip() == f"benchmark data: {target}"
    assert datasets.missing(("locomo", "memorybank", "scifact"), target) == ["scifact"]


@pytest.mark.parametrize(("error", "code"), [
    (MemoryNotFoundError("x"), EXIT_NOT_FOUND), (InvalidFilterError("x"), EXIT_INVALID_INPUT),
    (StoreLockedError("x"), EXIT_STORE), (SchemaMismatchError("x"), EXIT_STORE), (HistoryError("x"), EXIT_STORE),
    (ChecksumError("x"), EXIT_MODEL), (DependencyError("x"), EXIT_MODEL), (ExtractionError("x"), EXIT_MODEL),
    (ConfigError("x"), EXIT_CONFIG), (LocalmemError("x"), EXIT_ERROR), (BenchDataError("x"), EXIT_CHECK_FAILED),
])
def test_every_error_kind_maps_to_its_documented_exit_code(error: LocalmemError, code: int) -> None:
    assert exit_code(error) == code
    assert f"  {code} " in build_parser().epilog or code == EXIT_ERROR  # type: ignore[operator]


def test_infer_is_on_by_default_and_can_be_turned_off() -> None:
    parser = build_parser()
    assert parser.parse_args(["add", "x"]).infer is True
    assert parser.parse_args(["add", "x", "--no-infer"]).infer is False
    assert parser.parse_args(["add", "x", "--infer"]).infer is True


def test_a_store_open_in_another_process_exits_5(make_memory: MemoryFactory) -> None:
    make_memory(HashingEmbedder(), name="busy.db").add("held open", user_id="u", infer=False)
    done = subprocess.run([sys.executable, "-m", "localmem", "list", "--user", "u", "--db", "busy.db"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == EXIT_STORE, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("localmem: error: ") and "busy.db" in line, line


def test_bench_passes_every_argument_through(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import localmem.bench.run

    calls: list[list[str]] = []

    def bench_main(argv: list[str]) -> int:
        calls.append(argv)
        return 0

    monkeypatch.setattr(localmem.bench.run, "main", bench_main)
    assert main(["bench", "--quick", "--sizes", "100", "1000"]) == 0
    assert main(["bench", "--", "--help"]) == 0
    assert calls == [["--quick", "--sizes", "100", "1000"], ["--help"]]


def test_doctor_checks_the_store_folder(capsys: pytest.CaptureFixture[str], make_memory: MemoryFactory) -> None:
    def store_check(*argv: str, which: str = "store") -> tuple[int, dict[str, str]]:
        code, out, _ = run(capsys, "doctor", "--json", *argv)
        return code, next(c for c in json.loads(out)["checks"] if c["check"] == which)

    # Made by another process: Milvus Lite keeps a folder locked by the process that opened it until exit.
    made = subprocess.run([sys.executable, "-m", "localmem", "add", "--no-infer", "--user", "u", "x",
                           "--db", "real.db"], capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    code, check = store_check("--db", "real.db")
    assert check["status"] == "ok" and "collections: localmem" in check["detail"]
    _, check = store_check("--db", "real.db", which="history")
    assert check["status"] == "ok" and check["detail"].endswith(": 1 events")
    queue = SQLiteHistory(Path("real.db.localmem.history.sqlite"))
    queue.commit(None, [], queue=["{}"])  # an add() whose extraction a closed process left queued
    queue.close()
    _, check = store_check("--db", "real.db", which="history")
    assert check["status"] == "ok" and "1 add() call(s) awaiting background extraction" in check["detail"]
    Path("other").mkdir()
    Path("other", "notes.txt").write_text("mine")
    code, check = store_check("--db", "other")
    assert code == EXIT_CHECK_FAILED and check["status"] == "fail" and "not a Milvus Lite" in check["detail"]
    assert sorted(p.name for p in Path("other").iterdir()) == ["notes.txt"]  # doctor wrote nothing there
    assert not Path("other.localmem.history.sqlite").exists()
    make_memory(HashingEmbedder(), name="busy.db").add("held", user_id="u", infer=False)
    _, check = store_check("--db", "busy.db")
    assert check["status"] == "warn" and "another process" in check["detail"]


def test_import_reads_its_file_twice_not_four_times(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from localmem import transfer

    header = {"type": "header", "format": transfer.FORMAT, "version": transfer.VERSION}
    items = [{"type": "memory", "id": f"m-{i}", "memory": f"fact {i}", "user_id": "u",
              "created_at": "2026-01-01T00:00:00+00:00"} for i in range(3)]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in [header, *items]) + "\n")
    parsed: list[int] = []
    real = transfer._parse

    def counting(line: str, number: int, where: Path) -> dict[str, object]:
        parsed.append(number)
        return real(line, number, where)

    monkeypatch.setattr(transfer, "_parse", counting)
    imported = as_json(capsys, "import", str(path), "--db", "fresh.db", "--on-conflict", "error")
    assert isinstance(imported, dict) and imported["memories"] == 3
    assert len([n for n in parsed if n > 1]) == 2 * len(items)  # a validation pass and a write pass
