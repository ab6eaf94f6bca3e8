"""Argument parsing, dispatch, and the error-to-exit-code contract of ``localmem``."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Sequence

from localmem.errors import (
    BenchDataError,
    ConfigError,
    DependencyError,
    ExtractionError,
    HistoryError,
    InvalidInputError,
    LocalmemError,
    LocalmemWarning,
    MemoryNotFoundError,
    ModelError,
    StoreError,
)

# Exit codes scripts can rely on. argparse itself exits 2 on a usage error.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_INVALID_INPUT = 4
EXIT_STORE = 5
EXIT_MODEL = 6
EXIT_CONFIG = 7
EXIT_CHECK_FAILED = 8
EXIT_INTERRUPTED = 130

EPILOG = """\
exit codes:
  0 success        3 memory not found   6 model problem (missing, corrupt, extraction failed, package missing)
  1 other error    4 invalid input      7 bad configuration
  2 usage error    5 store problem (locked by another process, unreachable, schema mismatch, history db)
  8 a check failed (doctor, models verify, bench data)    130 interrupted
environment: LOCALMEM_DB (default --db), LOCALMEM_URI, LOCALMEM_TOKEN, LOCALMEM_MODELS_DIR, LOCALMEM_BENCH_DATA,
  LOCALMEM_SERVER (default --server), LOCALMEM_API_KEY (serve and clients)
"""


def exit_code(error: BaseException) -> int:
    """The documented exit code for an error (most specific class first)."""
    for kind, code in ((MemoryNotFoundError, EXIT_NOT_FOUND), (InvalidInputError, EXIT_INVALID_INPUT),
                       (StoreError, EXIT_STORE), (HistoryError, EXIT_STORE), (ModelError, EXIT_MODEL),
                       (DependencyError, EXIT_MODEL), (ExtractionError, EXIT_MODEL), (ConfigError, EXIT_CONFIG),
                       (BenchDataError, EXIT_CHECK_FAILED)):
        if isinstance(error, kind):
            return code
    return EXIT_ERROR


def build_parser() -> argparse.ArgumentParser:
    from localmem import __version__
    from localmem.cli import admin_cmds, memory_cmds, server_cmds

    parser = argparse.ArgumentParser(
        prog="localmem", description="Operate a localmem store offline: memories, models, checks, benchmarks.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"localmem {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    memory_cmds.register(commands, EPILOG)
    admin_cmds.register(commands, EPILOG)
    server_cmds.register(commands, EPILOG)
    return parser


def run() -> None:
    """The console script: ``main()``, then an immediate exit.

    By the time ``main`` returns, every store it opened is closed (its engine stopped, history
    committed), so all that is left is the interpreter's teardown of pymilvus, gRPC and pandas:
    ~0.4 s of a ~2 s cold command. Anything left open (a library misused by a plugin) would fare as
    after a kill -9, which the store and history are built to survive. The streams and logging
    handlers are flushed first.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    logging.shutdown()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        # Everything after 'bench' (--help too) belongs to localmem.bench.run: argparse's REMAINDER
        # would still try to read a leading '--quick' as one of ours.
        args = parser.parse_args(["bench"])
        args.bench_args = argv[1:]
    else:
        args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    try:
        with warnings.catch_warnings(), _quiet_libraries(debug):
            # localmem's own warnings (e.g. a dims override) are one line for a shell user.
            warnings.simplefilter("always", LocalmemWarning)
            warnings.showwarning = _one_line_warning
            code: int = args.handler(args)
        return code
    except KeyboardInterrupt:
        print("localmem: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except LocalmemError as exc:
        if debug:
            raise
        print(f"localmem: error: {_one_line(exc)}", file=sys.stderr)
        return exit_code(exc)
    except OSError as exc:
        if debug:
            raise
        print(f"localmem: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except UnicodeDecodeError as exc:
        if debug:
            raise
        print(f"localmem: error: input is not UTF-8 text ({exc.reason} at byte {exc.start})", file=sys.stderr)
        return EXIT_INVALID_INPUT
    except Exception as exc:  # a bug or an unmapped library error: still one line for a script to read
        if debug:
            raise
        print(f"localmem: error: unexpected {type(exc).__name__}: {_one_line(exc)} (--debug shows the traceback)",
              file=sys.stderr)
        return EXIT_ERROR


@contextlib.contextmanager
def _quiet_libraries(debug: bool) -> Iterator[None]:
    """Keep third-party log records (milvus_lite logs a traceback before we turn its error into one
    line) off the terminal: a root NullHandler stops Python's last-resort stderr printer."""
    if debug:
        yield
        return
    root, quiet = logging.getLogger(), logging.NullHandler()
    root.addHandler(quiet)
    try:
        yield
    finally:
        root.removeHandler(quiet)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      file: object = None, line: str | None = None) -> None:
    print(f"localmem: warning: {_one_line(Exception(str(message)))}", file=sys.stderr)
