#!/usr/bin/env python3
"""Plots the benchmark tables of benchmarks/RESULTS.md into benchmarks/plots/.

    plot_results.py [RESULTS.md] [OUTDIR]

- cpu_vs_faiss.png: CPU time per iteration, FAISS vs faiss_flash vs the
  floor (2·N·K·D flops at the measured FMA ceiling);
- gpu_vs_floor.png: the GPU grid, time per iteration vs the floor, and the
  ratio against the 1.5x target;
- gpu_versions.png: the ratio to the floor of each GPU kernel version.

The tables are read by their header row, so the figures follow RESULTS.md.
Needs matplotlib (Debian: python3-matplotlib).
"""

import os
import re
import sys

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def read_table(text, first_header):
    """Rows (dicts keyed by the header cells) of the markdown table whose
    header row starts with the cell `first_header`."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_header:
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                values = [c.strip() for c in row.strip().strip("|").split("|")]
                rows.append(dict(zip(cells, values)))
            return rows
    sys.exit(f"no table with header '{first_header}' in RESULTS.md")


def number(cell):
    """1559.6, '4.05x', '**3.1**', '1.95x (2.16x)' -> float (the first number)."""
    return float(re.search(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?", cell).group(0))


def section_line(text, section, key):
    """The value of '- key: value' in the '## section...' part of the text."""
    part = text.split("## " + section, 1)[1].split("\n## ", 1)[0]
    m = re.search(r"^- " + key + r": (.*)$", part, re.M)
    return m.group(1).strip().rstrip(".") if m else "?"


def annotate_bars(ax, bars, labels):
    for bar, label in zip(bars, labels):
        ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)


def plot_cpu(text, out):
    rows = read_table(text, "case")
    cases = [r["case"] for r in rows]
    faiss = [number(r["FAISS ms/it"]) for r in rows]
    flash = [number(r["faiss_flash ms/it"]) for r in rows]
    floor = [number(r["floor ms/it"]) for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.27
    xs = range(len(cases))
    b_faiss = ax.bar([x - width for x in xs], faiss, width, label="FAISS 1.7.3")
    b_flash = ax.bar(xs, flash, width, label="faiss_flash (CPU)")
    b_floor = ax.bar([x + width for x in xs], floor, width, label="floor (FMA ceiling)",
                     color="lightgray", edgecolor="gray")
    annotate_bars(ax, b_faiss, [f"{v:.0f}" for v in faiss])
    annotate_bars(ax, b_flash, [f"{v:.0f}\n{a / v:.1f}x faster" for v, a in zip(flash, faiss)])
    annotate_bars(ax, b_floor, [f"{v:.0f}" for v in floor])
    ax.set_xticks(list(xs), cases, fontsize=9)
    ax.set_ylabel("ms per iteration")
    ax.set_ylim(0, max(faiss) * 1.2)
    machine = section_line(text, "CPU", "Machine").split(" (")[0]
    ax.set_title(f"CPU: time per iteration ({machine}, "
                 f"{section_line(text, 'CPU', 'Date')})", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "cpu_vs_faiss.png"), dpi=120)


def plot_gpu(text, out):
    rows = read_table(text, "shape")
    names = [f"{r['shape']} {r['dtype']}" for r in rows]
    floor = [number(r["floor ms"]) for r in rows]
    ours = [number(r["ours ms"]) for r in rows]
    ratio = [number(r["ratio"]) for r in rows]
    fig, (ax_ms, ax_ratio) = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    ys = range(len(names))
    height = 0.4
    ax_ms.barh([y - height / 2 for y in ys], ours, height, label="faiss_flash")
    ax_ms.barh([y + height / 2 for y in ys], floor, height, label="floor",
               color="lightgray", edgecolor="gray")
    ax_ms.set_xscale("log")
    ax_ms.set_xlabel("ms per iteration (log scale)")
    ax_ms.set_yticks(list(ys), names, fontsize=8)
    ax_ms.invert_yaxis()
    ax_ms.legend()
    bars = ax_ratio.barh(ys, ratio, 0.6, color="tab:orange")
    for bar, r in zip(bars, ratio):
        ax_ratio.annotate(f"{r:.2f}x", (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                          va="center", fontsize=8, xytext=(3, 0), textcoords="offset points")
    ax_ratio.axvline(1.5, color="green", linestyle="--", label="target 1.5x")
    ax_ratio.axvline(1.0, color="black", linewidth=0.8)
    ax_ratio.set_xlabel("time / floor")
    ax_ratio.legend()
    device = section_line(text, "CUDA", "Device").split("(")[0].strip()
    fig.suptitle(f"GPU: time per iteration vs the floor ({device}, "
                 f"{section_line(text, 'CUDA', 'Date')})")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "gpu_vs_floor.png"), dpi=120)


def plot_gpu_versions(text, out):
    rows = read_table(text, "version")
    shapes = [k for k in rows[0] if k != "version"]
    versions = [r["version"].split(":")[0] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for shape in shapes:
        ax.plot(versions, [number(r[shape]) for r in rows], marker="o", label=shape)
    ax.axhline(1.5, color="green", linestyle="--", label="target 1.5x")
    ax.set_ylim(0, None)
    ax.set_ylabel("time / floor")
    ax.set_title("GPU kernel versions: ratio to the floor (RESULTS.md)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "gpu_versions.png"), dpi=120)


def main():
    results = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "RESULTS.md")
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "plots")
    os.makedirs(out, exist_ok=True)
    with open(results) as f:
        text = f.read()
    plot_cpu(text, out)
    plot_gpu(text, out)
    plot_gpu_versions(text, out)
    print(f"wrote cpu_vs_faiss.png, gpu_vs_floor.png, gpu_versions.png in {out}")


if __name__ == "__main__":
    main()
