"""The BLAS thread limit held around Milvus Lite searches: lowered while held, always released."""

import threading

import numpy  # noqa: F401  (loads OpenBLAS, so there is a pool to limit)
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from localmem.vector_stores import blas
from localmem.vector_stores.blas import single_threaded_blas


@pytest.fixture(autouse=True)
def _fresh_controller(monkeypatch: pytest.MonkeyPatch) -> None:
    # The controller lists the BLAS libraries loaded at the first search. An earlier test's
    # search (the contract tests run first) may have built it before this session loaded
    # another BLAS (torch's, scipy's), which this test's threadpool_info() does see.
    monkeypatch.setattr(blas, "_controller", None)


def _blas_threads() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


def test_limit_is_held_inside_and_restored_after_even_on_error():
    with threadpool_limits(2, user_api="blas"):
        assert _blas_threads() == {2}
        with single_threaded_blas():
            assert _blas_threads() == {1}
        assert _blas_threads() == {2}
        try:
            with single_threaded_blas():
                raise RuntimeError("search failed")
        except RuntimeError:
            pass
        assert _blas_threads() == {2}


def test_concurrent_searches_never_leave_the_limit_stuck():
    entered, release = threading.Event(), threading.Event()

    def other_search():
        with single_threaded_blas():
            entered.set()
            release.wait(5)

    with threadpool_limits(2, user_api="blas"):
        worker = threading.Thread(target=other_search)
        with single_threaded_blas():
            worker.start()
            assert entered.wait(5)
            assert _blas_threads() == {1}
        release.set()
        worker.join(5)
        assert _blas_threads() == {2}

    # Nobody owns the pool afterwards: another thread can still set its own limit.
    seen: list[set[int]] = []

    def user_code():
        with threadpool_limits(1, user_api="blas"):
            seen.append(_blas_threads())

    t = threading.Thread(target=user_code)
    t.start()
    t.join(5)
    assert seen == [{1}]
