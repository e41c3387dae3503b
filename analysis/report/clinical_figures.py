"""Figures of the clinical read-outs (`analysis.clinical`), drawn from their dictionaries only."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from analysis.report.figures import COLOURS  # noqa: E402

WEEK = 7


def time_to_response_figure(durability: dict) -> plt.Figure:
    """When the response was first seen, one row per patient (or per report where only the report says):
    a dot for a single time, a bar for a range ("1-2 weeks"), an open bar ending in an arrow for an upper
    bound only ("within 2 months": seen at some time up to then). Linear days, because the stated times
    and the upper bounds start at 0 and span weeks, not orders of magnitude; week gridlines make "2 weeks"
    and "14 days" line up. Rows whose wording gives no time to response are counted under the axis."""
    entries = [t for t in durability["time_to_response"] if t["status"] == "parsed"]
    missing = sum(t["patients"] for t in durability["time_to_response"] if t["status"] != "parsed")
    rows = max(len(entries), 1)
    figure, ax = plt.subplots(figsize=(7.5, 0.32 * (rows + 1) + 1.7))
    colour = COLOURS["map"]
    top = max([t["days"][1] for t in entries] + [WEEK])
    for i, t in enumerate(entries):
        y = rows - 1 - i
        lo, hi = t["days"]
        if t["kind"] == "point":
            ax.plot(lo, y, "o", color=colour, ms=6, zorder=3)
        elif t["kind"] == "range":
            ax.plot([lo, hi], [y, y], color=colour, lw=4, solid_capstyle="butt", zorder=3)
            ax.plot([lo, hi], [y, y], "|", color=colour, ms=10, mew=2, zorder=3)
        else:  # upper bound: somewhere in [0, hi]
            ax.plot([lo, hi], [y, y], color=colour, lw=1.2, ls=(0, (3, 2)), zorder=3)
            ax.annotate("", xy=(lo + 0.5, y), xytext=(hi, y),
                        arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.2, "mutation_scale": 10})
            ax.plot(hi, y, "|", color=colour, ms=10, mew=2, zorder=3)
        ax.text(hi + top * 0.02, y, f"“{t['wording']}”", va="center", fontsize=8, color="#555555")
    labels = [f"{t['report_id']} {t['patient_id']}" if t["patient_id"] else f"{t['report_id']} (n={t['patients']})"
              for t in entries]
    ax.set_yticks(range(rows - 1, rows - 1 - len(entries), -1), labels, fontsize=9)
    ax.set_ylim(-1.6, rows - 0.4)  # the row below 0 holds the legend
    right = top * 1.45
    ax.set_xlim(0, right)
    step = 2 * WEEK if right <= 16 * WEEK else 8 * WEEK
    ticks = range(0, int(right) + 1, step)
    ax.set_xticks(ticks, [f"{d}\n({d // WEEK} wk)" if d else "0" for d in ticks], fontsize=8)
    ax.set_xticks(range(0, int(right) + 1, WEEK if step == 2 * WEEK else 4 * WEEK), minor=True)
    ax.grid(axis="x", which="both", color="#e5e5e5", lw=0.8)
    ax.set_axisbelow(True)
    reports = [t["report_id"] for t in entries]
    for k, rid in enumerate(dict.fromkeys(reports)):
        if k % 2:
            at = [rows - 1 - i for i, r in enumerate(reports) if r == rid]
            ax.axhspan(min(at) - 0.5, max(at) + 0.5, color="#f3f3f3", zorder=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    month = durability.get("month_days", 30)
    every = "week" if step == 2 * WEEK else "4 weeks"
    ax.set_xlabel(f"days from starting {durability.get('drug', 'the drug')} to first improvement "
                  f"(gridlines every {every}; 1 month = {month} days)", fontsize=8)
    kinds = {t["kind"] for t in entries}
    if "point" in kinds:
        ax.plot([], [], "o", color=colour, label="stated time")
    if "range" in kinds:
        ax.plot([], [], color=colour, lw=4, label="stated range")
    if "upper bound" in kinds:
        ax.plot([], [], color=colour, lw=1.2, ls=(0, (3, 2)), marker="<", label="upper bound only (“within …”)")
    if kinds:  # in a row of its own under the last patient: never over a dot or a wording
        ax.legend(fontsize=8, loc="lower center", ncol=len(kinds), frameon=False, borderaxespad=0.2)
    shown = sum(t["patients"] for t in entries)
    ax.set_title(f"Time to response ({durability.get('drug', '')}): stated for {shown} "
                 f"patient{'s' if shown != 1 else ''}, not for {missing}", fontsize=10, loc="left")
    if not entries:
        ax.text(0.5, 0.5, "no time to response stated", ha="center", va="center", transform=ax.transAxes)
    figure.tight_layout()
    return figure
