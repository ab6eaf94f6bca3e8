"""The REST API of ``localmem serve``: Mem0's server routes and shapes over one AsyncMemory.

Routes only translate HTTP to ``Memory`` calls; all validation beyond JSON types is
Memory's own, and every LocalmemError becomes a status with a one-line JSON reason
(localmem/wire.py). Calls run in AsyncMemory's worker threads: a search does not wait
for the event loop, and only writes wait for each other (Memory's write lock).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import AliasChoices, BaseModel, Field
from starlette.exceptions import HTTPException

from localmem import __version__
from localmem.async_memory import AsyncMemory
from localmem.errors import LocalmemError
from localmem.inputs import json_object
from localmem.server import MAX_WAIT_S
from localmem.server.docs_page import add_docs
from localmem.wire import error_body, one_line, status_for

log = logging.getLogger("localmem.server")



class Message(BaseModel):
    role: str = Field(description="user, assistant or system")
    content: str
    name: str | None = Field(None, description="the speaker's name (kept with the message)")


class Scoped(BaseModel):
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None

    def scope(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump(include={"user_id", "agent_id", "run_id"}).items() if v is not None}


class MemoryCreate(Scoped):
    messages: list[Message] | str = Field(description="messages, or one text")
    metadata: dict[str, Any] | None = None
    infer: bool = Field(True, description="extract facts with the local LLM; false stores the text as it is")
    prompt: str | None = None
    timestamp: int | float | str | None = Field(
        None, description="when the messages were said: Unix seconds or ISO 8601 (default: now)")


class SearchRequest(Scoped):
    query: str
    filters: dict[str, Any] | None = None
    limit: int = 100
    threshold: float | None = None


class ExtractionWait(BaseModel):
    timeout: float = Field(0.0, ge=0, allow_inf_nan=False,
                           description=f"seconds to wait, at most {MAX_WAIT_S:g} (0: just look)")
    through: int | None = Field(None, description="the last job to wait for, as an earlier answer gave it "
                                                   "(default: every job queued now)")


class MemoryUpdate(BaseModel):
    # Mem0's server takes the new text as "data"; its hosted client sends "text".
    data: str = Field(validation_alias=AliasChoices("data", "text"))


def create_app(memory: AsyncMemory, *, mcp: Any = None) -> FastAPI:
    """The FastAPI app over ``memory``; it closes the memory when the server shuts down.

    ``mcp``: a FastMCP server whose streamable HTTP endpoint (/mcp) is served by the same app.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(memory.close)  # runs last: after the MCP sessions end
            if mcp is not None:
                await stack.enter_async_context(mcp.session_manager.run())
            yield
        log.info("localmem server stopped; store released")

    # docs_url/redoc_url off: FastAPI's pages load their assets from a CDN; docs_page serves them locally.
    app = FastAPI(title="localmem", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Offline long-term memory with Mem0's REST API. Errors: "
                              '{"error": "<LocalmemError class>", "detail": "<one line>"}.')
    _add_error_handlers(app)
    add_docs(app)

    @app.get("/health", summary="Liveness (no API key needed)")
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse(url="/docs")

    @app.post("/memories", summary="Create memories")
    async def add(body: MemoryCreate) -> dict[str, Any]:
        messages = (body.messages if isinstance(body.messages, str)
                    else [m.model_dump(exclude_none=True) for m in body.messages])
        return await memory.add(messages, metadata=body.metadata, infer=body.infer, prompt=body.prompt,
                                timestamp=body.timestamp, **body.scope())

    @app.get("/memories", summary="List the memories of a scope")
    async def get_all(user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                      limit: int = 100, filters: str | None = None,
                      include_episodes: bool = False) -> dict[str, Any]:
        """``filters``: Mem0's filters as one JSON object, e.g. ``{"category": "hobbies"}``;
        ``include_episodes``: list every stored message too, not only those that yielded no fact."""
        scope = Scoped(user_id=user_id, agent_id=agent_id, run_id=run_id).scope()
        return await memory.get_all(limit=limit, filters=_json_object("filters", filters),
                                    include_episodes=include_episodes, **scope)

    @app.get("/memories/{memory_id}", summary="Get a memory")
    async def get(memory_id: str) -> dict[str, Any]:
        return await memory.get(memory_id)

    @app.put("/memories/{memory_id}", summary="Update a memory's text")
    async def update(memory_id: str, body: MemoryUpdate) -> dict[str, str]:
        return await memory.update(memory_id, body.data)

    @app.delete("/memories/{memory_id}", summary="Delete a memory (its history is kept)")
    async def delete(memory_id: str) -> dict[str, str]:
        return await memory.delete(memory_id)

    @app.get("/memories/{memory_id}/history", summary="A memory's history, oldest first")
    async def history(memory_id: str) -> list[dict[str, Any]]:
        return await memory.history(memory_id)

    @app.delete("/memories", summary="Delete every memory of a scope")
    async def delete_all(user_id: str | None = None, agent_id: str | None = None,
                         run_id: str | None = None) -> dict[str, str]:
        return await memory.delete_all(**Scoped(user_id=user_id, agent_id=agent_id, run_id=run_id).scope())

    @app.post("/search", summary="Search memories")
    async def search(body: SearchRequest) -> dict[str, Any]:
        return await memory.search(body.query, filters=body.filters, limit=body.limit, threshold=body.threshold,
                                   **body.scope())

    @app.post("/extraction/wait", summary="Wait for background extraction (background_extraction: true)")
    async def wait_for_extraction(body: ExtractionWait) -> dict[str, Any]:
        """Waits up to ``timeout`` s until the facts of every add() queued so far (or up to ``through``) are
        written. ``done``: they are; ``failed``: some could not be extracted (logged; they stay queued)."""
        progress = await memory.extraction_progress(min(body.timeout, MAX_WAIT_S), body.through)
        return progress.to_dict()

    @app.post("/reset", summary="Delete every memory and all history")
    async def reset() -> dict[str, str]:
        await memory.reset()
        return {"message": "All memories reset"}

    if mcp is not None:
        # The MCP app's own route (/mcp) joins ours; its session manager runs in our lifespan.
        app.router.routes.extend(mcp.streamable_http_app().routes)
    return app


def _json_object(name: str, text: str | None) -> dict[str, Any] | None:
    return None if text is None else json_object(text, name)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LocalmemError)
    async def localmem_error(request: Request, exc: LocalmemError) -> JSONResponse:
        return JSONResponse(error_body(exc), status_code=status_for(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        detail = one_line(f"{where}: {first.get('msg', 'invalid request')}" if where else first.get("msg", ""))
        return JSONResponse({"error": "InvalidInputError", "detail": detail}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        name = {404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge"}.get(exc.status_code, "HTTPError")
        return JSONResponse({"error": name, "detail": one_line(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the server's log, never to the client.
        log.error("unexpected %s in %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
        detail = f"unexpected {type(exc).__name__}; see the server log"
        return JSONResponse({"error": "InternalError", "detail": detail}, status_code=500)
