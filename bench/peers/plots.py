"""PNG plots of a `python -m bench.peers` result (matplotlib, the `bench` extra): per
closed-loop workload, msg/s per system (median of runs, each run a dot); for the latency
workload, p50 and p99 against the offered rate, per system."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TITLES = {
    "1to1": "1 sender -> 1 recipient, closed loop",
    "NtoM": "10 senders -> 50 recipients, closed loop, 64 B",
    "fanout": "1 sender -> each of 50 recipients, closed loop, 64 B (deliveries/s)",
    "idle": "1 -> 1 with 1,000 idle peers connected, 64 B",
}


def plot(results: dict[str, Any], where: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    where.mkdir(parents=True, exist_ok=True)
    table, machine = results["table"], results["machine"]
    foot = f"{machine['date']}, {machine['cpu']}, commit {machine['commit']}"
    paths: list[Path] = []
    for workload, cells in table.items():
        if workload == "latency":
            continue
        fig, axes = plt.subplots(1, len(cells), figsize=(5.5 * len(cells), 4.2), squeeze=False)
        for ax, (cell, systems) in zip(axes[0], cells.items(), strict=True):
            labels = [row["label"] for row in systems.values()]
            medians = [row["msgs_per_s"] / 1000 for row in systems.values()]
            rows_y = range(len(labels))
            ax.barh(list(rows_y), medians, color="#4c72b0")
            for y, row in zip(rows_y, systems.values(), strict=True):
                ax.plot([v / 1000 for v in row["runs"]], [y] * len(row["runs"]), "k.", ms=4)
            ax.set_yticks(list(rows_y), labels, fontsize=8)
            ax.invert_yaxis()
            ax.set_xlabel("k msg/s delivered (median; dots: runs)")
            ax.set_title(cell, fontsize=9)
        fig.suptitle(f"{TITLES.get(workload, workload)}\n{foot}", fontsize=9)
        fig.tight_layout()
        path = where / f"peers-{workload}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    cells = table.get("latency")
    if cells:
        rates = [float(cell.split()[0]) for cell in cells]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
        keys = list(next(iter(cells.values())))
        for ax, p in zip(axes, ("p50", "p99"), strict=True):
            for key in keys:
                ys = [cells[cell][key]["latency_us"][p] for cell in cells]
                ax.plot(rates, ys, marker="o", label=next(iter(cells.values()))[key]["label"])
            ax.set_yscale("log")
            ax.set_xlabel("offered msg/s (open loop, 64 B, 1 -> 1)")
            ax.set_title(f"{p} latency, us (median of runs)", fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
        axes[0].legend(fontsize=7)
        fig.suptitle(f"due -> handed over, open loop\n{foot}", fontsize=9)
        fig.tight_layout()
        path = where / "peers-latency.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths
