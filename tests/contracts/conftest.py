"""One fixture parametrised over every real store backend: each contract test runs on each.

``lite``: a Milvus Lite folder in tmp_path. ``server``: a collection of its own on the
session's real Milvus server (tests/conftest.py::milvus_server_uri), dropped afterwards.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localmem.config import VectorStoreConfig
from localmem.errors import LocalmemWarning
from localmem.protocols import EmbedderIdentity
from localmem.vector_stores.milvus import MilvusStore

DIMS = 8
IDENTITY = EmbedderIdentity(name="contract-vectors", dims=DIMS, normalized=True)

StoreFactory = Callable[..., MilvusStore]


BACKENDS = ["lite", "server"]


def backend(request: pytest.FixtureRequest, folder: Path) -> str:
    """The uri of the backend named by ``request.param``: a Lite folder under ``folder``, or the session server."""
    if request.param == "lite":
        return str(folder / "contract.db")
    uri: str = request.getfixturevalue("milvus_server_uri")
    return uri


def open_store(uri: str, identity: EmbedderIdentity = IDENTITY, **config: Any) -> MilvusStore:
    """A MilvusStore on ``uri``. The 2.3 test server has no BM25 function: the store says so once
    (a LocalmemWarning) and searches dense only, which is what these contracts test."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*has no BM25 index", category=LocalmemWarning)
        return MilvusStore(VectorStoreConfig(uri=uri, **config), identity)


def new_collection() -> str:
    return f"contract_{uuid.uuid4().hex[:12]}"


def drop(uri: str, collection: str) -> None:
    """Drop a test's collection from the shared server (a Lite folder goes with tmp_path)."""
    if not uri.startswith("http"):
        return
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri)
    try:
        if client.has_collection(collection):
            client.drop_collection(collection)
    finally:
        client.close()


@pytest.fixture(params=BACKENDS)
def backend_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend(request, tmp_path)


@pytest.fixture
def make_store(backend_uri: str) -> Iterator[StoreFactory]:
    """Open MilvusStores on this test's backend; each test gets its own collection."""
    collection = new_collection()
    opened: list[MilvusStore] = []

    def factory(identity: EmbedderIdentity = IDENTITY, **config: Any) -> MilvusStore:
        config.setdefault("collection_name", collection)
        store = open_store(backend_uri, identity, **config)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()
    drop(backend_uri, collection)
