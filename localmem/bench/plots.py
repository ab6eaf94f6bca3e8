"""PNG figures of a run (matplotlib, Agg backend: no display needed). Every title names the device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def write_all(results: dict[str, Any], samples: dict[str, Any], out: Path) -> list[str]:
    device = results["environment"]["embedder_device"]
    written = []
    if "latency" in results:
        written.append(_latency(results["latency"], device, out / "latency_vs_n.png"))
    for dataset, variants in samples.items():
        written.append(_histograms(dataset, variants, device, out / f"scores_{dataset}.png"))
    if "retrieval" in results or "locomo" in results.get("scoring", {}).get("datasets", {}):
        written.append(_recall(results, device, out / "recall_at_k.png"))
    return written


def _latency(lat: dict[str, Any], device: str, path: Path) -> str:
    sizes = sorted(int(n) for n in lat["sizes"])
    indexes = list(lat["sizes"][str(sizes[0])]["indexes"])
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True)
    for col, mode in enumerate(("unfiltered", "filtered")):
        for row, (part, floor_part) in enumerate((("total", "total"), ("store", "scan"))):
            ax = axes[row][col]
            for index in indexes:
                ys = [lat["sizes"][str(n)]["indexes"][index][mode][part]["p50_ms"] for n in sizes]
                ax.plot(sizes, ys, marker="o", label=index)
            ys = [lat["sizes"][str(n)]["floor"][mode][floor_part]["p50_ms"] for n in sizes]
            ax.plot(sizes, ys, marker="s", linestyle="--", color="black", label="floor (numpy exact)")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{mode}: {'query embed + search' if part == 'total' else 'vector search only'}")
            ax.set_xlabel("corpus size N")
            ax.set_ylabel("p50 latency (ms)")
            ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="upper left")
    fig.suptitle(f"Search latency vs N, Milvus Lite (COSINE, k={lat['k']}); embedder on {device}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _histograms(dataset: str, variants: dict[str, Any], device: str, path: Path) -> str:
    metric_names = list(next(iter(variants.values())))
    fig, axes = plt.subplots(len(variants), len(metric_names), figsize=(4 * len(metric_names), 3.2 * len(variants)),
                             squeeze=False)
    for row, (variant, per_metric) in enumerate(variants.items()):
        for col, metric in enumerate(metric_names):
            relevant, irrelevant = per_metric[metric]
            ax = axes[row][col]
            values = relevant + irrelevant
            if values:
                bins = 40
                ax.hist(irrelevant, bins=bins, alpha=0.6, density=True, label=f"irrelevant ({len(irrelevant)})")
                ax.hist(relevant, bins=bins, alpha=0.6, density=True, label=f"relevant ({len(relevant)})")
            ax.set_title(f"{variant} vectors, {metric}")
            ax.set_xlabel("localmem score (higher = more similar)")
            ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{dataset}: scores of top-10 results; embedder on {device}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _recall(results: dict[str, Any], device: str, path: Path) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ret = results.get("retrieval")
    if ret:
        for who, style in (("product", "-"), ("floor", "--")):
            for measure in ("hit", "recall"):
                curve = ret[who]["quality"][measure]
                axes[0].plot([int(k) for k in curve], list(curve.values()), style, marker="o",
                             label=f"{who} {measure}@k")
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
        ax.set_xlabel("k")
        ax.set_xscale("log")
        ax.set_ylim(0, 1)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"Retrieval quality at k; embedder on {device}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name
