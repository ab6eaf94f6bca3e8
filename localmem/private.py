"""Files and folders that hold memories, created readable by their owner only.

Memories are personal data, and a machine may have other accounts: a store folder is made
0700 and a file (the history database, an export) 0600 when localmem creates it. A folder
that already exists keeps its mode (its owner may share it on purpose); what Milvus Lite's
engine writes inside a 0700 folder cannot be reached by others, whatever its own mode.
SQLite creates its -wal and -shm files with the mode of the database file.

The process umask is left alone: it belongs to the application.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TextIO

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(path: Path) -> None:
    """Create ``path`` (and missing parents, as usual) with the leaf only for its owner; an existing one is kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=FOLDER_MODE)
        _chmod(path, FOLDER_MODE)  # mkdir's mode is filtered by the umask; chmod is not


def private_file(path: Path) -> None:
    """Create ``path`` empty for its owner only, unless it exists (then it is left as it is)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)
    _chmod(path, FILE_MODE)


def open_private(path: Path) -> TextIO:
    """``path`` opened for writing text (truncated), readable by its owner only, even if it existed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        if sys.platform != "win32":
            os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, "w", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


def _chmod(path: Path, mode: int) -> None:
    if sys.platform != "win32":  # Windows has no mode bits; its ACLs follow the user's profile folder
        os.chmod(path, mode)
