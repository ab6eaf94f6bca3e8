"""The memory commands: add, search, list, get, update, delete, delete-all, history, reset, export, import."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from localmem import preload, progress
from localmem.cli.output import emit_json, table
from localmem.errors import InvalidInputError
from localmem.inputs import json_value
from localmem.private import open_private

# The memory text carries its date ("(8 May 2023) ..."); `get` shows every field, created_at included.
_LIST_COLUMNS = ["id", "kind", "memory", "user_id", "agent_id", "run_id"]
_BULK_CHUNK = 64
# More rows than a screen holds are summarised in one line instead (--json still gives every row).
TABLE_ROWS = 50
# Memory's errors name its Python arguments; the CLI's user typed flags.
_FLAG_TERMS = ((re.compile(r"\buser_id\b"), "--user"), (re.compile(r"\bagent_id\b"), "--agent"),
               (re.compile(r"\brun_id\b"), "--run"), (re.compile(r"\bor filters\b"), "or --filter"),
               (re.compile(r"\b(?:add|search|get_all|delete_all)\(\)"), "{command}"))


def store_options() -> argparse.ArgumentParser:
    """The options that say which store to open (shared with ``serve`` and ``mcp``)."""
    store = argparse.ArgumentParser(add_help=False)
    where = store.add_argument_group("store")
    where.add_argument("--db", default=os.environ.get("LOCALMEM_DB", "./localmem.db"),
                       help="Milvus Lite data folder (default: $LOCALMEM_DB or ./localmem.db)")
    where.add_argument("--uri", default=os.environ.get("LOCALMEM_URI"),
                       help="a Milvus server or Zilliz Cloud uri instead of --db")
    where.add_argument("--token", default=os.environ.get("LOCALMEM_TOKEN", ""), help="server token (user:password)")
    where.add_argument("--collection", default="localmem", help="collection name (default: localmem)")
    where.add_argument("--history-db", help="history SQLite file (default: beside the Lite folder)")
    store.add_argument("--json", action="store_true", help="print JSON for scripts")
    store.add_argument("--debug", action="store_true", help="show tracebacks")
    return store


def register(commands: Any, epilog: str) -> None:
    store = store_options()
    store.add_argument("--server", default=os.environ.get("LOCALMEM_SERVER") or None, metavar="URL",
                       help="use a running `localmem serve` (default: $LOCALMEM_SERVER); no models load here. "
                            "API key: $LOCALMEM_API_KEY")
    scope = argparse.ArgumentParser(add_help=False)
    who = scope.add_argument_group("scope")
    who.add_argument("--user", help="user_id")
    who.add_argument("--agent", help="agent_id")
    who.add_argument("--run", help="run_id")
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("--filter", dest="filters", type=_json_object, metavar="JSON",
                         help='Mem0 filters, e.g. \'{"category": "hobbies"}\' or \'{"level": {"gte": 2}}\'')

    def command(name: str, handler: Any, help: str, parents: list[argparse.ArgumentParser]) -> Any:
        parser = commands.add_parser(name, help=help, description=help, parents=parents, epilog=epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.set_defaults(handler=handler)
        return parser

    p = command("add", _add, "add memories from text (an LLM extracts facts unless --no-infer)", [store, scope])
    p.add_argument("text", nargs="*", help="one or more messages, each its own (quote a sentence); or use --file")
    p.add_argument("--file", help="one message per line ('-' for stdin); stored with --no-infer in batches")
    p.add_argument("--metadata", type=_json_object, metavar="JSON", help="metadata for every memory created")
    p.add_argument("--infer", action=argparse.BooleanOptionalAction, default=True,
                   help="extract facts with the local LLM (default) or, with --no-infer, store the text as it is")
    p.add_argument("--timestamp", help="when it was said: Unix seconds or ISO 8601 (default: now)")
    p = command("search", _search, "memories most similar to a query (score: higher is better)",
                [store, scope, filters])
    p.add_argument("query")
    p.add_argument("--limit", type=int, default=5)
    p.add_argument("--threshold", type=float, help="minimum score")
    p = command("list", _list, "the memories of a scope, oldest first", [store, scope, filters])
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--episodes", action="store_true", help="list every stored message too, not only facts")
    p = command("get", _get, "one memory by id", [store])
    p.add_argument("memory_id")
    p = command("update", _update, "replace a memory's text", [store])
    p.add_argument("memory_id")
    p.add_argument("text")
    p = command("delete", _delete, "delete one memory (its history is kept)", [store])
    p.add_argument("memory_id")
    p = command("delete-all", _delete_all, "delete every memory of a scope", [store, scope])
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p = command("history", _history, "the change history of a memory, oldest first", [store])
    p.add_argument("memory_id")
    p = command("reset", _reset, "delete every memory and all history of the collection", [store])
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p = command("export", _export, "write the collection to a versioned JSONL file", [store])
    p.add_argument("path", help="output file ('-' for stdout)")
    p.add_argument("--vectors", action="store_true", help="include vectors (re-used on import by the same embedder)")
    p = command("import", _import, "load a JSONL export (re-embeds when the embedder differs)", [store])
    p.add_argument("path")
    p.add_argument("--on-conflict", choices=["skip", "replace", "error"], default="skip",
                   help="what to do with ids that already exist (default: skip)")


# -- handlers -------------------------------------------------------------------
def _add(args: argparse.Namespace) -> int:
    if bool(args.text) == bool(args.file):
        raise InvalidInputError("give the text to add, or --file, not both or neither")
    with _memory(args) as memory, _in_flag_terms("add"):
        scope = _scope(args)
        if args.text:
            # Each argument is one message: with --no-infer, one memory each; with inference, one
            # conversation the model reads as a whole. Quote a sentence to keep it one message.
            messages: Any = args.text[0] if len(args.text) == 1 else [
                {"role": "user", "content": text} for text in args.text]
            results = memory.add(messages, metadata=args.metadata, infer=args.infer,
                                 timestamp=_timestamp(args.timestamp), **scope)["results"]
        else:
            lines = _read_lines(args.file)
            results = []
            with _progress(len(lines), "adding", args) as step:
                for start in range(0, len(lines), _BULK_CHUNK):
                    chunk = lines[start:start + _BULK_CHUNK]
                    messages = [{"role": "user", "content": line} for line in chunk]
                    results += memory.add(messages, metadata=args.metadata, infer=False,
                                          timestamp=_timestamp(args.timestamp), **scope)["results"]
                    step(len(chunk))
    if args.json:
        emit_json({"results": results, "relations": []})
    elif len(results) > TABLE_ROWS:
        print(_event_summary(results))
    else:
        table(results, ["event", "id", "memory"], wide="memory")
    return 0


def _event_summary(results: list[dict[str, Any]]) -> str:
    """One line for a large add: how many memories of each event (the table would scroll for pages)."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.get("event", "NONE")] = counts.get(result.get("event", "NONE"), 0) + 1
    parts = ", ".join(f"{n} {event}" for event, n in sorted(counts.items()))
    return f"{len(results)} memories written ({parts}); --json lists them, `localmem list` shows them"


