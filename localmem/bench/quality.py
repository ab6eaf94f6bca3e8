"""The memory-quality section of ``localmem bench``: is what was said found again?

A suite is a named measure with the data sets it needs, a function that runs it and one that
writes its part of report.md; the section runs each suite whose data is present and names the
rest as skipped. The LoCoMo suite (memory_quality.py: evidence hit@5 and answer recall@5 for
``infer=False`` and the default ``infer=True``) and the scenario suite (scenarios.py: is what comes
back current, and the user's own; its chats ship in the package, so it needs no data) are the two;
another joins by adding its ``Suite`` to ``SUITES``, and run.py, the report and the skip list follow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localmem.bench import data, memory_quality, scenarios


@dataclass(frozen=True)
class Scale:
    """How much of each suite a run measures: a subset in --quick, everything in the full run."""

    quick: bool
    conversations: int | None  # None: all
    turns: int | None  # first turns of each conversation; None: memory_quality's default for the mode
    infer_conversations: int
    infer_turns: int
    scenario_chats: int | None = None  # None: every chat


@dataclass(frozen=True)
class Suite:
    name: str
    title: str
    needs: tuple[str, ...]  # data sets (datasets.MANIFEST names)
    run: Callable[[Scale, Path], dict[str, Any]]
    render: Callable[[dict[str, Any]], list[str]]


def _locomo(scale: Scale, workdir: Path) -> dict[str, Any]:
    return memory_quality.run(quick=scale.quick, conversations=scale.conversations, turns_each=scale.turns,
                              infer_conversations=scale.infer_conversations, infer_turns=scale.infer_turns,
                              workdir=workdir)


def _render_locomo(result: dict[str, Any]) -> list[str]:
    turns = result["turns"]
    lines = [f"{len(turns)} conversation(s) ({', '.join(turns)}), {sum(turns.values())} turns, one add() per "
             f"turn; {result['questions']} category 1-4 questions searched with limit 5 in their conversation. "
             "Cells: evidence hit@5 / answer recall@5 (python -m localmem.bench.memory_quality explains both).", ""]
    if result["rows"]:
        lines += [*memory_quality.table(result["rows"]), ""]
    sub = result.get("infer_subset")
    if sub:
        lines += [f"The default add() (infer=True, the bundled model) against infer=False on the same "
                  f"{sum(sub['turns'].values())} turns ({sub['questions']} questions; a small subset: the model "
                  "costs seconds a turn):", "", *memory_quality.table(sub["rows"]), ""]
        lines += ["| add mode | add p50 ms | add p95 ms |", "|---|---|---|"]
        lines += [f"| {name} | {t['add']['p50_ms']:.0f} | {t['add']['p95_ms']:.0f} |"
                  for name, t in sub["timing"].items()]
        lines.append("")
    return lines


def _scenarios(scale: Scale, workdir: Path) -> dict[str, Any]:
    chats = scenarios.load()
    if scale.scenario_chats is not None:  # spread over the kinds: the file lists each kind's chats together
        chats = chats[::max(1, len(chats) // max(scale.scenario_chats, 1))][:scale.scenario_chats]
    return {"chats": len(chats), "modes": scenarios.run(chats, (False, True), workdir)}


def _render_scenarios(result: dict[str, Any]) -> list[str]:
    lines = [f"{result['chats']} scripted chats (a statement, small talk, a correction weeks later; the user's "
             "message and the assistant's reply per add()); python -m localmem.bench.scenarios explains each "
             "measure. Rates are shares of questions, counts in brackets.", "",
             "| mode | " + " | ".join(name for _, name in scenarios.COLUMNS) + " |",
             "|---" * (len(scenarios.COLUMNS) + 1) + "|"]
    lines += [f"| {mode} | {scenarios.cells(body['summary'])} |" for mode, body in result["modes"].items()]
    return [*lines, ""]


SUITES: tuple[Suite, ...] = (
    Suite("locomo", "LoCoMo: evidence hit@5 / answer recall@5", ("locomo",), _locomo, _render_locomo),
    Suite("scenarios", "Scenarios: what holds now, and whose it is", (), _scenarios, _render_scenarios),
)


def run(scale: Scale, workdir: Path) -> dict[str, Any]:
    """Each suite whose data is present, by name."""
    out: dict[str, Any] = {}
    for suite in SUITES:
        if data.has(*suite.needs):
            folder = workdir / f"quality_{suite.name}"
            folder.mkdir(parents=True, exist_ok=True)
            out[suite.name] = suite.run(scale, folder)
        else:
            print(f"   {suite.name}: skipped, needs {', '.join(suite.needs)}", flush=True)
    return out


def render(results: dict[str, Any]) -> list[str]:
    if not any(suite.name in results for suite in SUITES):
        return []  # every suite skipped: the report's skip list names them
    lines = ["## Memory quality", ""]
    for suite in SUITES:
        if suite.name in results:
            lines += [f"### {suite.title}", "", *suite.render(results[suite.name])]
    return lines
