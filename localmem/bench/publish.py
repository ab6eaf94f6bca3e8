"""Where a benchmark run on its own (``python -m localmem.bench.X``) writes: JSON to compare runs, Markdown to read.

In a checkout the committed reports live in benchmarks/results/<name>/; anywhere else (a wheel) a run
writes to ./localmem-bench-<name>/ rather than into a folder the user never asked for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def folder(name: str, given: Path | None) -> Path:
    """``given``, else benchmarks/results/<name> in a checkout, else ./localmem-bench-<name>."""
    if given is not None:
        return given
    results = Path("benchmarks/results")
    return results / name if results.is_dir() else Path(f"localmem-bench-{name}")


def publish(out: Path, stem: str, results: dict[str, Any], markdown: str) -> None:
    """``stem``.json and ``stem``.md in ``out``; the Markdown is printed too."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown)
    print(markdown)