def _timestamp(value: str | None) -> str | int | None:
    """Digits are Unix seconds; anything else goes to add() as ISO 8601 (it reports what is wrong)."""
    return int(value) if value is not None and value.strip().isdigit() else value


def _search(args: argparse.Namespace) -> int:
    with _memory(args) as memory, _in_flag_terms("search"):
        hits = memory.search(args.query, limit=args.limit, threshold=args.threshold, filters=args.filters,
                             **_scope(args))["results"]
    if args.json:
        emit_json({"results": hits})
    else:
        table(hits, ["score", "id", "memory", "user_id"], wide="memory")
    return 0


def _list(args: argparse.Namespace) -> int:
    with _memory(args) as memory, _in_flag_terms("list"):
        items = memory.get_all(limit=args.limit, filters=args.filters, include_episodes=args.episodes,
                               **_scope(args))["results"]
    if args.json:
        emit_json({"results": items})
    else:
        table(items, _LIST_COLUMNS, wide="memory")
    return 0


def _get(args: argparse.Namespace) -> int:
    with _memory(args) as memory:
        item = memory.get(args.memory_id)
    if args.json:
        emit_json(item)
    else:
        for key, value in item.items():
            print(f"{key:>11}: {json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value}")
    return 0


def _update(args: argparse.Namespace) -> int:
    with _memory(args) as memory:
        return _message(args, memory.update(args.memory_id, args.text))


def _delete(args: argparse.Namespace) -> int:
    with _memory(args) as memory:
        return _message(args, memory.delete(args.memory_id))


def _delete_all(args: argparse.Namespace) -> int:
    scope = _scope(args)
    if not scope:
        raise InvalidInputError("delete-all needs --user, --agent or --run")
    _confirm(args, f"Delete every memory of {scope}?")
    with _memory(args) as memory:
        return _message(args, memory.delete_all(**scope))


def _history(args: argparse.Namespace) -> int:
    with _memory(args) as memory:
        events = memory.history(args.memory_id)
    if args.json:
        emit_json(events)
    else:
        # created_at is the memory's birth on every row; the event's own time is its updated_at.
        rows = [{**e, "when": e.get("updated_at") or e.get("created_at")} for e in events]
        table(rows, ["event", "when", "old_memory", "new_memory"], wide="new_memory")
    return 0


