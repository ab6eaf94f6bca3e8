"""The public data sets the benchmarks use: where they come from, their licence, where they live.

Each data set is a list of remote files (official URL, pinned sha256, what the upstream itself
publishes as a checksum) plus how a fetched file becomes the on-disk layout the loaders read:

    <data root>/locomo/locomo10.json                      (or locomo_dev.json: the 6-conversation dev copy)
    <data root>/scifact/corpus.jsonl, queries.jsonl, qrels/test.tsv, qrels/train.tsv
    <data root>/memorybank/memorybank_memory_bank_en.json, memorybank_probing_questions_en.jsonl

The data root is ``--data DIR``, else ``$LOCALMEM_BENCH_DATA``, else the cache folder
``$XDG_CACHE_HOME/localmem/bench-data`` (``~/.cache/...``). Nothing here downloads:
``localmem bench data fetch`` (fetch.py) is the one explicit way in, and a benchmark run only
reads what is already on disk.

**Pins.** Every URL names a fixed commit (or, for BEIR, a file the publisher does not change) and
carries the sha256 of that file, checked by hand against the official repository; ``fetch`` refuses
any other bytes. Where the upstream publishes its own checksum (BEIR's md5 for its zips) fetch checks
it as well. A hash is only ever filled in from a file checked by hand, never copied from a mirror.
``--trust-unpinned`` remains for a manifest entry added without a hash (none today).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_ENV = "LOCALMEM_BENCH_DATA"
FETCH_HINT = "localmem bench data fetch"


@dataclass(frozen=True)
class Remote:
    url: str
    target: str  # path under the data root (a file), or a folder for a zip's members
    sha256: str | None  # None: not verified, refused unless --trust-unpinned (see the module docstring)
    upstream_md5: str | None = None  # a checksum the upstream itself publishes, if any
    members: tuple[tuple[str, str], ...] = ()  # zip only: (member in the archive, path under the data root)


@dataclass(frozen=True)
class DataSet:
    name: str
    title: str
    licence: str
    licence_url: str
    remotes: tuple[Remote, ...]
    required: tuple[tuple[str, ...], ...]  # alternatives: the set is present when every path of one exists
    note: str = ""


# LoCoMo's data/locomo10.json is unchanged since this commit (2024-08-09); the branch URL would move.
_LOCOMO_COMMIT = "cbfbc1dba6bc53d00625212a0f22d55ffee7c1fc"
_MB_COMMIT = "ddd1b449926da32759d4f1ff86e69842c403be31"  # the commit that added eval_data/en (same bytes at head)
_MB = f"https://raw.githubusercontent.com/zhongwanjun/MemoryBank-SiliconFriend/{_MB_COMMIT}/eval_data/en"
_SCIFACT_FILES = ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv", "qrels/train.tsv")

MANIFEST: tuple[DataSet, ...] = (
    DataSet(
        name="locomo", title="LoCoMo (Maharana et al., ACL 2024), 10 long conversations with QA",
        licence="CC BY-NC 4.0 (non-commercial use only)",
        licence_url="https://github.com/snap-research/locomo (README, licence section)",
        remotes=(Remote(f"https://raw.githubusercontent.com/snap-research/locomo/{_LOCOMO_COMMIT}/data/locomo10.json",
                        "locomo/locomo10.json",
                        sha256="79fa87e90f04081343b8c8debecb80a9a6842b76a7aa537dc9fdf651ea698ff4"),),
        required=(("locomo/locomo10.json",), ("locomo/locomo_dev.json",)),
        note="2,805,274 bytes at the pinned commit"),
    DataSet(
        name="scifact", title="BEIR SciFact (Wadden et al., 2020), 5,183 abstracts, 300 test claims",
        licence="CC BY-NC 2.0 (non-commercial use only)",
        licence_url="https://github.com/beir-cellar/beir#beers-available-datasets",
        remotes=(Remote("https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/scifact.zip",
                        "scifact", sha256="536e14446a0ba56ed1398ab1055f39fe852686ecad24a6306c80c490fa8e0165",
                        upstream_md5="5f7d1de60b170fc8027bb7898e2efca1",
                        members=tuple((f"scifact/{f}", f"scifact/{f}") for f in _SCIFACT_FILES)),),
        required=(tuple(f"scifact/{f}" for f in _SCIFACT_FILES[:3]),),
        note="md5 as published in the BEIR README's data set table"),
    DataSet(
        name="memorybank", title="MemoryBank / SiliconFriend (Zhong et al., AAAI 2024), English eval data",
        licence="MIT", licence_url="https://github.com/zhongwanjun/MemoryBank-SiliconFriend/blob/main/LICENSE",
        remotes=(Remote(f"{_MB}/memory_bank_en.json", "memorybank/memorybank_memory_bank_en.json",
                        sha256="27c302202f9675d87dcaa73e3a42dc0fca8999dcff3c6e7882a787c8a08d9bc7"),
                 Remote(f"{_MB}/probing_questions_en.jsonl", "memorybank/memorybank_probing_questions_en.jsonl",
                        sha256="84538a41e5a9c8000850c19008a85445b01bf52c9960c9d735d21a4b73e5c648")),
        required=(("memorybank/memorybank_memory_bank_en.json", "memorybank/memorybank_probing_questions_en.jsonl"),)),
)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "localmem" / "bench-data"


def data_root(override: Path | None = None) -> Path:
    """Where the data sets are read from (and fetched to): the flag, the variable, the cache folder."""
    if override is not None:
        return override.expanduser()
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else cache_root()


def present(entry: DataSet, root: Path) -> bool:
    return any(all((root / path).is_file() for path in option) for option in entry.required)


def missing(names: tuple[str, ...], root: Path) -> list[str]:
    entries = {d.name: d for d in MANIFEST}
    return [name for name in names if not present(entries[name], root)]
