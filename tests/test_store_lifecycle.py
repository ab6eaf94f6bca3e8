"""The Lite folder's life beyond one call: close() releases it; a full disk never leaves a partial view."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from localmem import Memory, MemoryConfig, VectorStoreConfig
from localmem.embedders.fake import HashingEmbedder

from .conftest import plain

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

COUNT = textwrap.dedent("""
    import sys
    from localmem import Memory, MemoryConfig, VectorStoreConfig
    from localmem.embedders.fake import HashingEmbedder

    with Memory(MemoryConfig(vector_store=VectorStoreConfig(uri=sys.argv[1])), embedder=HashingEmbedder()) as m:
        print(len(m.get_all(user_id="u")["results"]))
""")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_close_releases_the_folder_to_another_process_while_this_one_lives(tmp_path: Path) -> None:
    config = MemoryConfig(vector_store=VectorStoreConfig(uri=str(tmp_path / "mem.db")))
    memory = Memory(config, embedder=HashingEmbedder())
    memory.add([{"role": "user", "content": "likes tea"}, {"role": "user", "content": "has a cat"}], user_id="u",
               infer=False)
    memory.close()
    child = subprocess.run([sys.executable, "-c", COUNT, str(tmp_path / "mem.db")], cwd=tmp_path, env=_env(),
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.split() == ["2"]
    again = Memory(config, embedder=HashingEmbedder())  # and this process can take it back
    try:
        assert len(again.get_all(user_id="u")["results"]) == 2
    finally:
        again.close()


def test_two_collections_in_one_folder_survive_closing_one(tmp_path: Path) -> None:
    """The engine is shared by every store of the process on that folder: the last close stops it."""
    uri = str(tmp_path / "mem.db")
    first = Memory(MemoryConfig(vector_store=VectorStoreConfig(uri=uri, collection_name="a")),
                   embedder=HashingEmbedder())
    second = Memory(MemoryConfig(vector_store=VectorStoreConfig(uri=uri, collection_name="b")),
                    embedder=HashingEmbedder())
    try:
        first.add("likes tea", user_id="u", infer=False)
        second.add("has a cat", user_id="u", infer=False)
        first.close()
        assert [plain(r["memory"]) for r in second.get_all(user_id="u")["results"]] == ["has a cat"]
    finally:
        first.close()
        second.close()


DISK_FULL = textwrap.dedent("""
    import json, subprocess, sys
    from pathlib import Path
    from localmem import Memory, MemoryConfig, StoreError, VectorStoreConfig
    from localmem.embedders.fake import HashingEmbedder

    where = Path(sys.argv[1])
    small = where / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(small)], check=True)
    (small / "ballast").write_bytes(b"x" * 500_000)
    (small / "slack").write_bytes(b"x" * 150_000)
    config = MemoryConfig(vector_store=VectorStoreConfig(uri=str(small / "mem.db")),
                          history_db_path=str(where / "history.sqlite"))
    memory = Memory(config, embedder=HashingEmbedder(dims=384))
    acknowledged, errors = [], []

    def fill():
        while True:
            try:
                text = f"memory {len(acknowledged)} " + "padding " * 300
                acknowledged.extend(r["id"] for r in memory.add(text, user_id="u", infer=False)["results"])
            except StoreError as exc:
                errors.append(str(exc))
                return

    fill()  # the disk fills: an insert fails half-written
    (small / "slack").unlink()  # a little space comes back: inserts fit again, a flush of them will not
    fill()
    try:
        memory.search("memory", user_id="u", limit=3)  # flushes the pending rows: fails
    except StoreError as exc:
        errors.append(str(exc))
    (small / "ballast").unlink()  # the user frees space; the process lives on
    try:
        seen = {r["id"] for r in memory.get_all(user_id="u", limit=16384)["results"]}
        memory.search("memory padding", user_id="u", limit=5)
        view = "complete" if set(acknowledged) <= seen else f"partial: {len(set(acknowledged) - seen)} missing"
    except StoreError as exc:
        view = "refused: " + str(exc)
    try:
        memory.close()
    except Exception:
        pass
    with Memory(config, embedder=HashingEmbedder(dims=384)) as reopened:
        after = {r["id"] for r in reopened.get_all(user_id="u", limit=16384)["results"]}
    print(json.dumps({"acknowledged": len(acknowledged), "errors": errors, "view": view,
                      "missing_after_reopen": len(set(acknowledged) - after)}))
""")


@pytest.mark.skipif(shutil.which("unshare") is None or sys.platform != "linux", reason="needs unshare (Linux)")
def test_after_a_disk_full_error_no_acknowledged_memory_is_hidden(tmp_path: Path) -> None:
    """A real ENOSPC: the Lite folder sits on a 3 MB tmpfs mounted in a private user+mount namespace.

    Two Lite failures are met on the way: a failed flush swaps its rows out of memory (they stay in
    the WAL on disk), and a failed insert leaves a torn batch in the WAL, after which rows appended
    to the same file are lost when it is replayed. Reloading right after the failed write handles
    both: the WAL is replayed into memory and later writes go to a fresh WAL file.
    """
    probe = subprocess.run(["unshare", "-Urm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("user namespaces are not available here")
    child = subprocess.run(["unshare", "-Urm", sys.executable, "-c", DISK_FULL, str(tmp_path)], cwd=tmp_path,
                           env=_env(), capture_output=True, text=True, timeout=600)
    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert any("No space left" in e for e in report["errors"]), report  # the disk did fill up
    assert report["acknowledged"] > 0
    assert report["view"] == "complete" or report["view"].startswith("refused: "), report
    assert report["missing_after_reopen"] == 0, report


LOGGED = textwrap.dedent("""
    import logging, sys
    logging.basicConfig(level=logging.DEBUG)  # an application that shows every library's records
    from localmem import Memory, MemoryConfig, VectorStoreConfig
    from localmem.embedders.fake import HashingEmbedder

    with Memory(MemoryConfig(vector_store=VectorStoreConfig(uri=sys.argv[1])), embedder=HashingEmbedder()) as m:
        m.add("likes tea", user_id="u", infer=False)
        print(len(m.search("tea", user_id="u")["results"]))
""")


def test_an_application_that_logs_sees_no_traceback_from_the_lite_engine(tmp_path: Path) -> None:
    """Lite refuses pymilvus' AllocTimestamp when a collection is created; gRPC logged that as a traceback."""
    child = subprocess.run([sys.executable, "-c", LOGGED, str(tmp_path / "mem.db")], cwd=tmp_path, env=_env(),
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.split() == ["1"]
    assert "Traceback" not in child.stderr and "not implemented" not in child.stderr, child.stderr[-2000:]


def test_the_refusal_filter_passes_every_other_grpc_error() -> None:
    from localmem.vector_stores.lite import _LiteRefusal

    def AllocTimestamp() -> None:  # named as the gRPC method it stands for
        raise NotImplementedError("Method not implemented!")

    def Search() -> None:
        raise NotImplementedError("Method not implemented!")

    def record_of(call: Any) -> logging.LogRecord:
        try:
            call()
        except Exception:
            return logging.LogRecord("grpc._server", logging.ERROR, __file__, 1, "Exception calling application",
                                     None, sys.exc_info())
        raise AssertionError("did not raise")

    refusal = _LiteRefusal()
    assert not refusal.filter(record_of(AllocTimestamp))
    assert refusal.filter(record_of(Search))
    assert refusal.filter(logging.LogRecord("grpc._server", logging.ERROR, __file__, 1, "plain", None, None))
