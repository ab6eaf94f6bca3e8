"""Scenario suite (issue #33): is what comes back current, and the user's own?

``python -m localmem.bench.scenarios [--no-infer | --infer] [--limit-chats N] [--out DIR] [--name NAME]``
``python -m localmem.bench.scenarios --compare BEFORE.json AFTER.json``

Scripted chats (``scenarios.json`` beside this module): one user each (``user_id`` = a first name in
lower case), one ``add()`` per turn with the user's message and the assistant's reply together, the
way chat apps add them, each dated (``timestamp=``) over weeks of 2026. Early statements, small talk
("thanks!", "Noted!"), the assistant's suggestions, then a correction weeks later: moved, changed
job, a new partner, a new price, an appointment moved, gave up X for Y, a pet died and another came;
the ``control`` chats (and the control questions of the others) state a thing once. Every chat goes
into one fresh Milvus Lite store per mode, through the public API only, with the default config.

Each question is searched (``limit=5``) in its user's scope. A result's text is its ``memory`` and,
for a fact, its ``sources``' ``memory``: what a chatbot shown the result would read. A value matches
case-insensitively, at word edges ("14th" is not found in "(14 March 2026)", "40" not in "140"), any
of a list. The measures:

- current-first: present-tense questions whose first result holds the current value;
- stale-only: present-tense questions with a superseded value whose top 5 hold it but not the current;
- past-found: past-tense questions ("where did she live before Porto?") whose top 5 hold the old value;
- assistant-found: questions about the assistant's own words whose top 5 hold the expected reply;
- assistant share: of all top-5 results of the questions about the user (present and past), the
  share that are the assistant's: ``role`` "assistant" where a result has a ``role``, else
  ``speaker`` "assistant" (a fact by its ``speaker``).

Figures come per mode and per correction kind; every question's top 5 is kept in the JSON so two
runs can be compared question by question (``--compare``). No quality level is asserted here.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from localmem import Memory, MemoryConfig
from localmem.bench import metrics
from localmem.bench.env import describe
from localmem.bench.publish import folder, publish
from localmem.config import VectorStoreConfig
from localmem.protocols import Embedder

DATA = Path(__file__).with_name("scenarios.json")
KINDS = ("moved", "job", "partner", "price", "appointment", "gave_up", "pet", "control")
QuestionType = Literal["present", "past", "assistant"]
TOP = 5


@dataclass(frozen=True)
class Turn:
    """One add(): what the user said and what the assistant replied, on ``date`` (ISO, a day)."""

    date: str
    user: str
    assistant: str

    @property
    def timestamp(self) -> str:
        return f"{self.date}T12:00:00Z"

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.user}, {"role": "assistant", "content": self.assistant}]


@dataclass(frozen=True)
class Question:
    """``current``/``stale`` for a present-tense question (``stale`` empty on a control question);
    ``expect`` for a past-tense one (the old value) or one about the assistant's words."""

    ask: str
    type: QuestionType
    kind: str | None = None
    current: tuple[str, ...] = ()
    stale: tuple[str, ...] = ()
    expect: tuple[str, ...] = ()


@dataclass(frozen=True)
class Chat:
    user: str
    kind: str
    turns: tuple[Turn, ...]
    questions: tuple[Question, ...]


def load(path: Path = DATA) -> list[Chat]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return [Chat(user=c["user"], kind=c["kind"], turns=tuple(Turn(**t) for t in c["turns"]),
                 questions=tuple(_question(q) for q in c["questions"])) for c in raw["chats"]]


def _question(raw: dict[str, Any]) -> Question:
    return Question(ask=raw["ask"], type=raw["type"], kind=raw.get("kind"), current=tuple(raw.get("current", ())),
                    stale=tuple(raw.get("stale", ())), expect=tuple(raw.get("expect", ())))


def matches(text: str, values: Iterable[str]) -> bool:
    """Whether ``text`` holds any of ``values``, case-insensitively, not inside a longer word or number."""
    return any(re.search(rf"(?<![a-z0-9]){re.escape(v.lower())}(?![a-z0-9])", text.lower()) for v in values)


def texts_of(result: dict[str, Any]) -> list[str]:
    """What a reader of the result sees: its text, and for a fact the messages it was drawn from."""
    return [str(result.get("memory", "")), *(str(s.get("memory", "")) for s in result.get("sources") or ())]


