"""What the next report could change, from ``s["next_report"]``: the updated estimates over a hypothetical
report's size n and responders y, with the current value and the decision threshold as contours."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from .style import OKABE_ITO, WIDTH, legend_below, styled  # noqa: E402

PANELS = (("pooled_mean", "average over reports (pooled mean)"),
          ("predictive_lo", "95% lower bound for a new report's response rate"))


def _surface(block: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Sizes n and the (responders y, size n) array of one quantity, masked where y > n."""
    sizes = np.array(sorted(int(n) for n in block["map"][name]))
    values = np.full((sizes.max() + 1, sizes.size), np.nan)
    for j, n in enumerate(sizes):
        values[: n + 1, j] = block["map"][name][str(n)]
    return sizes, np.ma.masked_invalid(values)


@styled
def next_report_map(s: dict) -> plt.Figure:
    """Two heat maps over a new report's size n (x) and responders y (y): the updated pooled mean (left)
    and the updated 95% lower bound for a new report (right). Solid contour: today's value; dashed: the
    decision threshold where some report reaches it. The worked example of a single series is marked.

    Reads ``s["next_report"]``: map {quantity: {n: [value for y = 0..n]}}, current, threshold, examples."""
    block = s["next_report"]
    threshold = float(block["threshold"])
    examples = [e for e in block.get("examples", []) if e["series"] == 1]
    figure, axes = plt.subplots(1, 2, figsize=(WIDTH, 3.7), layout="constrained", sharey=True)
    handles = [Line2D([], [], color="black", lw=1.4, label="today's value"),
               Line2D([], [], color=OKABE_ITO["vermillion"], lw=1.4, ls="--",
                      label=f"decision threshold {threshold:g}")]
    for ax, (name, title) in zip(axes, PANELS):
        sizes, values = _surface(block, name)
        responders = np.arange(values.shape[0])
        mesh = ax.pcolormesh(np.append(sizes - 0.5, sizes[-1] + 0.5), np.append(responders - 0.5, responders[-1] + 0.5),
                             values, cmap="viridis", shading="flat", rasterized=True, gid=f"map:{name}")
        figure.colorbar(mesh, ax=ax, shrink=0.9, pad=0.02)
        grid_n, grid_y = np.meshgrid(sizes, responders)
        now = float(block["current"][name])
        if values.min() < now < values.max():
            ax.contour(grid_n, grid_y, values, levels=[now], colors="black", linewidths=1.4)
        if values.min() < threshold < values.max():
            ax.contour(grid_n, grid_y, values, levels=[threshold], colors=OKABE_ITO["vermillion"], linewidths=1.4,
                       linestyles="--")
        else:
            side = "below" if values.min() >= threshold else "above"
            ax.text(0.03, 0.97, f"no report of up to {block['max_n']}\ntakes it {side} {threshold:g}",
                    transform=ax.transAxes, ha="left", va="top", fontsize=8, color="#444444")
        for example in examples:
            ax.plot([example["n"]], [example["y"]], "o", ms=6, mfc="white", mec="black", mew=1.0, zorder=4,
                    gid="example")
        ax.set_xlim(sizes[0] - 0.5, sizes[-1] + 0.5)
        ax.set_ylim(-0.5, responders[-1] + 0.5)
        ax.set_xlabel("patients in the new report, n")
        ax.set_title(f"{title}\n(today {now:.2f})", fontsize=9)
    axes[0].set_ylabel("responders in the new report, y")
    for example in examples:
        handles.append(Line2D([], [], ls="none", marker="o", mfc="white", mec="black",
                              label=f"{example['n']} with {example['y']} responding "
                                    f"(left {example['pooled_mean']:.2f}, right {example['predictive_lo']:.2f})"))
    legend_below(figure, handles, ncols=3, fontsize=8)
    figure.suptitle(f"What one more report of up to {block['max_n']} patients could change", x=0.01, ha="left",
                    fontsize=9.5)
    return figure
