"""Draws the executor benchmark's throughput against concurrency, one panel per server and
operation, batchops beside its peer (median of the runs at each concurrency).

Usage: bench_exec_plot.py RESULTS_CSV OUT_PNG
"""

import collections
import csv
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    results, out = sys.argv[1], sys.argv[2]
    rates = collections.defaultdict(list)
    with open(results, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    # The runs over each server's whole manifest (the bench's smaller job only splits the cost).
    whole = collections.defaultdict(int)
    for row in rows:
        whole[row["server"]] = max(whole[row["server"]], int(row["tasks"]))
    for row in rows:
        if int(row["tasks"]) == whole[row["server"]]:
            panel = (row["server"], row["operation"])
            rates[(panel, row["tool"], int(row["concurrency"]))].append(float(row["tasks_per_second"]))
    panels = sorted({panel for panel, _, _ in rates})
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        tools = sorted({tool for p, tool, _ in rates if p == panel})
        for tool in tools:
            points = sorted((c, statistics.median(v)) for (p, t, c), v in rates.items() if p == panel and t == tool)
            ax.plot([c for c, _ in points], [r for _, r in points], marker="o", label=tool)
        server, operation = panel
        ax.set_title(f"{operation} on {server}, {whole[server]:,} tasks")
        ax.set_xlabel("requests in flight")
        ax.set_ylabel("tasks/s (median)")
        ax.set_xscale("log", base=2)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("batchops against its peers, whole-process throughput")
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    main()
