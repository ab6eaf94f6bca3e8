"""One fixture parametrised over every real store backend: each contract test runs on each.

``lite``: a Milvus Lite folder in tmp_path. ``server``: a collection of its own on the
session's real Milvus server (tests/conftest.py::milvus_server_uri), dropped afterwards.
``reference``: the numpy reference store (vector_stores/reference.py), ranked by the same core.
The store contracts also run on ``lite-uncopied``: a Lite folder whose store keeps no copy of
the scopes it searches (``cache_rows=0``), so that Milvus Lite's own searches answer
(retrieval/scopes.py). A Lite store's copy answers filtered searches too (retrieval/matching.py), so
the filter contract runs there as well: the copy's evaluator and Milvus Lite's own over the same rows.
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
from localmem.vector_stores import reference
from localmem.vector_stores.milvus import MilvusStore
from localmem.vector_stores.reference import ReferenceStore

DIMS = 8
IDENTITY = EmbedderIdentity(name="contract-vectors", dims=DIMS, normalized=True)

Store = MilvusStore | ReferenceStore
StoreFactory = Callable[..., Any]  # -> Store; Any lets Milvus-only tests reach MilvusStore's own members
REFERENCE = "reference"


STORE_BACKENDS = ["lite", "lite-uncopied", "server", REFERENCE]


def backend(request: pytest.FixtureRequest, folder: Path) -> str:
    """The uri of the backend named by ``request.param``: a Lite folder under ``folder``, or the session server."""
    if request.param.startswith("lite"):
        return str(folder / "contract.db")
    if request.param == REFERENCE:
        return REFERENCE
    uri: str = request.getfixturevalue("milvus_server_uri")
    return uri


def open_store(uri: str, identity: EmbedderIdentity = IDENTITY, **config: Any) -> Store:
    """A MilvusStore on ``uri`` (a ReferenceStore for ``reference``). The 2.3 test server has no BM25
    function: the store says so once (a LocalmemWarning) and searches dense only, which is what these
    contracts test."""
    if uri == REFERENCE:
        return ReferenceStore(VectorStoreConfig(uri=REFERENCE, **config), identity)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*has no BM25 index", category=LocalmemWarning)
        return MilvusStore(VectorStoreConfig(uri=uri, **config), identity)


def new_collection() -> str:
    return f"contract_{uuid.uuid4().hex[:12]}"


def drop(uri: str, collection: str) -> None:
    """Drop a test's collection from the shared server (a Lite folder goes with tmp_path)."""
    if uri == REFERENCE:
        reference.forget(collection)
    if not uri.startswith("http"):
        return
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri)
    try:
        if client.has_collection(collection):
            client.drop_collection(collection)
    finally:
        client.close()


@pytest.fixture(params=STORE_BACKENDS)
def store_backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """(uri, config settings) of this test's backend."""
    return backend(request, tmp_path), {"cache_rows": 0} if request.param == "lite-uncopied" else {}


@pytest.fixture
def backend_uri(store_backend: tuple[str, dict[str, Any]]) -> str:
    return store_backend[0]


@pytest.fixture
def make_store(store_backend: tuple[str, dict[str, Any]]) -> Iterator[StoreFactory]:
    """Open MilvusStores on this test's backend; each test gets its own collection."""
    backend_uri, settings = store_backend
    collection = new_collection()
    opened: list[Store] = []

    def factory(identity: EmbedderIdentity = IDENTITY, **config: Any) -> Store:
        config.setdefault("collection_name", collection)
        for key, value in settings.items():
            config.setdefault(key, value)
        store = open_store(backend_uri, identity, **config)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()
    drop(backend_uri, collection)
