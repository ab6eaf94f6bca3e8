"""``localmem bench data fetch|list``: the one explicit way benchmark data reach a machine.

fetch downloads each file of the named data sets (datasets.MANIFEST) from its official URL, or
from ``--mirror URL`` (same file names, same hashes: a mirror cannot change what is accepted),
checks it against the pinned sha256 (and the upstream's own checksum where it publishes one),
prints the licence, then moves it into the data root. A file is written to its final place only
after it passed, so a failed or interrupted fetch leaves nothing half-checked behind. A file
without a pinned sha256 is refused before anything is downloaded, unless ``--trust-unpinned``
is given: then the sha256 seen is printed so it can be checked and pinned. ``SOURCES.json`` in
the data root records what was fetched, from where, with which hash, and whether it was pinned.
The benchmark run itself never calls this module.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from localmem.bench import datasets
from localmem.bench.datasets import FETCH_HINT, DataSet, Remote, data_root, present
from localmem.errors import BenchDataError

SOURCES = "SOURCES.json"
TIMEOUT_S = 60
_CHUNK = 1 << 20

Print = Callable[[str], None]


def fetch(names: Sequence[str], root: Path, *, mirror: str | None = None, trust_unpinned: bool = False,
          manifest: Sequence[DataSet] | None = None, say: Print = print) -> list[dict[str, Any]]:
    """Fetch, verify and unpack the named data sets (default: all) into ``root``; returns what SOURCES.json got."""
    known = datasets.MANIFEST if manifest is None else tuple(manifest)
    sets = [_known(name, known) for name in names] or list(known)
    unpinned = [r.url for d in sets for r in d.remotes if r.sha256 is None]
    if unpinned and not trust_unpinned:
        raise BenchDataError(
            f"no pinned sha256 for {', '.join(unpinned)} (the manifest in localmem/bench/datasets.py could not "
            "verify it); rerun with --trust-unpinned to accept the file as served and print its sha256, or put "
            "a copy you trust in a folder and pass --data DIR")
    root.mkdir(parents=True, exist_ok=True)
    records = []
    for entry in sets:
        say(f"{entry.name}: {entry.title}")
        say(f"  licence: {entry.licence} — {entry.licence_url}")
        for remote in entry.remotes:
            records.append(_one(entry, remote, root, mirror=mirror, say=say))
    _record(root, records)
    say(f"data ready in {root} ({', '.join(d.name for d in sets)}); every benchmark run reads it from there")
    return records


def _known(name: str, manifest: Sequence[DataSet]) -> DataSet:
    for entry in manifest:
        if entry.name == name:
            return entry
    raise BenchDataError(f"no benchmark data set named {name!r}; known: {', '.join(d.name for d in manifest)}")


def _one(entry: DataSet, remote: Remote, root: Path, *, mirror: str | None, say: Print) -> dict[str, Any]:
    url = source_url(remote, mirror)
    say(f"  fetching {url}")
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=root) as tmp:
        download = Path(tmp) / "download"
        sha256, md5 = _download(url, download)
        if remote.sha256 is not None and sha256 != remote.sha256:
            raise BenchDataError(f"{url}: sha256 {sha256} does not match the pinned {remote.sha256}; nothing was "
                                 "written (a changed upstream file or a bad mirror)")
        if remote.upstream_md5 is not None and md5 != remote.upstream_md5:
            raise BenchDataError(f"{url}: md5 {md5} does not match the upstream's published {remote.upstream_md5}; "
                                 "nothing was written")
        if remote.sha256 is None:
            say(f"  UNPINNED, accepted by --trust-unpinned: sha256 {sha256}"
                f"{' (md5 matches the upstream published checksum)' if remote.upstream_md5 else ''}; "
                "check it and pin it in localmem/bench/datasets.py")
        else:
            say(f"  sha256 verified: {sha256}")
        written = _unpack(remote, download, root, Path(tmp))
    return {"dataset": entry.name, "url": url, "official_url": remote.url, "sha256": sha256,
            "pinned": remote.sha256 is not None, "licence": entry.licence, "files": written,
            "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def source_url(remote: Remote, mirror: str | None) -> str:
    if mirror is None:
        return remote.url
    return f"{mirror.rstrip('/')}/{Path(urllib.parse.urlparse(remote.url).path).name}"


def _download(url: str, path: Path) -> tuple[str, str]:
    if urllib.parse.urlparse(url).scheme not in ("http", "https"):
        raise BenchDataError(f"{url}: only http and https URLs are fetched")
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, path.open("wb") as out:
            while chunk := response.read(_CHUNK):
                sha256.update(chunk)
                md5.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BenchDataError(f"could not download {url}: {reason}; check the network or use --mirror URL") from None
    return sha256.hexdigest(), md5.hexdigest()


def _unpack(remote: Remote, download: Path, root: Path, tmp: Path) -> list[str]:
    """Move a checked file (or the listed members of a checked zip) to its place under ``root``."""
    if not remote.members:
        _place(download, root / remote.target)
        return [remote.target]
    try:
        with zipfile.ZipFile(download) as archive:
            staged: list[tuple[Path, str]] = []
            for member, target in remote.members:  # only the listed members: no path from the archive is trusted
                part = tmp / f"member-{len(staged)}"
                with archive.open(member) as src, part.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                staged.append((part, target))
    except (zipfile.BadZipFile, KeyError) as exc:
        raise BenchDataError(f"{remote.url}: not the expected archive ({exc}); nothing was written") from None
    for part, target in staged:
        _place(part, root / target)
    return [target for _, target in staged]


def _place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)


def _record(root: Path, records: list[dict[str, Any]]) -> None:
    path = root / SOURCES
    known = json.loads(path.read_text()) if path.is_file() else []
    fresh = {r["official_url"] for r in records}
    path.write_text(json.dumps([r for r in known if r.get("official_url") not in fresh] + records, indent=2) + "\n")


def rows(root: Path) -> list[dict[str, Any]]:
    return [{"name": d.name, "present": present(d, root), "pinned": all(r.sha256 for r in d.remotes),
             "licence": d.licence, "source": " ".join(r.url for r in d.remotes)} for d in datasets.MANIFEST]


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="localmem bench data", description="Benchmark data sets: list or fetch "
                                     f"them (nothing is ever downloaded by a benchmark run; '{FETCH_HINT}' is the "
                                     "only way in).")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="data sets, whether present, pinned, their licence and source")
    listing.add_argument("--data", type=Path, help="data folder (default $LOCALMEM_BENCH_DATA, else the cache)")
    get = actions.add_parser("fetch", help="download, verify (sha256) and unpack data sets into the data folder")
    get.add_argument("names", nargs="*", help=f"default: all ({', '.join(d.name for d in datasets.MANIFEST)})")
    get.add_argument("--data", type=Path, help="data folder (default $LOCALMEM_BENCH_DATA, else the cache)")
    get.add_argument("--mirror", help="fetch each file by name from this base URL instead of the official one")
    get.add_argument("--trust-unpinned", action="store_true",
                     help="accept a file that has no pinned sha256 yet, and print the sha256 seen")
    args = parser.parse_args(list(argv))
    root = data_root(args.data)
    if args.action == "list":
        print(f"data folder: {root}")
        for row in rows(root):
            print(f"{row['name']:<11} present={'yes' if row['present'] else 'no ':<3} "
                  f"pinned={'yes' if row['pinned'] else 'no':<3} {row['licence']}\n            {row['source']}")
        return 0
    fetch(args.names, root, mirror=args.mirror, trust_unpinned=args.trust_unpinned)
    return 0
