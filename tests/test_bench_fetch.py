"""``localmem bench data fetch``: download, sha256 check, licence print, refusal, unpacking.

Hermetic: every file is made by the test and served by http.server on 127.0.0.1 in a thread.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import pytest

from localmem.bench import datasets, fetch
from localmem.bench.datasets import DataSet, Remote
from localmem.cli.main import EXIT_CHECK_FAILED, main
from localmem.errors import BenchDataError
from tests.conftest import LoopbackServer


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _set(name: str, *remotes: Remote, licence: str = "CC BY-NC 4.0 (test)") -> DataSet:
    return DataSet(name=name, title=f"{name} test set", licence=licence, licence_url="https://example.invalid/l",
                   remotes=remotes, required=((remotes[0].target,),))


def test_fetch_verifies_unpacks_records_and_prints_the_licence(mirror: LoopbackServer, tmp_path: Path) -> None:
    url, sha = mirror.put("conv.json", b'[{"sample_id": "c1"}]')
    zurl, zsha = mirror.put("set.zip", _zip({"set/corpus.jsonl": b"{}\n", "set/evil/../../x": b"no"}))
    manifest = [_set("conv", Remote(url, "conv/conv.json", sha256=sha)),
                _set("set", Remote(zurl, "set", sha256=zsha, members=(("set/corpus.jsonl", "set/corpus.jsonl"),)),
                     licence="MIT")]
    said: list[str] = []
    root = tmp_path / "data"
    records = fetch.fetch([], root, manifest=manifest, say=said.append)

    assert (root / "conv" / "conv.json").read_bytes() == b'[{"sample_id": "c1"}]'
    assert (root / "set" / "corpus.jsonl").read_bytes() == b"{}\n"
    assert sorted(p.name for p in root.iterdir()) == ["SOURCES.json", "conv", "set"]  # no member outside the list
    text = "\n".join(said)
    assert "licence: CC BY-NC 4.0 (test)" in text and "licence: MIT" in text
    assert f"sha256 verified: {sha}" in text and f"sha256 verified: {zsha}" in text
    assert json.loads((root / "SOURCES.json").read_text()) == records
    assert [(r["dataset"], r["sha256"], r["pinned"]) for r in records] == [("conv", sha, True), ("set", zsha, True)]


def test_a_bad_hash_is_refused_and_nothing_is_written(mirror: LoopbackServer, tmp_path: Path) -> None:
    url, sha = mirror.put("conv.json", b"tampered")
    manifest = [_set("conv", Remote(url, "conv/conv.json", sha256="0" * 64))]
    root = tmp_path / "data"
    with pytest.raises(BenchDataError, match=f"sha256 {sha} does not match the pinned 0000"):
        fetch.fetch(["conv"], root, manifest=manifest, say=lambda _: None)
    assert list(root.iterdir()) == []  # neither the file nor a temp folder nor SOURCES.json


def test_an_upstream_md5_mismatch_is_refused(mirror: LoopbackServer, tmp_path: Path) -> None:
    url, sha = mirror.put("a.json", b"{}")
    manifest = [_set("a", Remote(url, "a/a.json", sha256=sha, upstream_md5="f" * 32))]
    with pytest.raises(BenchDataError, match="upstream's published"):
        fetch.fetch(["a"], tmp_path / "data", manifest=manifest, say=lambda _: None)
    assert not (tmp_path / "data" / "a").exists()


def test_an_unpinned_file_is_refused_before_any_download_unless_trusted(mirror: LoopbackServer, tmp_path: Path) -> None:
    content = b'{"x": 1}'
    url, sha = mirror.put("u.json", content)
    manifest = [_set("u", Remote(url, "u/u.json", sha256=None,
                                 upstream_md5=hashlib.md5(content, usedforsecurity=False).hexdigest()))]
    with pytest.raises(BenchDataError, match=r"no pinned sha256 .*--trust-unpinned"):
        fetch.fetch(["u"], tmp_path / "data", manifest=manifest, say=lambda _: None)
    assert mirror.requests == []

    said: list[str] = []
    [record] = fetch.fetch(["u"], tmp_path / "data", manifest=manifest, trust_unpinned=True, say=said.append)
    assert record["pinned"] is False and record["sha256"] == sha
    assert any(f"UNPINNED, accepted by --trust-unpinned: sha256 {sha}" in line for line in said)
    assert (tmp_path / "data" / "u" / "u.json").read_bytes() == content


def test_a_mirror_serves_the_official_file_names_under_the_same_hashes(mirror: LoopbackServer, tmp_path: Path) -> None:
    _, sha = mirror.put("locomo10.json", b"[]")
    manifest = [_set("locomo", Remote("https://unreachable.invalid/data/locomo10.json", "locomo/locomo10.json",
                                      sha256=sha))]
    [record] = fetch.fetch([], tmp_path / "data", manifest=manifest, mirror=mirror.url + "/", say=lambda _: None)
    assert record["url"] == f"{mirror.url}/locomo10.json" and mirror.requests == ["/locomo10.json"]
    assert record["official_url"] == "https://unreachable.invalid/data/locomo10.json"


def test_unknown_names_and_unreachable_hosts_are_one_clear_error(mirror: LoopbackServer, tmp_path: Path) -> None:
    manifest = [_set("a", Remote(f"{mirror.url}/missing.json", "a/a.json", sha256="0" * 64))]
    with pytest.raises(BenchDataError, match="no benchmark data set named 'b'; known: a"):
        fetch.fetch(["b"], tmp_path, manifest=manifest, say=lambda _: None)
    with pytest.raises(BenchDataError, match=r"could not download .*missing\.json"):
        fetch.fetch(["a"], tmp_path, manifest=manifest, say=lambda _: None)


def test_the_real_manifest_pins_every_file_at_a_fixed_commit() -> None:
    # Each hash was checked by hand against the official repository (issue #36); a moving branch URL
    # would turn an upstream edit into a refusal, so every GitHub URL names its commit.
    assert {d.name for d in datasets.MANIFEST} == {"locomo", "scifact", "memorybank"}
    for entry in datasets.MANIFEST:
        assert entry.licence and entry.licence_url
        for remote in entry.remotes:
            assert remote.url.startswith("https://") and re.fullmatch(r"[0-9a-f]{64}", remote.sha256 or "")
            if "githubusercontent.com" in remote.url:
                assert re.search(r"/[0-9a-f]{40}/", remote.url) and "/main/" not in remote.url, remote.url
    [scifact] = [r for d in datasets.MANIFEST if d.name == "scifact" for r in d.remotes]
    assert scifact.upstream_md5 == "5f7d1de60b170fc8027bb7898e2efca1"  # the publisher's own, checked too


def _official(name: str) -> Remote:
    return next(r for d in datasets.MANIFEST for r in d.remotes if r.url.endswith("/" + name))


def test_the_memorybank_pins_are_the_shared_copies(shared_data: Path) -> None:
    # The copies beside the checkout are byte-identical to the official files at the pinned commit.
    for name, copy in (("memory_bank_en.json", "memorybank_memory_bank_en.json"),
                       ("probing_questions_en.jsonl", "memorybank_probing_questions_en.jsonl")):
        assert hashlib.sha256((shared_data / "memorybank" / copy).read_bytes()).hexdigest() == _official(name).sha256


def test_cli_fetches_pinned_files_from_a_mirror_with_no_extra_flag(
        mirror: LoopbackServer, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The real manifest, the real bytes (served under the official names): accepted as they are.
    for name, copy in (("memory_bank_en.json", "memorybank_memory_bank_en.json"),
                       ("probing_questions_en.jsonl", "memorybank_probing_questions_en.jsonl")):
        mirror.put(name, (shared_data / "memorybank" / copy).read_bytes())
    root = tmp_path / "d"
    assert main(["bench", "data", "fetch", "memorybank", "--mirror", mirror.url, "--data", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.count("sha256 verified") == 2 and "UNPINNED" not in out
    assert datasets.missing(("memorybank",), root) == []
    assert all(r["pinned"] for r in json.loads((root / fetch.SOURCES).read_text()))


def test_cli_refuses_bytes_that_differ_from_the_pins(
        mirror: LoopbackServer, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The 6-conversation dev copy is not the official locomo10.json; a zip rebuilt from the SciFact
    # files is not BEIR's; one changed byte in MemoryBank is not MemoryBank.
    mirror.put("locomo10.json", (shared_data / "locomo" / "locomo_dev.json").read_bytes())
    mirror.put("scifact.zip", _zip({f"scifact/{f}": (shared_data / "scifact" / f).read_bytes()
                                    for f in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv")}))
    bank = bytearray((shared_data / "memorybank" / "memorybank_memory_bank_en.json").read_bytes())
    bank[10] ^= 1
    mirror.put("memory_bank_en.json", bytes(bank))
    root = tmp_path / "d"
    for name, file in (("locomo", "locomo10.json"), ("scifact", "scifact.zip"), ("memorybank", "memory_bank_en.json")):
        code = main(["bench", "data", "fetch", name, "--mirror", mirror.url, "--data", str(root)])
        err = capsys.readouterr().err
        assert code == EXIT_CHECK_FAILED, name
        assert f"{file}: sha256 " in err and f"does not match the pinned {_official(file).sha256}" in err, err
    assert not [p for p in root.rglob("*") if p.is_file()]  # nothing written, not even SOURCES.json


def test_cli_fetch_refuses_an_unpinned_file_before_downloading(
        mirror: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url, _ = mirror.put("new.json", b"[]")
    monkeypatch.setattr(datasets, "MANIFEST", (_set("new", Remote(url, "new/new.json", sha256=None)),))
    code = main(["bench", "data", "fetch", "new", "--data", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert code == EXIT_CHECK_FAILED and err.count("\n") == 1
    assert f"no pinned sha256 for {url}" in err and "--trust-unpinned" in err
    assert not (tmp_path / "d").exists() and mirror.requests == []


def test_cli_fetch_from_a_mirror_then_list(mirror: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    _, sha = mirror.put("locomo10.json", b"[]")
    pinned = _set("locomo", Remote("https://unreachable.invalid/locomo10.json", "locomo/locomo10.json", sha256=sha))
    monkeypatch.setattr(datasets, "MANIFEST", (pinned,))
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path / "env-data"))
    assert main(["bench", "data", "fetch", "--mirror", mirror.url]) == 0
    out = capsys.readouterr().out
    assert "licence: CC BY-NC 4.0 (test)" in out and f"sha256 verified: {sha}" in out
    assert (tmp_path / "env-data" / "locomo" / "locomo10.json").read_bytes() == b"[]"
    assert main(["bench", "data", "list"]) == 0
    listing = capsys.readouterr().out
    assert f"data folder: {tmp_path / 'env-data'}" in listing and "present=yes" in listing


def test_data_root_order_flag_then_variable_then_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert datasets.data_root() == tmp_path / "xdg" / "localmem" / "bench-data"
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path / "env"))
    assert datasets.data_root() == tmp_path / "env"
    assert datasets.data_root(tmp_path / "flag") == tmp_path / "flag"


def test_the_shared_dev_layout_is_a_supported_layout(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for path in ("locomo/locomo_dev.json", "memorybank/memorybank_memory_bank_en.json",
                 "memorybank/memorybank_probing_questions_en.jsonl", "scifact/corpus.jsonl", "scifact/queries.jsonl"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("x")
    assert datasets.missing(("locomo", "memorybank", "scifact"), root) == ["scifact"]  # qrels/test.tsv missing
    (root / "scifact" / "qrels").mkdir()
    (root / "scifact" / "qrels" / "test.tsv").write_text("x")
    assert datasets.missing(("locomo", "memorybank", "scifact"), root) == []
