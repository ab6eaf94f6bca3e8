"""PNG figures of a run (matplotlib, Agg backend: no display needed). Every title names the device.

Each figure should read without the report: what was measured in the title, both axes labelled
with their unit, linear axes where the values allow. The index sweep and the per-metric score
study stay tables in report.md: a Milvus Lite user never picks an index or a metric.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from localmem.retrieval.current import RECOMMENDED_THRESHOLD


def write_all(results: dict[str, Any], out: Path) -> list[str]:
    device = results["environment"]["embedder_device"]
    written = []
    product = results.get("product")
    panels = []  # (title, scores): the default search's scores, per conversation source
    if product and product["sizes"]:
        written.append(_search_latency(product, device, out / "search_latency.png"))
        largest = product["sizes"][max(product["sizes"], key=int)]
        if largest.get("scores"):
            panels.append((f"generated conversation, {largest['memories']} memories in the scope, "
                           f"{product['questions']} questions", largest["scores"]))
    retrieval = results.get("retrieval", {})
    if retrieval.get("product", {}).get("scores"):
        panels.append((f"LoCoMo, {len(retrieval['conversations'])} conversation(s), {retrieval['questions']} "
                       "questions (relevant: an evidence turn)", retrieval["product"]["scores"]))
    if panels:
        written.append(_search_scores(panels, device, out / "search_scores.png"))
    if "retrieval" in results or "locomo" in results.get("scoring", {}).get("datasets", {}):
        written.append(_recall(results, device, out / "recall_at_k.png"))
    return written


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _search_latency(product: dict[str, Any], device: str, path: Path) -> str:
    sizes = sorted(int(n) for n in product["sizes"])
    fig, ax = plt.subplots(figsize=(8, 5.4))
    for who, label, color in (("search", "Memory.search", "tab:blue"),
                              ("floor", "floor: same query embedding + exact numpy scan", "dimgray")):
        for pct, style in (("p50", "-"), ("p95", "--")):
            ys = [product["sizes"][str(n)][who][f"{pct}_ms"] for n in sizes]
            ax.plot(sizes, ys, style, marker="o" if who == "search" else "s", color=color, label=f"{label}, {pct}")
    ax.set_xlabel("memories stored in the searched scope")
    ax.set_ylabel("time per search call (ms)")
    ax.set_xticks(sizes)
    ax.set_xlim(0, sizes[-1] * 1.05)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    # Below the axes: inside, it hid the p50 lines, which sit close together at the bottom.
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    ax.set_title(f"Memory.search latency vs memories stored\n{product['questions']} generated questions, "
                 f"default settings, limit {product['k']}, one caller; embedder on {device}", fontsize=10)
    return _save(fig, path)


def _search_scores(panels: list[tuple[str, dict[str, Any]]], device: str, path: Path) -> str:
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 4.2 * len(panels)), squeeze=False)
    bins = [-0.2 + i / 40 for i in range(49)]  # a cosine; below -0.2 nothing is ever found
    for ax, (title, scores) in zip(axes[:, 0], panels, strict=True):
        relevant, unrelated = scores["relevant_scores"], scores["unrelated_scores"]
        for values, label, color in ((unrelated, "unrelated memories", "tab:orange"),
                                     (relevant, "a memory that answers the question", "tab:blue")):
            if values:  # each group's bars sum to 1, so groups of different sizes compare
                ax.hist(values, bins=bins, weights=[1 / len(values)] * len(values), alpha=0.6, color=color,
                        label=f"{label} ({len(values)})")
        cut = scores["threshold_keeping_90pct_relevant"]
        if cut is not None:
            ax.axvline(cut, color="black", linestyle="--",
                       label=f"threshold={cut:.2f} keeps 90% of answering memories, "
                             f"{100 * scores['irrelevant_share_above_that_threshold']:.0f}% of unrelated ones")
        ax.axvline(RECOMMENDED_THRESHOLD, color="tab:red", linestyle=":",
                   label=f"recommended threshold={RECOMMENDED_THRESHOLD} (docs: Search and scores)")
        ax.set_xlim(-0.2, 1)
        ax.set_xlabel("Memory.search score (cosine similarity of the query and the memory)")
        ax.set_ylabel("share of the group's results")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
        ax.set_title(title, fontsize=10)
    fig.suptitle(f"Scores of Memory.search's top 10, default settings; embedder on {device}", fontsize=11)
    return _save(fig, path)


def _recall(results: dict[str, Any], device: str, path: Path) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ret = results.get("retrieval")
    if ret:
        for who, style in (("product", "-"), ("floor", "--")):
            for measure in ("hit", "recall"):
                curve = ret[who]["quality"][measure]
                axes[0].plot([int(k) for k in curve], list(curve.values()), style, marker="o",
                             label=f"{'Memory.search' if who == 'product' else 'floor'} {measure}@k")
        axes[0].set_title("LoCoMo: Memory.search vs exact floor")
    scoring = results.get("scoring", {}).get("datasets", {}).get("locomo")
    if scoring:
        for variant, per_metric in scoring["variants"].items():
            for metric, figures in per_metric.items():
                if metric.startswith("agreement"):
                    continue
                curve = figures["quality"]["recall"]
                axes[1].plot([int(k) for k in curve], list(curve.values()), marker=".",
                             linestyle="-" if variant == "normalised" else ":", label=f"{variant} {metric}")
        axes[1].set_title("LoCoMo recall@k by metric (exact FLAT)")
    for ax in axes:
        ax.set_xlabel("k (results read)")
        ax.set_ylabel("share of questions (hit) / of evidence turns (recall)")
        ax.set_ylim(0, 1)
        ax.set_xlim(left=0)
        ks = sorted({int(x) for line in ax.get_lines() for x in line.get_xdata()})
        if ks:
            ax.set_xticks(ks)  # the k measured, not fractions of one
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Retrieval quality at k; embedder on {device}")
    return _save(fig, path)
