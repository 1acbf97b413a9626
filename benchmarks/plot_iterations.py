#!/usr/bin/env python3
"""Plots the per-iteration CSV of `faiss-flash bench` / `faiss-flash demo`.

    plot_iterations.py ITERATIONS.csv OUT.png

The CSV has the columns case,engine,iteration,objective,ms,imbalance,nsplit.
Left: objective vs iteration; right: time of each iteration. One colour per
engine, one line style per case. Needs matplotlib (Debian: python3-matplotlib).
"""

import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

LINE_STYLES = ["-", "--", ":", "-."]


def read_runs(path):
    """{(case, engine): {"iteration": [...], "objective": [...], "ms": [...]}}"""
    runs = defaultdict(lambda: defaultdict(list))
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            run = runs[(row["case"], row["engine"])]
            run["iteration"].append(int(row["iteration"]))
            run["objective"].append(float(row["objective"]))
            run["ms"].append(float(row["ms"]))
    if not runs:
        sys.exit(f"{path}: no iterations to plot")
    return runs


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    csv_path, png_path = sys.argv[1], sys.argv[2]
    runs = read_runs(csv_path)
    cases = sorted({case for case, _ in runs})
    engines = sorted({engine for _, engine in runs})
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    fig, (ax_obj, ax_ms) = plt.subplots(1, 2, figsize=(12, 4.5))
    for (case, engine), run in sorted(runs.items()):
        style = dict(
            color=colours[engines.index(engine) % len(colours)],
            linestyle=LINE_STYLES[cases.index(case) % len(LINE_STYLES)],
            marker="o" if engine == "FAISS" else "x",
            markersize=4,
            label=f"{engine}, {case}" if len(cases) > 1 else engine,
        )
        ax_obj.plot(run["iteration"], run["objective"], **style)
        ax_ms.plot(run["iteration"], run["ms"], **style)
    ax_obj.set(xlabel="iteration", ylabel="objective",
               title="objective per iteration")
    ax_ms.set(xlabel="iteration", ylabel="ms", title="time per iteration",
              ylim=(0, None))
    for ax in (ax_obj, ax_ms):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(", ".join(cases))
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)


if __name__ == "__main__":
    main()