def _reset(args: argparse.Namespace) -> int:
    _confirm(args, f"Delete every memory and all history of collection {args.collection!r}?")
    with _memory(args) as memory:
        memory.reset()
    return _message(args, {"message": "Memory store reset"})


def _export(args: argparse.Namespace) -> int:
    from localmem.transfer import export_store

    _local_only(args, "export")
    with _memory(args) as memory:
        total = memory.store.count()
        with _output(args.path) as out, _progress(total, "exporting", args) as step:
            summary = export_store(memory, out, with_vectors=args.vectors, progress=step)
    report = {"memories": summary.memories, "orphan_histories": summary.orphan_histories,
              "history_events": summary.history_events, "vectors": summary.vectors, "queued_extractions": summary.jobs}
    if args.path != "-":
        _summary(args, report)
    return 0


def _import(args: argparse.Namespace) -> int:
    from localmem.transfer import import_store, validate

    _local_only(args, "import")
    path = Path(args.path)
    if not path.is_file():
        raise InvalidInputError(f"no such file: {path}")
    plan = validate(path)  # refuses a bad file before the store is opened; the write is the only other read
    with _memory(args) as memory, _progress(plan.items, "importing", args) as step:
        summary = import_store(memory, plan, on_conflict=args.on_conflict, progress=step)
    _summary(args, {"memories": summary.memories, "skipped": summary.skipped, "reembedded": summary.reembedded,
                    "history_events": summary.history_events, "queued_extractions": summary.jobs})
    return 0


# -- helpers --------------------------------------------------------------------
@contextlib.contextmanager
def _in_flag_terms(command: str) -> Iterator[None]:
    """Re-word an InvalidInputError from Memory in the flags of ``localmem COMMAND`` (same class, same exit)."""
    try:
        yield
    except InvalidInputError as exc:
        text = str(exc)
        for pattern, flag in _FLAG_TERMS:
            text = pattern.sub(flag.format(command=f"'localmem {command}'"), text)
        exc.args = (text,)
        raise


@contextlib.contextmanager
def _memory(args: argparse.Namespace) -> Iterator[Any]:
    """A MemoryClient when a server is named (this process loads no model), else a Memory."""
    if getattr(args, "server", None):
        from localmem.client import MemoryClient

        with MemoryClient(args.server) as client:
            yield client
        return
    with open_memory(args) as memory:
        yield memory


def open_memory(args: argparse.Namespace) -> Any:
    from localmem.config import MemoryConfig, VectorStoreConfig

    uri = args.uri or args.db
    store = VectorStoreConfig(uri=uri, token=args.token, collection_name=args.collection)
    preload.store_modules(store.is_local_file)  # the slowest imports, begun before localmem's own
    from localmem import Memory

    config = MemoryConfig(vector_store=store, history_db_path=args.history_db,
                          background_extraction=getattr(args, "background_extraction", False))
    return Memory(config)


def _local_only(args: argparse.Namespace, command: str) -> None:
    if getattr(args, "server", None):
        raise InvalidInputError(f"{command} reads the store directly and cannot go through --server/LOCALMEM_SERVER; "
                                "stop the server (it holds the store) and run it without --server")


def _scope(args: argparse.Namespace) -> dict[str, str]:
    pairs = {"user_id": args.user, "agent_id": args.agent, "run_id": args.run}
    return {k: v for k, v in pairs.items() if v is not None}


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json_value(text, "the value")
    except InvalidInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def _read_lines(name: str) -> list[str]:
    if name == "-":
        lines = [line.strip() for line in sys.stdin if line.strip()]
    else:
        try:
            text = Path(name).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInputError(f"cannot read {name}: {exc.strerror}") from exc
        lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise InvalidInputError(f"{name}: no text lines to add")
    return lines


def _confirm(args: argparse.Namespace, question: str) -> None:
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise InvalidInputError(f"{question.rstrip('?')}: refusing without --yes (stdin is not a terminal)")
    if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
        raise InvalidInputError("cancelled; nothing was deleted")


def _message(args: argparse.Namespace, result: dict[str, str]) -> int:
    if args.json:
        emit_json(result)
    else:
        print(result["message"])
    return 0


def _summary(args: argparse.Namespace, report: dict[str, Any]) -> None:
    if args.json:
        emit_json(report)
    else:
        print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in report.items()))


@contextlib.contextmanager
def _output(path: str) -> Iterator[Any]:
    if path == "-":
        yield sys.stdout
        return
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    with open_private(partial) as fh:  # an export holds every memory: its owner's eyes only
        yield fh
    # Only a complete export takes the final name.
    partial.replace(target)


def _progress(total: int, what: str, args: argparse.Namespace) -> Any:
    """A bar on stderr for people (localmem/progress.py); none for --json."""
    return progress.bar(total, what, unit="mem", at_least=1, quiet=args.json)
