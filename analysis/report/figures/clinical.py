"""The clinical read-outs, from ``s["durability"]``: how soon the response came."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator  # noqa: E402

from .style import OKABE_ITO, WIDTH, legend_below, plural, styled  # noqa: E402

REASON_LABELS = {"assessment time": "by (assessment)", "clearing time": "by (clearing)",
                 "first documented visit": "by (first visit)", "within": "within"}
"""How an upper bound is labelled: improved by the time of an assessment, of clearing, of the first
documented visit, or "within" a stated time."""
FIRST_COLOUR = OKABE_ITO["blue"]
BOUND_COLOUR = OKABE_ITO["vermillion"]
LOG_DECADES = 2.0
"""The day axis is logarithmic when the stated times span more than this many decades."""
LOG_TICKS = (1, 2, 3, 7, 14, 30, 60, 90, 180, 365, 730, 1460)
WEEK = 7


def _label(entry: dict) -> str:
    if entry.get("patient_id"):
        return f"{entry['report_id']} {entry['patient_id']}"
    return f"{entry['report_id']} ({plural(int(entry.get('patients') or 1), 'patient')})"


def _reason(entry: dict) -> str:
    if entry.get("kind") == "first improvement":
        return "first improvement"
    return REASON_LABELS.get(str(entry.get("reason")), f"by ({entry.get('reason')})")


def _day_axis(ax, entries, month: int) -> str:
    """Days on a linear axis from 0, or a log axis when the stated times span more than two decades;
    returns a note on the scale for the axis label."""
    stated = [float(v) for t in entries for v in (t.get("stated_days") or t["days"]) if float(v) > 0]
    largest = max(stated, default=30.0)
    smallest = min(stated, default=1.0)
    if largest / smallest > 10 ** LOG_DECADES:
        left = smallest / 2.0
        ax.set_xscale("log")
        ax.set_xlim(left, largest * 1.4)
        ticks = [v for v in LOG_TICKS if left <= v <= largest * 1.4]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.set_xticklabels([f"{v:g}" for v in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
        return "log scale"
    right = largest * 1.08
    ax.set_xlim(0, right)
    if right > 4 * month:  # ticks every few months, gridlines every month
        every = max(1, math.ceil(right / month / 9))
        ax.set_xticks(np.arange(0, right + 1, month * every))
        ax.set_xticks(np.arange(0, right + 1, month), minor=True)
        return f"gridlines every month of {month} days"
    if right > 8 * WEEK:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 3, 5, 10]))
        return "linear"
    ax.set_xticks(np.arange(0, right + 1, WEEK))  # weeks
    ax.set_xticks(np.arange(0, right + 1, 1), minor=True)
    return "gridlines every week"


def _rows(ax, entries, left_end: float = 0.0) -> None:
    rows = max(len(entries), 1)
    for i, t in enumerate(entries):
        y = rows - 1 - i
        lo, hi = (float(v) for v in t["days"])
        if t.get("kind") == "first improvement":
            if hi > lo:
                ax.plot([lo, hi], [y, y], color=FIRST_COLOUR, lw=4, solid_capstyle="butt", zorder=3,
                        gid=f"range:{_label(t)}")
                ax.plot([lo, hi], [y, y], "|", color=FIRST_COLOUR, ms=10, mew=2, zorder=3)
            else:
                ax.plot([lo], [y], "o", color=FIRST_COLOUR, ms=6, zorder=3, gid=f"point:{_label(t)}")
        else:  # improved at some time up to `hi`: an arrow from hi pointing left
            ax.annotate("", xy=(max(lo, left_end), y), xytext=(hi, y), gid=f"bound:{_label(t)}",
                        arrowprops={"arrowstyle": "-|>", "color": BOUND_COLOUR, "lw": 1.3, "ls": (0, (3, 2)),
                                    "mutation_scale": 11, "shrinkA": 0, "shrinkB": 0})
            ax.plot([hi], [y], "|", color=BOUND_COLOUR, ms=11, mew=2.2, zorder=3)
    positions = list(range(rows - 1, rows - 1 - len(entries), -1))
    ax.set_yticks(positions, [_label(t) for t in entries], fontsize=8.5)
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(-0.7, rows - 0.3)
    twin = ax.twinx()
    twin.set_ylim(ax.get_ylim())
    right_labels = []
    for t in entries:
        wording = str(t.get("wording") or "").strip()
        if len(wording) > 34:
            wording = wording[:33].rstrip() + "…"
        reason = "" if t.get("kind") == "first improvement" else _reason(t)
        right_labels.append(": ".join(p for p in (reason, f"“{wording}”" if wording else "") if p))
    twin.set_yticks(positions, right_labels, fontsize=8)
    twin.tick_params(axis="y", length=0)
    for tick, t in zip(twin.get_yticklabels(), entries):
        tick.set_color(FIRST_COLOUR if t.get("kind") == "first improvement" else BOUND_COLOUR)
    for side in ("top", "right", "left"):
        twin.spines[side].set_visible(False)
    reports = [t["report_id"] for t in entries]
    for k, rid in enumerate(dict.fromkeys(reports)):
        if k % 2:
            at = [rows - 1 - i for i, r in enumerate(reports) if r == rid]
            ax.axhspan(min(at) - 0.5, max(at) + 0.5, color="#f3f3f3", zorder=0, lw=0)
    ax.grid(axis="x", which="both", color="#e8e8e8", lw=0.7)
    ax.set_axisbelow(True)


@styled
def time_to_response(s: dict) -> plt.Figure:
    """When the response was first seen, one row per patient (or per report where only the report says
    it), in two panels that are never mixed: above, a stated time of first improvement (a dot for a day, a
    bar for a range such as "1-2 weeks"); below, an upper bound only ("assessed at 3 months": improved at
    some time before), an arrow pointing left from its time, labelled by its reason: "by (assessment)",
    "by (clearing)", "by (first visit)" or "within", with the source wording on the right. Each panel's
    days on a linear axis, or a log axis when its times span more than two decades; entries with no time
    stated are counted in the title.

    Reads ``s["durability"]``: time_to_response [{report_id, patient_id, patients, status, kind, reason,
    days, stated_days, wording}], drug, month_days."""
    block = s["durability"]
    entries = [t for t in block["time_to_response"] if t.get("status") == "parsed" and t.get("days")]
    entries.sort(key=lambda t: (float(t["days"][1]), float(t["days"][0]), t["report_id"],
                                str(t.get("patient_id") or "")))
    missing = sum(int(t.get("patients") or 0) for t in block["time_to_response"]
                  if not (t.get("status") == "parsed" and t.get("days")))
    firsts = [t for t in entries if t.get("kind") == "first improvement"]
    bounds = [t for t in entries if t.get("kind") != "first improvement"]
    drug = block.get("drug") or s.get("drug") or "the drug"
    month = int(block.get("month_days") or 30)
    panels = [(part, title) for part, title in ((firsts, "time of first improvement stated"),
                                                (bounds, "upper bound only: improved by then"))
              if part]
    count = lambda part: sum(int(t.get("patients") or 0) for t in part)  # noqa: E731
    title = (f"Time to first improvement on {drug}: stated for {plural(count(firsts), 'patient')}, "
             f"an upper bound only for {count(bounds)},\nno time stated for {missing}")
    if not panels:
        figure, ax = plt.subplots(figsize=(WIDTH, 2.0), layout="constrained")
        ax.text(0.5, 0.5, "no time to response stated", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        figure.suptitle(title, x=0.01, ha="left", fontsize=9.5)
        return figure
    heights = [len(part) + 1.6 for part, _ in panels]
    figure, axes = plt.subplots(len(panels), 1, figsize=(WIDTH, 0.3 * sum(heights) + 1.4), layout="constrained",
                                squeeze=False, gridspec_kw={"height_ratios": heights})
    for ax, (part, panel_title) in zip(axes[:, 0], panels):
        scale = _day_axis(ax, part, month)
        _rows(ax, part, left_end=ax.get_xlim()[0] if ax.get_xscale() == "log" else 0.0)
        ax.set_xlabel(f"days from starting {drug} ({scale})")
        ax.set_title(f"{panel_title} ({plural(count(part), 'patient')})", fontsize=9)
    figure.suptitle(title, x=0.01, ha="left", fontsize=9.5)
    handles = [Line2D([], [], color=FIRST_COLOUR, marker="o", ls="", label="first improvement on a stated day"),
               Line2D([], [], color=FIRST_COLOUR, lw=4, label="first improvement within a stated range"),
               Line2D([], [], color=BOUND_COLOUR, lw=1.3, ls=(0, (3, 2)), marker="<",
                      label="improved at some time before (upper bound only)")]
    legend_below(figure, handles, ncols=2, fontsize=8)
    return figure