def holds(result: dict[str, Any], values: Iterable[str]) -> bool:
    values = tuple(values)
    return any(matches(t, values) for t in texts_of(result))


def is_assistant(result: dict[str, Any]) -> bool:
    # ``role`` where the library reports one (it may come with #33); ``speaker`` is what main has.
    if "role" in result:
        return bool(result["role"] == "assistant")
    return result.get("speaker") == "assistant"


# -- running ------------------------------------------------------------------------------
def add_chats(memory: Memory, chats: Sequence[Chat], infer: bool) -> dict[str, Any]:
    calls: list[float] = []
    for chat in chats:
        for turn in chat.turns:
            started = time.perf_counter()
            memory.add(turn.messages(), user_id=chat.user, timestamp=turn.timestamp, infer=infer)
            calls.append(time.perf_counter() - started)
    memory.wait_for_extraction()
    return {"adds": len(calls), "seconds": round(sum(calls), 2), "s_per_add": round(sum(calls) / max(len(calls), 1), 3)}


def ask(memory: Memory, chat: Chat, question: Question) -> dict[str, Any]:
    """One question's outcome and its top results, compact enough to diff two runs."""
    top = memory.search(question.ask, user_id=chat.user, limit=TOP)["results"][:TOP]
    out: dict[str, Any] = {"user": chat.user, "chat_kind": chat.kind, "ask": question.ask, "type": question.type,
                           "kind": question.kind or chat.kind}
    if question.type == "present":
        out |= {"current": list(question.current), "stale": list(question.stale),
                "current_first": bool(top) and holds(top[0], question.current),
                # Not credited by the assistant echoing it ("Porto is lovely! Updated."): the user's own.
                "current_first_own": bool(top) and holds(top[0], question.current) and not is_assistant(top[0]),
                "current_in_top": any(holds(r, question.current) for r in top)}
        if question.stale:
            out["stale_in_top"] = any(holds(r, question.stale) for r in top)
            out["stale_only"] = out["stale_in_top"] and not out["current_in_top"]
            out["stale_first"] = bool(top) and holds(top[0], question.stale) and not out["current_first"]
    else:
        out |= {"expect": list(question.expect), "found": any(holds(r, question.expect) for r in top),
                "first": bool(top) and holds(top[0], question.expect)}
    out["assistant_results"] = sum(is_assistant(r) for r in top)
    out["results"] = [_brief(r) for r in top]
    return out


def _brief(result: dict[str, Any]) -> dict[str, Any]:
    brief: dict[str, Any] = {k: result.get(k) for k in ("memory", "kind", "speaker", "score") if k in result}
    for key in ("role", "valid_until", "superseded_by"):  # fields #33 may add; kept when present
        if key in result:
            brief[key] = result[key]
    if result.get("sources"):
        brief["sources"] = [s.get("memory") for s in result["sources"]]
        brief["source_speakers"] = [s.get("role", s.get("speaker")) for s in result["sources"]]
    return brief


def run_mode(chats: Sequence[Chat], infer: bool, folder: Path, embedder: Embedder | None = None) -> dict[str, Any]:
    """Every chat into one fresh store with the default config (``embedder``: one already loaded, for tests)."""
    config = MemoryConfig(vector_store=VectorStoreConfig(uri=str(folder / "scenarios.db")))
    with Memory(config, embedder=embedder) as memory:
        adding = add_chats(memory, chats, infer)
        started = time.perf_counter()
        questions = [ask(memory, chat, q) for chat in chats for q in chat.questions]
        search_s = time.perf_counter() - started
        listed = [memory.get_all(user_id=chat.user, limit=500)["results"] for chat in chats]
    items = [item for one in listed for item in one]
    by_user = {chat.user: [_brief(i) for i in one] for chat, one in zip(chats, listed, strict=True)}
    return {"add": adding, "search_ms_mean": round(1000 * search_s / max(len(questions), 1), 1),
            "summary": summarise(questions), "by_kind": {k: summarise([q for q in questions if q["kind"] == k])
                                                         for k in KINDS if any(q["kind"] == k for q in questions)},
            "get_all": {"items": len(items), "assistant_items": sum(is_assistant(i) for i in items),
                        "facts": sum(i.get("kind") == "fact" for i in items),
                        "facts_from_assistant_words": sum(_from_assistant(i) for i in items),
                        # What each user's get_all lists, to check facts by hand (owner, dates, fragments).
                        "listed": by_user},
            "questions": questions}


