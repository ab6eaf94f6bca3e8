"""Many clients, one ``localmem serve``: correctness and latency under a mixed concurrent load.

``python -m localmem.bench.server_load`` starts a real server on 127.0.0.1 (a fresh Milvus Lite
folder), runs ``--clients`` threads of ``--ops`` seeded operations each (add infer=False,
search, update, delete), then checks that nothing was lost, doubled or left without its
history, and times CLI commands with and without the server. Bounded in count and time;
loopback only. Writes ``results.json`` and ``report.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from localmem import MemoryClient
from localmem.bench.env import describe
from localmem.bench.timing import summarize

# The folder that holds the localmem package: subprocesses import the same localmem.
ROOT = Path(__file__).resolve().parents[2]
# The committed results folder when run from the checkout root, else a folder in the current directory.
_COMMITTED = Path("benchmarks/results")
DEFAULT_OUT = _COMMITTED / "server" if _COMMITTED.is_dir() else Path("localmem-bench-server")
# Share of each operation in a client's stream; update/delete fall back to add when the client owns nothing.
MIX = (("add", 0.4), ("search", 0.3), ("update", 0.15), ("delete", 0.15))
TIME_LIMIT_S = 600.0


@dataclass
class ClientRun:
    """What one client did and saw: the truth the store is checked against."""

    user: str
    latencies: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name, _ in MIX})
    errors: list[str] = field(default_factory=list)
    live: dict[str, str] = field(default_factory=dict)  # id -> current text
    events: dict[str, list[str]] = field(default_factory=dict)  # id -> events this client caused


def run_client(url: str, index: int, ops: int, seed: int, deadline: float) -> ClientRun:
    rng = random.Random(seed * 1000 + index)
    run = ClientRun(user=f"client-{index}")
    with MemoryClient(url, timeout=60) as client:
        for step in range(ops):
            if time.monotonic() > deadline:
                run.errors.append("time limit reached")
                return run
            op = rng.choices([name for name, _ in MIX], [w for _, w in MIX])[0]
            if op in ("update", "delete") and not run.live:
                op = "add"
            started = time.perf_counter()
            try:
                _one(client, run, op, step, rng)
            except Exception as exc:  # counted, not raised: the figure is the error count
                run.errors.append(f"{op}: {type(exc).__name__}: {exc}")
            run.latencies[op].append(time.perf_counter() - started)
    return run


def _one(client: MemoryClient, run: ClientRun, op: str, step: int, rng: random.Random) -> None:
    if op == "add":
        text = f"{run.user} note {step}: likes {rng.choice(['tea', 'jazz', 'chess', 'rain', 'maps'])} #{step}"
        result = client.add(text, user_id=run.user, infer=False)["results"]
        for change in result:
            run.live[change["id"]] = change["memory"]
            run.events.setdefault(change["id"], []).append(change["event"])
    elif op == "search":
        client.search(f"what does {run.user} like?", user_id=run.user, limit=5)
    elif op == "update":
        memory_id = rng.choice(sorted(run.live))
        text = f"{run.user} updated note at step {step}"
        client.update(memory_id, text)
        run.live[memory_id] = text
        run.events[memory_id].append("UPDATE")
    else:
        memory_id = rng.choice(sorted(run.live))
        client.delete(memory_id)
        del run.live[memory_id]
        run.events[memory_id].append("DELETE")


def verify(url: str, runs: list[ClientRun]) -> dict[str, int]:
    """Compare the store and every history with what the clients were told."""
    lost = duplicated = wrong_text = unexpected = history_mismatch = 0
    with MemoryClient(url) as client:
        for run in runs:
            stored = client.get_all(user_id=run.user, limit=10_000)["results"]
            ids = [m["id"] for m in stored]
            duplicated += len(ids) - len(set(ids))
            texts = [m["memory"] for m in stored]
            duplicated += len(texts) - len(set(texts))
            by_id = {m["id"]: m["memory"] for m in stored}
            lost += sum(1 for i in run.live if i not in by_id)
            wrong_text += sum(1 for i, t in run.live.items() if i in by_id and by_id[i] != t)
            unexpected += sum(1 for i in by_id if i not in run.live)
            for memory_id, events in run.events.items():
                if [e["event"] for e in client.history(memory_id)] != events:
                    history_mismatch += 1
    return {"lost": lost, "duplicated": duplicated, "wrong_text": wrong_text, "unexpected": unexpected,
            "history_mismatch": history_mismatch}


def load(url: str, clients: int, ops: int, seed: int) -> dict[str, Any]:
    deadline = time.monotonic() + TIME_LIMIT_S
    runs: list[ClientRun] = [ClientRun(user="?")] * clients
    threads = []
    for i in range(clients):
        def work(i: int = i) -> None:
            runs[i] = run_client(url, i, ops, seed, deadline)
        threads.append(threading.Thread(target=work))
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    per_op = {name: summarize([s for r in runs for s in r.latencies[name]]).to_dict() for name, _ in MIX}
    total = sum(len(s) for r in runs for s in r.latencies.values())
    errors = [e for r in runs for e in r.errors]
    return {"clients": clients, "ops_per_client": ops, "ops": total, "wall_s": wall, "throughput_ops_s": total / wall,
            "errors": len(errors), "error_samples": errors[:5], "per_op": per_op, "checks": verify(url, runs),
            "memories_alive": sum(len(r.live) for r in runs), "memories_created": sum(len(r.events) for r in runs)}


def cli_latency(url: str, db: Path, repeats: int) -> dict[str, Any]:
    """Wall time of `localmem search` / `add --no-infer` as a new process, via the server and direct."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("LOCALMEM_SERVER", None)

    def timed(args: list[str]) -> tuple[float, float]:
        """(wall, CPU) seconds of one command; CPU time is less distorted by a busy machine than wall time."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "localmem", *args], check=True, capture_output=True, env=env,
                       timeout=300)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    out: dict[str, Any] = {}
    for name, args in (("search", ["search", "what do I like?", "--user", "cli"]),
                       ("add", ["add", "--no-infer", "--user", "cli", "I like maps"])):
        via = [timed([*args, "--server", url]) for _ in range(repeats)]
        direct = [timed([*args, "--db", str(db)]) for _ in range(max(2, repeats // 2))]
        out[name] = {"with_server_s": _spread([w for w, _ in via]), "without_server_s": _spread([w for w, _ in direct]),
                     "with_server_cpu_s": _spread([c for _, c in via]),
                     "without_server_cpu_s": _spread([c for _, c in direct])}
    return out


def _spread(seconds: list[float]) -> dict[str, float]:
    return {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds), "n": len(seconds)}


@contextlib.contextmanager
def serve(db: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "localmem", "serve", "--db", str(db), "--port", str(port),
                                "--log-level", "warning"], env=env, cwd=db.parent)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("localmem serve did not start")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(60)


def render(results: dict[str, Any]) -> str:
    load_ = results["load"]
    lines = ["# localmem serve under load", "",
             f"{load_['clients']} concurrent clients x {load_['ops_per_client']} mixed operations "
             f"(add infer=False 40%, search 30%, update 15%, delete 15%) on 127.0.0.1, "
             f"{results['env']['cores_usable']} cores ({results['env']['cpu']}).", "",
             f"- operations: {load_['ops']} in {load_['wall_s']:.1f} s = **{load_['throughput_ops_s']:.1f} ops/s**",
             f"- errors: **{load_['errors']}**; checks: " + ", ".join(f"{k} {v}" for k, v in load_["checks"].items()),
             f"- memories created {load_['memories_created']}, alive at the end {load_['memories_alive']}", "",
             "| operation | n | p50 ms | p95 ms | mean ms |", "|---|---|---|---|---|"]
    for name, s in load_["per_op"].items():
        lines.append(f"| {name} | {s['n']} | {s['p50_ms']:.1f} | {s['p95_ms']:.1f} | {s['mean_ms']:.1f} |")
    lines += ["", "CLI command as a new process (seconds, median of n; CPU = user + system time of the command):", "",
              "| command | with --server: wall | CPU | without (opens the store, loads the embedder): wall | CPU |",
              "|---|---|---|---|---|"]
    for name, c in results["cli"].items():
        w, d, wc, dc = c["with_server_s"], c["without_server_s"], c["with_server_cpu_s"], c["without_server_cpu_s"]
        lines.append(f"| {name} | {w['median']:.2f} (n={w['n']}) | {wc['median']:.2f} | {d['median']:.2f} "
                     f"(n={d['n']}) | {dc['median']:.2f} |")
    lines += ["", "Latencies are per request as a client sees them (HTTP on loopback included). The machine is "
              f"shared with other work (load average at the end: {results['load_average']}), which inflates wall "
              "times; see results.json for the environment."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cli-repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "served.db"
        with serve(db) as url:
            results: dict[str, Any] = {"load": load(url, args.clients, args.ops, args.seed)}
            results["cli"] = cli_latency(url, Path(tmp) / "direct.db", args.cli_repeats)
    results["env"] = describe("cpu")
    results["load_average"] = [round(x, 1) for x in os.getloadavg()]
    results["options"] = vars(args) | {"out": str(args.out)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "report.md").write_text(render(results))
    print(render(results))
    checks = results["load"]["checks"]
    return 0 if results["load"]["errors"] == 0 and not any(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
