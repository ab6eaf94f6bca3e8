"""``localmem serve``: one process owns the store and the models; others talk HTTP or MCP to it.

    app.py     the REST routes (Mem0's server shapes) and the error -> status mapping
    guards.py  ASGI guards run before any route: API key, request body size
    mcp.py     the same memory as MCP tools (stdio for ``localmem mcp``, streamable HTTP on serve)
    run.py     binding rules, uvicorn, graceful shutdown

Nothing here is imported by ``import localmem``: FastAPI, uvicorn and mcp are the optional
``server`` extra.
"""

# A wait for background extraction holds a thread: bounded, so that a client gone away frees it.
# Clients wait longer in slices (MemoryClient.wait_for_extraction).
MAX_WAIT_S = 60.0
