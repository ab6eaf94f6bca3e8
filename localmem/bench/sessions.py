"""Adding a conversation one session per call: seconds per turn of add(infer=True) (issue #17).

An application that logs a whole session at once, or imports a chat history, calls
``add(messages, timestamp=...)`` once per session, and extraction reads the session's
turns together. The first ``--turns`` turns of the first ``--conversations`` LoCoMo dev
conversations are added so ("Speaker: text" user messages, the session's date), into a
fresh store with the default configuration. The same turns are then added with
``infer=False`` in the same run (embedding and storing only: the floor the model's
work adds to), so a figure can be read against what this machine did in those minutes;
on a shared host the same code measured 0.51 and 0.75 s a turn an hour apart. Last, the
same with ``background_extraction``: the seconds until every fact is written (the queued
calls are read in batches across sessions), and how long add() itself took.

Run: ``python -m localmem.bench.sessions [--conversations 2] [--turns 60] [--data DIR]``
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from localmem import LocalmemError, Memory, MemoryConfig
from localmem.bench import data
from localmem.bench.memory_quality import Turn, load
from localmem.config import VectorStoreConfig
from localmem.temporal import parse_locomo_datetime


def sessions(turns: Sequence[Turn]) -> list[list[Turn]]:
    """Consecutive turns said at the same session time."""
    return [list(group) for _, group in itertools.groupby(turns, key=lambda t: t.when)]


def add_sessions(conversations: dict[str, list[Turn]], infer: bool, folder: Path,
                 background: bool = False) -> dict[str, Any]:
    """Seconds per turn adding every session in one call, the model loaded beforehand (with
    ``background``: until every queued extraction is written)."""
    memory = Memory(MemoryConfig(vector_store=VectorStoreConfig(uri=str(folder / "sessions.db")),
                                 background_extraction=background))
    try:
        memory.add("warm-up: loads the models", user_id="warm-up", infer=infer)
        if not memory.wait_for_extraction():
            raise LocalmemError("the warm-up's background extraction failed (see the localmem log)")
        added = 0
        calls: list[float] = []
        started = time.perf_counter()
        for conversation, turns in conversations.items():
            for session in sessions(turns):
                call = time.perf_counter()
                memory.add([{"role": "user", "content": t.said} for t in session], user_id=conversation,
                           timestamp=parse_locomo_datetime(session[0].when), infer=infer)
                calls.append(time.perf_counter() - call)
                added += len(session)
        if not memory.wait_for_extraction():
            raise LocalmemError("background extraction failed (see the localmem log)")
        seconds = time.perf_counter() - started
    finally:
        memory.close()
    return {"turns": added, "seconds": round(seconds, 2), "s_per_turn": round(seconds / max(added, 1), 4),
            "add_p50_ms": round(1000 * statistics.median(calls), 1) if calls else None}


def measure(conversations: int, turns: int) -> dict[str, Any]:
    loaded, _ = load(turns)
    chosen = dict(itertools.islice(loaded.items(), conversations))
    with tempfile.TemporaryDirectory(prefix="localmem-sessions-") as tmp:
        infer = add_sessions(chosen, True, Path(tmp) / "infer")
        floor = add_sessions(chosen, False, Path(tmp) / "raw")
        background = add_sessions(chosen, True, Path(tmp) / "background", background=True)
    return {"conversations": len(chosen), "sessions": sum(len(sessions(t)) for t in chosen.values()),
            "infer": infer, "infer_false": floor, "background": background,
            "model_s_per_turn": round(infer["s_per_turn"] - floor["s_per_turn"], 4)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m localmem.bench.sessions", description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=2, help="LoCoMo dev conversations (default 2)")
    parser.add_argument("--turns", type=int, default=60, help="first turns of each (default 60)")
    parser.add_argument("--data", type=Path, help="benchmark data folder (default $LOCALMEM_BENCH_DATA)")
    args = parser.parse_args(argv)
    data.use_root(args.data)
    result = measure(args.conversations, args.turns)
    infer, floor, background = result["infer"], result["infer_false"], result["background"]
    print(f"{result['conversations']} conversations, {result['sessions']} sessions, {infer['turns']} turns, "
          "one add() per session")
    print(f"add(infer=True):  {infer['s_per_turn']:.3f} s a turn ({infer['seconds']:.1f} s)")
    print(f"add(infer=False): {floor['s_per_turn']:.3f} s a turn ({floor['seconds']:.1f} s), same run")
    print(f"the model's share: {result['model_s_per_turn']:.3f} s a turn")
    print(f"add(infer=True), background_extraction: {background['s_per_turn']:.3f} s a turn until every fact is "
          f"written ({background['seconds']:.1f} s); add() returned in {background['add_p50_ms']:.0f} ms (p50; "
          f"inline {infer['add_p50_ms']:.0f} ms)")


if __name__ == "__main__":
    main()
