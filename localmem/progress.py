"""Progress bars for long work: a tqdm bar on stderr when a person watches it, nothing otherwise.

"Watches" means stderr is a terminal: a script, a pipe, a log file or a server's log get no bar
(and no carriage returns). Short work gets none either (``at_least``), so everyday calls stay
silent. ``TQDM_DISABLE=1`` turns every bar off (tqdm reads it).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

Step = Callable[[int], object]

# Below this many items a bar would flash and vanish: not worth a line on the terminal.
AT_LEAST = 32


@contextlib.contextmanager
def bar(total: int, what: str, *, unit: str = "it", at_least: int = AT_LEAST,
        quiet: bool = False) -> Iterator[Step]:
    """Yield ``step(n)``: n more items done. A no-op unless stderr is a terminal and ``total >= at_least``."""
    if quiet or total < at_least or not _watched():
        yield _nothing
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=what, unit=unit, file=sys.stderr, leave=False) as shown:
        yield shown.update


def _watched() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except ValueError:  # a closed stream
        return False


def _nothing(n: int) -> None:
    return None
