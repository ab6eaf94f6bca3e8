"""Shared fixtures: real models loaded once per session; every store in a temp dir; a real
Milvus server for the session when the ``milvus`` package is installed (``milvus_server_uri``)."""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from localmem import Memory, MemoryConfig
from localmem.config import VectorStoreConfig
from localmem.embedders.fake import HashingEmbedder
from localmem.embedders.sentence_transformers import SentenceTransformerEmbedder, force_offline
from localmem.protocols import Embedder, LanguageModel
from tests import milvus_server

force_offline()

# "0" skips every server-backed test; an http(s):// uri uses that server instead of starting one.
SERVER_ENV = "LOCALMEM_TEST_MILVUS_SERVER"


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing a test does may land in the checkout (./localmem.db and friends).
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def real_embedder() -> Iterator[SentenceTransformerEmbedder]:
    embedder = SentenceTransformerEmbedder()
    yield embedder
    embedder.close()


@pytest.fixture
def hashing_embedder() -> HashingEmbedder:
    return HashingEmbedder()


MemoryFactory = Callable[..., Memory]


@pytest.fixture
def make_memory(tmp_path: Path) -> Iterator[MemoryFactory]:
    """Build Memory objects on a real Milvus Lite file in tmp_path; closes them after the test."""
    opened: list[Memory] = []

    def factory(embedder: Embedder, llm: LanguageModel | None = None, name: str = "mem.db",
                **config: Any) -> Memory:
        vs = VectorStoreConfig(uri=str(tmp_path / name), **config.pop("vector_store", {}))
        memory = Memory(MemoryConfig(vector_store=vs, **config), embedder=embedder, llm=llm)
        opened.append(memory)
        return memory

    yield factory
    for memory in opened:
        memory.close()  # idempotent: a test may have closed it already


@pytest.fixture(scope="session")
def milvus_server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Milvus server on loopback for the whole session, started on first use and stopped at the end.

    Skips (with the reason) where the ``milvus`` package is missing or the env var says so;
    ``make test`` installs it through the dev extra.
    """
    given = os.environ.get(SERVER_ENV, "")
    if given == "0":
        pytest.skip(f"{SERVER_ENV}=0: Milvus server tests are switched off")
    if given.startswith(("http://", "https://")):
        yield given
        return
    if not milvus_server.installed():
        pytest.skip("the Milvus server package is not installed: pip install -e '.[dev]' (or set "
                    f"{SERVER_ENV}=http://host:port to use a running server)")
    server = milvus_server.start(tmp_path_factory.mktemp("milvus-server"))
    try:
        yield server.uri
    finally:
        server.stop()


_DATED = re.compile(r"^\(\d{1,2} [A-Z][a-z]+ \d{4}\) ")


def plain(memory: str) -> str:
    """An episode's text without its leading "(8 May 2023) ": what the message said."""
    assert _DATED.match(memory), f"an episode's text starts with its date in words: {memory!r}"
    return _DATED.sub("", memory, count=1)


# The benchmark data this repository's tests read: ../shared/data beside the checkout (never copied in).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "locomo").is_dir():
        pytest.skip(f"no benchmark data at {SHARED_DATA} (the shared folder beside the checkout)")
    return SHARED_DATA


class LoopbackServer:
    """http.server on 127.0.0.1 serving a folder; records the paths requested."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        log = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # keep test output clean
                log.append(self.path)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def put(self, name: str, content: bytes) -> tuple[str, str]:
        """Serve ``content`` as ``name``; returns (url, sha256)."""
        (self.root / name).write_bytes(content)
        return f"{self.url}/{name}", hashlib.sha256(content).hexdigest()


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[LoopbackServer]:
    served = tmp_path / "served"
    served.mkdir()
    server = LoopbackServer(served)
    thread = threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
    thread.join()
