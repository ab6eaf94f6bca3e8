"""MemoryClient's constructor: the positional form and Mem0's keyword form reach the same server
with the same key. The transport records what would go on the wire (the server itself is tested
end to end in test_server.py)."""

from __future__ import annotations

import httpx
import pytest

from localmem import InvalidInputError, MemoryClient
from localmem.wire import API_KEY_HEADER


def _recording() -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "ok", "version": "x"})

    return seen, httpx.MockTransport(answer)


@pytest.mark.parametrize("make", [
    lambda t: MemoryClient("http://mem.local:9000/", "k1", transport=t),
    lambda t: MemoryClient(api_key="k1", host="http://mem.local:9000", transport=t),
    lambda t: MemoryClient("http://mem.local:9000", host="http://mem.local:9000/", api_key="k1", transport=t),
], ids=["positional", "mem0-keywords", "both-agree"])
def test_both_forms_reach_the_same_server_with_the_key(make, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCALMEM_API_KEY", raising=False)
    seen, transport = _recording()
    with make(transport) as client:
        client.health()
    assert [str(r.url) for r in seen] == ["http://mem.local:9000/health"]
    assert seen[0].headers[API_KEY_HEADER] == "k1"


def test_address_defaults_to_the_environment_then_serves_default(monkeypatch: pytest.MonkeyPatch) -> None:
    seen, transport = _recording()
    monkeypatch.setenv("LOCALMEM_SERVER", "http://from-env:1")
    monkeypatch.setenv("LOCALMEM_API_KEY", "k2")
    with MemoryClient(transport=transport) as client:
        client.health()
    monkeypatch.delenv("LOCALMEM_SERVER")
    with MemoryClient(transport=transport) as client:
        client.health()
    assert [str(r.url) for r in seen] == ["http://from-env:1/health", "http://127.0.0.1:8765/health"]
    assert {r.headers[API_KEY_HEADER] for r in seen} == {"k2"}


def test_two_different_addresses_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="two addresses"):
        MemoryClient("http://a:1", host="http://b:2")
