"""The sharing commands: ``serve`` (REST + MCP over HTTP) and ``mcp`` (MCP over stdio)."""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
from pathlib import Path
from typing import Any

from localmem.cli.memory_cmds import open_memory, store_options
from localmem.cli.output import emit_json
from localmem.dist import extra_hint
from localmem.errors import DependencyError

_INSTALL_HINT = f"the server needs the 'server' extra: {extra_hint('server')}"


def register(commands: Any, epilog: str) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = commands.add_parser(
        "serve", help="serve the store over HTTP: Mem0's REST API, MCP at /mcp, docs at /docs",
        description="One process owns the store and the models; clients (MemoryClient, the CLI with --server, "
                    "MCP assistants) share it. Loopback only unless LOCALMEM_API_KEY is set.",
        parents=[store_options()], epilog=epilog, formatter_class=fmt)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default: 8765)")
    p.add_argument("--max-body-bytes", type=int, default=1024 * 1024, help="refuse larger requests (413)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--background-extraction", action="store_true",
                   help="add() answers once the messages are stored; their facts are extracted afterwards "
                        "(clients wait with POST /extraction/wait or MemoryClient.wait_for_extraction)")
    p.set_defaults(handler=_serve)
    p = commands.add_parser(
        "mcp", help="serve the memory as MCP tools on stdin/stdout (for an assistant's config)",
        description="MCP tools add_memory, search_memories, list_memories, get_memory, update_memory, "
                    "delete_memory, memory_history over stdio. With --server, the tools use a running "
                    "`localmem serve` instead of opening the store.",
        parents=[store_options()], epilog=epilog, formatter_class=fmt)
    p.add_argument("--server", default=os.environ.get("LOCALMEM_SERVER") or None, metavar="URL",
                   help="use a running `localmem serve` (default: $LOCALMEM_SERVER)")
    p.add_argument("--print-config", action="store_true",
                   help="print the JSON block for Claude Desktop / Cursor (absolute paths) and exit")
    p.set_defaults(handler=_mcp)


def _serve(args: argparse.Namespace) -> int:
    try:
        from localmem.server.run import serve
    except ImportError as exc:
        raise DependencyError(f"{_INSTALL_HINT} ({exc.name} is missing)") from exc
    serve(lambda: open_memory(args), host=args.host, port=args.port, api_key=os.environ.get("LOCALMEM_API_KEY"),
          max_body_bytes=args.max_body_bytes, log_level=args.log_level)
    return 0


def _mcp(args: argparse.Namespace) -> int:
    if args.print_config:
        emit_json(assistant_config(args))
        return 0
    try:
        from localmem.async_memory import AsyncMemory
        from localmem.server.mcp import run_stdio
    except ImportError as exc:
        raise DependencyError(f"{_INSTALL_HINT} ({exc.name} is missing)") from exc
    if args.server:
        from localmem.client import MemoryClient

        run_stdio(AsyncMemory(memory=MemoryClient(args.server)))
    else:
        run_stdio(AsyncMemory(memory=open_memory(args)))
    return 0


def assistant_config(args: argparse.Namespace) -> dict[str, Any]:
    """The ``mcpServers`` block Claude Desktop and Cursor read, for this very installation.

    A GUI app starts the command with its own PATH and working directory, so a bare ``localmem``
    is not found and ``./localmem.db`` would land who knows where: every path here is absolute.
    """
    where = ["--server", args.server] if args.server else (
        ["--uri", args.uri] if args.uri else ["--db", str(Path(args.db).expanduser().resolve())])
    if args.collection != "localmem":
        where += ["--collection", args.collection]
    if args.history_db:
        where += ["--history-db", str(Path(args.history_db).expanduser().resolve())]
    script = Path(sysconfig.get_path("scripts")) / ("localmem.exe" if os.name == "nt" else "localmem")
    # The console script of this interpreter's environment; else the interpreter itself (a checkout
    # run with PYTHONPATH has no script), which is just as absolute.
    command, args_ = (str(script), ["mcp", *where]) if script.is_file() else (
        sys.executable, ["-m", "localmem", "mcp", *where])
    server: dict[str, Any] = {"command": command, "args": args_}
    # What this shell sets that the GUI would not; never the API key (a secret does not belong in output
    # one pastes around: add "LOCALMEM_API_KEY" to env by hand when the server has one).
    env = {name: os.environ[name] for name in ("LOCALMEM_MODELS_DIR", "PYTHONPATH") if os.environ.get(name)}
    if env:
        server["env"] = env
    return {"mcpServers": {"localmem": server}}
