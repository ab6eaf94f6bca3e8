"""MemoryClient: ``Memory``'s methods and return shapes, answered by a ``localmem serve`` process.

Many processes can share one memory this way (a Milvus Lite folder belongs to one process),
and a short-lived caller such as the CLI skips the model load: this module imports httpx
and nothing heavy (no torch, no pymilvus). Server errors come back as the same
LocalmemError classes Memory raises (localmem/wire.py).
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from typing import Any

import httpx

from localmem.background import Progress
from localmem.errors import InvalidInputError, ServerUnavailableError
from localmem.wire import API_KEY_HEADER, error_from_body

DEFAULT_URL = "http://127.0.0.1:8765"  # where `localmem serve` listens unless told otherwise
DEFAULT_TIMEOUT_S = 120.0  # an add() with inference runs the LLM on the server
WAIT_SLICE_S = 50.0  # one request of a longer wait for extraction (the server holds one at most 60 s)


class MemoryClient:
    """``MemoryClient("http://127.0.0.1:8765")``, or Mem0's keyword form ``MemoryClient(api_key=..., host=...)``.

    The server's address defaults to $LOCALMEM_SERVER, else ``localmem serve``'s own default; the API key
    to $LOCALMEM_API_KEY.
    """

    def __init__(self, url: str | None = None, api_key: str | None = None, *, host: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S, transport: httpx.BaseTransport | None = None) -> None:
        if url is not None and host is not None and url.rstrip("/") != host.rstrip("/"):
            raise InvalidInputError(f"MemoryClient got two addresses, url={url!r} and host={host!r}: give one")
        where = url or host or os.environ.get("LOCALMEM_SERVER") or DEFAULT_URL
        key = api_key if api_key is not None else os.environ.get("LOCALMEM_API_KEY")
        headers = {API_KEY_HEADER: key} if key else {}
        self.url = where.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    # -- writes ---------------------------------------------------------------
    def add(self, messages: Any, user_id: str | None = None, *, agent_id: str | None = None,
            run_id: str | None = None, metadata: dict[str, Any] | None = None, infer: bool = True,
            prompt: str | None = None, timestamp: int | float | str | datetime | None = None) -> dict[str, Any]:
        # A datetime travels as ISO 8601; the server parses it exactly as Memory.add does.
        when = timestamp.isoformat() if isinstance(timestamp, datetime) else timestamp
        body = {"messages": messages, **_scope(user_id, agent_id, run_id), "metadata": metadata, "infer": infer,
                "prompt": prompt, "timestamp": when}
        result: dict[str, Any] = self._call("POST", "/memories", json=body)
        return result

    def update(self, memory_id: str, data: str) -> dict[str, str]:
        result: dict[str, str] = self._call("PUT", f"/memories/{_path(memory_id)}", json={"data": data})
        return result

    def delete(self, memory_id: str) -> dict[str, str]:
        result: dict[str, str] = self._call("DELETE", f"/memories/{_path(memory_id)}")
        return result

    def delete_all(self, user_id: str | None = None, *, agent_id: str | None = None,
                   run_id: str | None = None) -> dict[str, str]:
        result: dict[str, str] = self._call("DELETE", "/memories", params=_scope(user_id, agent_id, run_id))
        return result

    def reset(self) -> None:
        self._call("POST", "/reset")

    # -- reads ----------------------------------------------------------------
    def get(self, memory_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/memories/{_path(memory_id)}")
        return result

    def get_all(self, user_id: str | None = None, *, agent_id: str | None = None, run_id: str | None = None,
                filters: dict[str, Any] | None = None, limit: int = 100,
                include_episodes: bool = False) -> dict[str, Any]:
        params: dict[str, Any] = {**_scope(user_id, agent_id, run_id), "limit": limit}
        if include_episodes:
            params["include_episodes"] = "true"
        if filters:
            params["filters"] = json.dumps(filters)  # GET has no body: filters travel as one JSON parameter
        result: dict[str, Any] = self._call("GET", "/memories", params=params)
        return result

    def search(self, query: str, user_id: str | None = None, *, agent_id: str | None = None,
               run_id: str | None = None, limit: int = 100, filters: dict[str, Any] | None = None,
               threshold: float | None = None) -> dict[str, Any]:
        body = {"query": query, **_scope(user_id, agent_id, run_id), "limit": limit, "filters": filters,
                "threshold": threshold}
        result: dict[str, Any] = self._call("POST", "/search", json=body)
        return result

    def history(self, memory_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", f"/memories/{_path(memory_id)}/history")
        return result

    def wait_for_extraction(self, timeout: float | None = None) -> bool:
        """As ``Memory.wait_for_extraction``, on the server: True once the facts of every add() queued
        (by any client) before this call are written; False on timeout or a failed job."""
        deadline = None if timeout is None else time.monotonic() + timeout
        through = None
        while True:
            left = WAIT_SLICE_S if deadline is None else max(0.0, min(WAIT_SLICE_S, deadline - time.monotonic()))
            progress = self.extraction_progress(left, through)
            if progress.done or progress.failed or (deadline is not None and time.monotonic() >= deadline):
                return progress.done
            through = progress.through  # later slices wait for the same jobs, not for newer ones

    def extraction_progress(self, timeout: float | None = 0.0, through: int | None = None) -> Progress:
        """One wait on the server (at most its 60 s); see ``Memory.extraction_progress``."""
        wait = WAIT_SLICE_S if timeout is None else timeout
        body = self._call("POST", "/extraction/wait", json={"timeout": wait, "through": through},
                          timeout=self._http.timeout.read + wait if self._http.timeout.read is not None else None)
        return Progress.from_dict(body)

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/health")
        return result

    # -- lifecycle ------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MemoryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnavailableError(f"cannot reach the localmem server at {self.url}: {exc}; "
                                         "is `localmem serve` running?") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success:
            return body
        raise error_from_body(response.status_code, body)


def _scope(user_id: str | None, agent_id: str | None, run_id: str | None) -> dict[str, str]:
    pairs = {"user_id": user_id, "agent_id": agent_id, "run_id": run_id}
    return {k: v for k, v in pairs.items() if v is not None}


def _path(memory_id: str) -> str:
    # Ids are uuids; quote anyway so a crafted id cannot reach another route.
    from urllib.parse import quote

    return quote(str(memory_id), safe="")
