"""Every code block of README.md and docs/*.md runs as written.

- ``python`` blocks run in order, one namespace per page, in a temp folder, on the real models
  (offline: conftest forces Hugging Face's offline mode, and nothing here reaches a network).
- ``bash`` blocks run in order with bash, in the same temp folder, against a temp store: the
  ``localmem`` on this interpreter's PATH, no ``LOCALMEM_DB``/``LOCALMEM_SERVER``/... from the
  environment. Only ``localmem`` commands that stay in that folder, ``printf``/``echo`` and
  variable assignments may appear in such a block: anything else (installs, servers, the
  benchmarks) needs a visible ``<!-- not run: reason -->`` comment on the line above the block.
- ``json`` blocks are parsed.

Pages that are symlinks into the rest of the repository (the changelog, the benchmarks'
methodology) quote commands rather than give instructions, and are not run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if not p.is_symlink())]

FENCE = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(\S.*?)\s*-->$")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# Commands a test cannot run as written: they serve until stopped, take minutes, download, build
# wheels or write into the shared models folder.
UNSAFE_COMMANDS = ("serve", "mcp", "bench", "bundle", "models prepare", "models register")
SAFE_PROGRAMS = ("localmem", "printf", "echo")
# The environment that would point the CLI at another store or server.
STORE_VARIABLES = ("LOCALMEM_DB", "LOCALMEM_URI", "LOCALMEM_TOKEN", "LOCALMEM_SERVER", "LOCALMEM_API_KEY")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    not_run: str | None  # the reason given, when marked

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        above = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        marker = NOT_RUN.match(above)
        found.append(Block(page, line, match.group(1).lower(), match.group(2), marker.group(1) if marker else None))
    return found


def commands(code: str) -> list[str]:
    """The command lines of a shell block: comments and blank lines dropped, continuations joined."""
    joined = re.sub(r"\\\n", " ", code)
    lines = []
    for raw in joined.splitlines():
        words = shlex.split(raw, comments=True)
        if words:
            lines.append(raw.strip())
    return lines


def unsafe_reason(line: str) -> str | None:
    """Why a shell line cannot run in a test as written, or None."""
    words = shlex.split(line, comments=True)
    if ASSIGNMENT.match(words[0]):
        return None
    if words[0] not in SAFE_PROGRAMS:
        return f"{words[0]!r} is not a localmem command"
    if words[0] == "localmem":
        rest = " ".join(words[1:])
        for command in UNSAFE_COMMANDS:
            if rest == command or rest.startswith(command + " "):
                return f"'localmem {command}' cannot run in a test"
    return None


ALL_BLOCKS = [block for page in PAGES for block in blocks(page)]


def test_every_page_has_blocks_and_every_mark_gives_a_reason() -> None:
    assert len(PAGES) > 5 and ALL_BLOCKS
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        # A mark is a line of its own (a page may quote one in its text).
        for marker in re.finditer(r"^<!--\s*not run\b.*?-->", text, re.MULTILINE | re.DOTALL):
            assert NOT_RUN.match(marker.group(0)), (f"{page.name}: write '<!-- not run: reason -->', "
                                                    f"got {marker.group(0)!r}")
            after = text[marker.end():].lstrip(" \t")
            assert after.startswith("\n```"), f"{page.name}: a 'not run' mark must be on the line above a code block"


def test_unmarked_shell_blocks_hold_only_commands_a_test_can_run() -> None:
    for block in ALL_BLOCKS:
        if block.lang not in {"bash", "sh", "shell", "console"} or block.not_run:
            continue
        assert block.lang == "bash", f"{block.where}: shell blocks are ```bash"
        for line in commands(block.code):
            reason = unsafe_reason(line)
            assert reason is None, (f"{block.where}: {reason} ({line!r}); make the block runnable or mark it "
                                    "'<!-- not run: reason -->' on the line above")


def test_readme_links_resolve() -> None:
    # The README is not part of the site (mkdocs checks the pages' own links): check its links here.
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target):
            continue
        path = target.split("#", 1)[0]
        assert (ROOT / path).exists(), f"README.md links to {target}, which is not in the repository"


def _collect_memories(namespace: dict[str, Any], opened: list[Any]) -> None:
    from localmem import Memory

    for value in namespace.values():
        if isinstance(value, Memory) and all(value is not seen for seen in opened):
            opened.append(value)


def _run_python(block: Block, namespace: dict[str, Any], opened: list[Any]) -> None:
    code = compile(block.code, block.where, "exec")
    try:
        exec(code, namespace)
    finally:
        _collect_memories(namespace, opened)


def _shell_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in STORE_VARIABLES}
    # The localmem and python of this interpreter, whatever the caller's PATH says.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["HF_HUB_OFFLINE"] = env["TRANSFORMERS_OFFLINE"] = "1"
    return env


def _run_bash(block: Block, folder: Path) -> None:
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block.code], cwd=folder, env=_shell_environment(),
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, (f"{block.where} exited {done.returncode}\n--- stdout\n{done.stdout[-4000:]}"
                                  f"\n--- stderr\n{done.stderr[-4000:]}")


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_code_blocks_run_as_written(page: Path, tmp_path: Path) -> None:
    # conftest's autouse fixture has made tmp_path the working directory.
    assert Path.cwd() == tmp_path
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    opened: list[Any] = []
    ran = 0
    try:
        for block in blocks(page):
            if block.not_run:
                continue
            if block.lang == "python":
                _run_python(block, namespace, opened)
            elif block.lang == "bash":
                _run_bash(block, tmp_path)
            elif block.lang == "json":
                json.loads(block.code)
            else:
                continue
            ran += 1
    finally:
        for memory in opened:
            memory.close()
    if not ran:
        pytest.skip(f"{page.name} has no code block to run")
