"""Printing for people (aligned tables) and for scripts (``--json``)."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from typing import Any, TextIO


def emit_json(value: Any, out: TextIO | None = None) -> None:
    # sys.stdout is looked up per call, not bound at import: it may have been replaced since.
    (out or sys.stdout).write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], out: TextIO | None = None,
          wide: str | None = None) -> None:
    """Print rows as an aligned table; ``wide`` names the column cut to fit the terminal."""
    out = out or sys.stdout
    if not rows:
        out.write("(none)\n")
        return
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    if wide in columns:
        i = columns.index(wide)
        room = shutil.get_terminal_size((120, 24)).columns - (sum(widths) - widths[i]) - 2 * (len(columns) - 1)
        widths[i] = max(20, min(widths[i], room))
        for r in cells:
            if len(r[i]) > widths[i]:
                r[i] = r[i][: widths[i] - 1] + "…"
    out.write("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    for r in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False) if value else "-"
    return str(value).replace("\n", " ")