def _from_assistant(item: dict[str, Any]) -> bool:
    """A fact the model drew (also) from an assistant's reply: one of its sources is the assistant's."""
    return item.get("kind") == "fact" and any(is_assistant(s) for s in item.get("sources") or ())


def summarise(questions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    present = [q for q in questions if q["type"] == "present"]
    corrected = [q for q in present if q.get("stale")]
    past = [q for q in questions if q["type"] == "past"]
    about_user = present + past
    helper = [q for q in questions if q["type"] == "assistant"]
    shown = sum(len(q["results"]) for q in about_user)
    firsts = [q["results"][0] for q in about_user if q["results"]]
    return {
        "present": len(present), "current_first": _rate(present, "current_first"),
        "current_first_own": _rate(present, "current_first_own"),
        "corrected": len(corrected), "current_first_corrected": _rate(corrected, "current_first"),
        "stale_first": _rate(corrected, "stale_first"), "stale_only": _rate(corrected, "stale_only"),
        "past": len(past), "past_found": _rate(past, "found"), "past_first": _rate(past, "first"),
        "assistant_questions": len(helper), "assistant_found": _rate(helper, "found"),
        "assistant_share": round(sum(q["assistant_results"] for q in about_user) / shown, 3) if shown else None,
        # Where the first result of a question about the user comes from: what a chatbot reads first.
        "first_result": {"fact": sum(r.get("kind") == "fact" for r in firsts),
                         "user_episode": sum(r.get("kind") != "fact" and not is_assistant(r) for r in firsts),
                         "assistant_episode": sum(r.get("kind") != "fact" and is_assistant(r) for r in firsts)},
    }


def _rate(questions: Sequence[dict[str, Any]], key: str) -> float | None:
    return round(sum(bool(q[key]) for q in questions) / len(questions), 3) if questions else None


# -- reporting -----------------------------------------------------------------------------
COLUMNS = (("current_first", "current first"), ("current_first_own", "current first, user's own"),
           ("current_first_corrected", "current first (corrected)"), ("stale_only", "stale only"),
           ("stale_first", "stale first"), ("past_found", "past found"), ("past_first", "past first"),
           ("assistant_found", "assistant found"), ("assistant_share", "assistant share of top 5"))


def render(results: dict[str, Any]) -> str:
    lines = ["# Scenario suite (issue #33)", "", f"`{results['command']}`", "",
             f"{results['chats']} chats, {results['questions']} questions; git {results['git'].get('commit')}"
             f"{' (dirty)' if results['git'].get('dirty') else ''}.", "",
             "Rates are shares of questions; stale only / stale first are over present-tense questions "
             "whose value was corrected. Counts in brackets.", "",
             "| mode | " + " | ".join(name for _, name in COLUMNS) + " | add s | search ms |",
             "|---" * (len(COLUMNS) + 3) + "|"]
    for mode, body in results["modes"].items():
        lines.append(f"| {mode} | {cells(body['summary'])} | {body['add']['s_per_add']} | {body['search_ms_mean']} |")
    for mode, body in results["modes"].items():
        lines += ["", f"## {mode}: by correction kind", "",
                  "| kind | " + " | ".join(name for _, name in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
        lines += [f"| {kind} | {cells(row)} |" for kind, row in body["by_kind"].items()]
        listed, first = body["get_all"], body["summary"]["first_result"]
        lines += ["", f"First result of the {sum(first.values())} questions about the user: {first['fact']} facts, "
                  f"{first['user_episode']} user messages, {first['assistant_episode']} assistant replies.", "",
                  f"get_all over the {results['chats']} users: {listed['items']} items, {listed['facts']} facts "
                  f"({listed.get('facts_from_assistant_words', 0)} drawn from an assistant reply), "
                  f"{listed['assistant_items']} items the assistant's.", "",
                  "Present-tense questions whose first result lacks the current value:", ""]
        for q in body["questions"]:
            if q["type"] == "present" and not q["current_first"]:
                first = q["results"][0]["memory"] if q["results"] else "(nothing)"
                lines.append(f"- {q['ask']} (want {q['current'][0]}): {first}")
    return "\n".join(lines) + "\n"


def cells(row: dict[str, Any]) -> str:
    counts = {"current_first": "present", "current_first_own": "present", "current_first_corrected": "corrected",
              "stale_only": "corrected", "stale_first": "corrected", "past_found": "past", "past_first": "past",
              "assistant_found": "assistant_questions"}
    cells = []
    for key, _ in COLUMNS:
        value = row.get(key)
        cells.append("-" if value is None else f"{value:.3f}" + (f" ({row[counts[key]]})" if key in counts else ""))
    return " | ".join(cells)


# (measure, question type, per-question field, whether True is the good outcome)
_PAIRED = (("current_first", "present", "current_first", True), ("stale_only", "present", "stale_only", False),
           ("past_found", "past", "found", True), ("past_first", "past", "first", True),
           ("assistant_found", "assistant", "found", True))


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Per mode in both files: each measure before/after, the questions that flipped each way, and a
    two-sided sign test on the flips."""
    lines = ["| mode | measure | before | after | better after | worse after | sign test p |",
             "|---|---|---|---|---|---|---|"]
    flips: list[str] = []
    for mode, old in before["modes"].items():
        new = after["modes"].get(mode)
        if new is None:
            continue
        paired = {(q["user"], q["ask"]): q for q in new["questions"]}
        for key, kind, field, good in _PAIRED:
            pairs = [(q, paired[(q["user"], q["ask"])]) for q in old["questions"] if q["type"] == kind
                     and field in q and field in paired.get((q["user"], q["ask"]), {})]
            better = [b for a, b in pairs if bool(a[field]) != bool(b[field]) and bool(b[field]) == good]
            worse = [b for a, b in pairs if bool(a[field]) != bool(b[field]) and bool(b[field]) != good]
            lines.append(f"| {mode} | {key} | {old['summary'].get(key)} | {new['summary'].get(key)} | {len(better)} | "
                         f"{len(worse)} | {metrics.sign_test(len(better), len(worse)):.2f} |")
            flips += [f"- {mode} {key} worse: {q['ask']}" for q in worse]
        lines.append(f"| {mode} | assistant_share | {old['summary'].get('assistant_share')} | "
                     f"{new['summary'].get('assistant_share')} | | | |")
    return lines + (["", *flips] if flips else [])


def run(chats: Sequence[Chat], modes: Sequence[bool], workdir: Path) -> dict[str, dict[str, Any]]:
    return {("infer=True" if infer else "infer=False"): run_mode(chats, infer, workdir / str(infer)) for infer in modes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localmem.bench.scenarios", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--infer", action="store_true", help="only add(infer=True) (default: both modes)")
    mode.add_argument("--no-infer", action="store_true", help="only add(infer=False)")
    parser.add_argument("--limit-chats", type=int, help="the first N chats only")
    parser.add_argument("--out", type=Path, help="results folder (default benchmarks/results/scenarios)")
    parser.add_argument("--name", default="latest", help="file stem of the results (default latest)")
    parser.add_argument("--data", type=Path, default=DATA, help="chats file (default the bundled scenarios.json)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
                        help="compare two result JSON files question by question, and exit")
    args = parser.parse_args(argv)
    if args.compare:
        print("\n".join(compare(*(json.loads(path.read_text()) for path in args.compare))))
        return 0
    chats = load(args.data)[: args.limit_chats]
    modes = [True] if args.infer else [False] if args.no_infer else [False, True]
    command = " ".join(["python -m localmem.bench.scenarios", *(argv if argv is not None else sys.argv[1:])])
    with tempfile.TemporaryDirectory(prefix="localmem-scenarios-", ignore_cleanup_errors=True) as tmp:
        by_mode = run(chats, modes, Path(tmp))
    environment = describe("cpu")
    results = {"command": command, "chats": len(chats), "questions": sum(len(c.questions) for c in chats),
               "git": environment.pop("git"), "environment": environment, "modes": by_mode}
    publish(folder("scenarios", args.out), args.name, results, render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
