"""The pooled analysis and its outcomes, from `summary.json`: the forest plot, the funnel (small-study
effects), the cumulative meta-analysis, the graded outcomes and their sensitivity to missing grades."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FixedLocator, NullLocator  # noqa: E402

from analysis.digits import estimate_formats, format_number, format_probability, relation  # noqa: E402
from .style import (ALTERNATIVE_COLOUR, COLOURS, CRUDE_COLOUR, OUTCOME_COLOURS, WIDTH, finite,  # noqa: E402
                    interval_text, legend_below, minus, styled, wrap)

FOREST_MAX_REPORTS = 40
FUNNEL_TICKS = (1, 2, 3, 5, 8, 14, 20, 30, 50, 100, 200)
GRADED_OUTCOMES = (("any", "any response"), ("marked", "marked response"), ("complete", "complete clearance"),
                   ("sustained", "sustained response"))
_JITTER = 0.02  # log10 units between reports of the same counts


def report_order(reports: dict) -> list[str]:
    """Largest report first, then by year, then by name."""
    return sorted(reports, key=lambda r: (-int(reports[r]["n"]), int(reports[r].get("year") or 0), r))


def _outcome_words(s: dict) -> tuple[str, str]:
    return str(s.get("outcome", "response")).replace("_", " "), str(s.get("drug", "the drug"))


# --- forest ----------------------------------------------------------------------------------------------


@styled
def forest(s: dict) -> plt.Figure:
    """Per report, largest first: the observed proportion y/n with its exact 95% interval (open circle, grey)
    and the report's posterior θ_i with its 95% interval (filled, blue); then the pooled mean and the
    predictive interval for a new report; the crude patient-weighted proportion as a dashed line; y/n per
    report on the right. More than `FOREST_MAX_REPORTS` reports: the largest ones, and the title says so.

    Reads ``s["reports"]`` ({id: n, y, year, mean, ci95, raw_ci95}), ``s["pooled"]``, ``s["predictive"]``,
    ``s["comparators"]["crude"]``, ``s["outcome"]``, ``s["drug"]`` and whether ``s["meta_regression"]`` is there
    (the pooled mean is then that of a report at the covariates' average)."""
    reports = s["reports"]
    ordered = report_order(reports)
    names = ordered[:FOREST_MAX_REPORTS]
    k = len(names)
    positions = {name: k + 1 - i for i, name in enumerate(names)}  # k+1 .. 2; pooled 1, predictive 0
    figure, ax = plt.subplots(figsize=(WIDTH, 0.3 * (k + 2) + 2.0), layout="constrained")
    for name, yy in positions.items():
        if (k + 1 - yy) % 2 == 1:
            ax.axhspan(yy - 0.5, yy + 0.5, color="#f3f3f3", lw=0, zorder=0)
        r = reports[name]
        ax.plot(r["raw_ci95"], [yy + 0.17] * 2, color="#9a9a9a", lw=1.3, solid_capstyle="butt", clip_on=False)
        ax.plot(r["y"] / r["n"], yy + 0.17, "o", mfc="white", mec="#555555", ms=5.5, clip_on=False, zorder=3)
        ax.plot(r["ci95"], [yy - 0.17] * 2, color=COLOURS["map"], lw=2.2, solid_capstyle="butt", clip_on=False)
        ax.plot(r["mean"], yy - 0.17, "o", color=COLOURS["map"], ms=5.5, clip_on=False, zorder=3)
    right_labels = [f"{reports[n]['y']}/{reports[n]['n']}" for n in names]
    for yy, key, colour in ((1, "pooled", "black"), (0, "predictive", COLOURS["posterior"])):
        block = s[key]
        ax.plot(block["ci95"], [yy] * 2, color=colour, lw=3.2, solid_capstyle="butt", clip_on=False)
        ax.plot(block["mean"], yy, "D", color=colour, ms=7, clip_on=False, zorder=3)
        right_labels.append(interval_text(block))
    ax.axhline(1.5, color="#bbbbbb", lw=0.8)
    pooled_is = "a report at its covariates' average" if s.get("meta_regression") else "average over reports"
    handles = [
        Line2D([], [], color="#9a9a9a", lw=1.3, marker="o", mfc="white", mec="#555555",
               label="observed proportion y/n, exact 95% CI"),
        Line2D([], [], color=COLOURS["map"], lw=2.2, marker="o", label="report's θ_i (shrunken), 95% CrI"),
        Line2D([], [], color="black", lw=3.2, marker="D", label=f"pooled mean ({pooled_is}), 95% CrI"),
        Line2D([], [], color=COLOURS["posterior"], lw=3.2, marker="D", label="new report θ_new (predictive), 95% CrI"),
    ]
    crude = (s.get("comparators") or {}).get("crude")
    if crude and finite(crude.get("proportion")):
        ax.axvline(crude["proportion"], color=CRUDE_COLOUR, ls=(0, (4, 2)), lw=1.2, zorder=1)
        handles.append(Line2D([], [], color=CRUDE_COLOUR, ls=(0, (4, 2)), lw=1.2,
                              label=f"crude pooled proportion {crude['y']}/{crude['n']} = {crude['proportion']:.2f}"))
    ticks = [positions[n] for n in names] + [1, 0]
    ax.set_yticks(ticks, names + ["pooled mean", "new report (predictive)"])
    ax.set_xlim(-0.03, 1.04)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set_ylim(-0.6, k + 1.6)
    ax.tick_params(axis="y", length=0)
    ax.spines["left"].set_visible(False)
    twin = ax.twinx()
    twin.set_ylim(ax.get_ylim())
    twin.set_yticks(ticks, right_labels)
    twin.tick_params(axis="y", length=0, labelsize=8.5)
    for side in ("top", "right", "left", "bottom"):
        twin.spines[side].set_visible(False)
    outcome, drug = _outcome_words(s)
    ax.set_xlabel(f"probability of {outcome} on {drug}")
    which = (f"the {k} largest of {len(ordered)} reports" if len(ordered) > k else f"{k} reports, largest first")
    ax.set_title(f"{outcome.capitalize()} on {drug}: {which}", loc="left")
    legend_below(figure, handles, ncols=2)
    return figure


# --- funnel -------------------------------------------------------------------------------------------------


def _split_curve(curve: dict, at: float):
    """(inside, beyond) parts of the fitted curve at report size `at`, both including `at` itself
    (interpolated in log n), as dicts of arrays n, mean, lo, hi."""
    n = np.asarray(curve["n"], dtype=float)
    values = {key: np.asarray(curve[key], dtype=float) for key in ("mean", "lo", "hi")}
    if at >= n[-1]:
        return {"n": n, **values}, None
    at_values = {key: float(np.interp(math.log(at), np.log(n), v)) for key, v in values.items()}
    inside = n < at
    beyond = n > at
    first = {"n": np.r_[n[inside], at], **{k: np.r_[v[inside], at_values[k]] for k, v in values.items()}}
    second = {"n": np.r_[at, n[beyond]], **{k: np.r_[at_values[k], v[beyond]] for k, v in values.items()}}
    return first, second


@styled
def funnel(block: dict, reports: dict) -> plt.Figure:
    """Small-study effects: each report's observed proportion against its size (log scale) with its exact
    95% interval; the meta-regression's fitted mean and 95% band by report size, dashed and lighter beyond
    the largest pooled report (extrapolation); its predictions at chosen sizes (hollow when extrapolated).
    Reports with the same counts are spread sideways and labelled once ("3/3 (5 reports)"); reports with a
    non-responder are named under their interval.

    Reads ``s["small_study"]``, or the analysis's own ``s["meta_regression"]`` on covariates that include
    log n (`block`: curve {n, mean, lo, hi}, observed_sizes [smallest, largest],
    predictions [{label, n, estimate, extrapolation}], slopes["log_n"]) and ``s["reports"]`` (`reports`:
    {id: n, y, raw_ci95}); the meta-regression's block does not carry the counts."""
    figure, ax = plt.subplots(figsize=(WIDTH, 4.9), layout="constrained")
    handles = []
    observed = block.get("observed_sizes") or [None, None]
    largest_pooled = float(observed[1]) if finite(observed[1]) else None
    curve = block.get("curve")
    if curve and len(curve.get("n", [])):
        inside, beyond = _split_curve(curve, largest_pooled if largest_pooled else float(curve["n"][-1]))
        ax.fill_between(inside["n"], inside["lo"], inside["hi"], color=COLOURS["map"], alpha=0.18, lw=0)
        ax.plot(inside["n"], inside["mean"], color=COLOURS["map"], lw=1.8, gid="curve:fitted")
        handles.append(Line2D([], [], color=COLOURS["map"], lw=1.8, label="fitted mean by report size"))
        handles.append(Patch(color=COLOURS["map"], alpha=0.25, label="95% band of the fitted mean"))
        if beyond is not None:
            ax.fill_between(beyond["n"], beyond["lo"], beyond["hi"], color=COLOURS["map"], alpha=0.07, lw=0)
            ax.plot(beyond["n"], beyond["mean"], color=COLOURS["map"], lw=1.6, ls=(0, (4, 2.5)),
                    gid="curve:extrapolation")
            middle = math.sqrt(beyond["n"][0] * beyond["n"][-1])
            ax.annotate("extrapolation", (middle, float(np.interp(math.log(middle), np.log(beyond["n"]),
                                                                   beyond["hi"]))),
                        xytext=(0, 4), textcoords="offset points", ha="center", va="bottom", fontsize=8,
                        color=COLOURS["map"], style="italic")
            handles.append(Line2D([], [], color=COLOURS["map"], lw=1.6, ls=(0, (4, 2.5)),
                                  label=f"extrapolation beyond the largest report (n = {largest_pooled:g})"))
    groups: dict[tuple[int, int], list[str]] = {}
    for name, r in reports.items():
        groups.setdefault((int(r["n"]), int(r["y"])), []).append(name)
    sizes = sorted({n for n, _ in groups})
    largest = max(sizes, default=1)
    spans: dict[int, float] = {}  # n -> left end of its reports (log10), for placing the predictions
    top_labels = 0
    for (n, y), members in sorted(groups.items()):
        members = sorted(members)
        k = len(members)
        shifts = (np.arange(k) - (k - 1) / 2) * _JITTER
        xs = n * 10 ** shifts
        spans[n] = min(spans.get(n, 0.0), float(shifts[0]))
        lows = [reports[m]["raw_ci95"][0] for m in members]
        highs = [reports[m]["raw_ci95"][1] for m in members]
        ax.vlines(xs, lows, highs, color="#8a8a8a", lw=1.1, zorder=2)
        ax.scatter(xs, np.full(k, y / n), s=16 + 110 * n / largest, color="#333333", edgecolor="white", lw=0.6,
                   zorder=3, clip_on=False, gid=f"reports:{n}/{y}")
        if y == n:
            label = f"{y}/{n}" + (f" ({k} reports)" if k > 1 else f" ({members[0]})")
            # the smallest size starts its label at its leftmost point (never across the y axis), the
            # largest ends it at its rightmost point; the others are centred
            if n == sizes[0]:
                at, ha = xs[0], "left"
            elif n == sizes[-1] and len(sizes) > 1:
                at, ha = xs[-1], "right"
            else:
                at, ha = n, "center"
            ax.annotate(label, (at, 1.0), xytext=(0, 7 + 11 * (top_labels % 2)), textcoords="offset points",
                        ha=ha, va="bottom", fontsize=8, gid="label:stacked")
            top_labels += 1
        else:  # under the lowest end of the group's intervals, clear of the curve and the predictions
            label = "\n".join(members) + f"\n{y}/{n}"
            ax.annotate(label, (n, min(lows)), xytext=(0, -4), textcoords="offset points", ha="center", va="top",
                        fontsize=8, linespacing=1.1)
    handles.append(Line2D([], [], ls="", marker="o", color="#333333", ms=6,
                          label="observed proportion (size ∝ n), exact 95% CI"))
    markers = ("D", "s", "^", "v", "P")
    predictions = [p for p in block.get("predictions") or [] if finite(p.get("n"))]
    for i, p in enumerate(predictions):
        n = float(p["n"])
        estimate = p["estimate"]
        x = n * 10 ** (min(spans.get(int(round(n)), 0.0), 0.0) - 0.035)  # just left of that size's reports
        marker = markers[i % len(markers)]
        extrapolated = bool(p.get("extrapolation"))
        ax.errorbar([x], [estimate["mean"]], yerr=[[estimate["mean"] - estimate["ci95"][0]],
                                                   [estimate["ci95"][1] - estimate["mean"]]],
                    fmt=marker, color=ALTERNATIVE_COLOUR, mfc="white" if extrapolated else ALTERNATIVE_COLOUR,
                    ms=6, capsize=3, lw=1.4, zorder=4, ls="none")
        handles.append(Line2D([], [], color=ALTERNATIVE_COLOUR, marker=marker, lw=1.4,
                              mfc="white" if extrapolated else ALTERNATIVE_COLOUR,
                              label=f"{p['label']}: {interval_text(estimate)}"
                                    + (" (extrapolation)" if extrapolated else "")))
    top = max([largest, *(float(v) for v in (curve or {}).get("n", [])), *(float(p["n"]) for p in predictions)])
    ax.set_xscale("log")
    ax.set_xlim(0.75, max(20.0, top * 1.25))
    ticks = [t for t in FUNNEL_TICKS if t <= ax.get_xlim()[1]]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels([str(t) for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_ylim(0, 1.13)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_xlabel("patients in the report, n (log scale)")
    ax.set_ylabel("proportion responding")
    title = "Small-study effects: response against report size"
    slope = (block.get("slopes") or {}).get("log_n")
    if slope:
        estimate = slope["slope"]
        mean, lo, hi = (minus(format_number(v, digits, error)) for v, digits, error in estimate_formats(estimate))
        unit = f" {slope['unit']}" if slope.get("unit") else " per unit of log n"
        p_negative = format_probability(slope["p_negative"], 3, slope.get("p_negative_mcse"))
        title += (f"\nmeta-regression slope (logit scale) {mean} (95% {lo} to {hi}){unit}; "
                  f"P(slope < 0) {relation(p_negative)}{p_negative}")
        fragile = slope.get("without_most_influential")
        if fragile:
            title += f", {fragile['p_negative']:.2f} without {fragile['report']}"
    figure.suptitle("\n".join(wrap(line, 105) for line in title.split("\n")), x=0.01, ha="left", fontsize=9.5)
    legend_below(figure, handles, ncols=2)
    return figure


# --- cumulative -------------------------------------------------------------------------------------------


@styled
def cumulative(s: dict) -> plt.Figure:
    """Cumulative meta-analysis by publication year: the pooled mean and 95% interval (thick) and a new
    report's predictive interval (thin, lighter) after each year's reports, reports / patients so far under
    the axis. With ``first_seen`` (reports of uncertain year moved to the year they were first seen), both
    year conventions side by side in one figure.

    Reads ``s["cumulative"]``: steps [{year, reports, patients, pooled, predictive}], first_seen {moved,
    steps} or None."""
    block = s["cumulative"]
    steps = block["steps"]
    orderings = [("as published", steps, COLOURS["map"])]
    first_seen = block.get("first_seen")
    if first_seen and first_seen.get("steps"):
        moved = first_seen.get("moved") or {}
        which = ", ".join(f"{r} at {y}" for r, y in moved.items())
        orderings.append((f"reports of uncertain year at the year first seen ({which})" if which
                          else "reports of uncertain year at the year first seen", first_seen["steps"],
                          ALTERNATIVE_COLOUR))
    offset = 0.17 if len(orderings) > 1 else 0.0
    years = sorted({int(st["year"]) for _, ordered, _ in orderings for st in ordered})
    slot = {year: i for i, year in enumerate(years)}  # equally spaced years: the gaps carry no information
    lowest = min(float(st["predictive"]["ci95"][0]) for _, ordered, _ in orderings for st in ordered)
    figure, ax = plt.subplots(figsize=(WIDTH, 4.4 + 0.25 * len(orderings)), layout="constrained")
    handles = []
    for row, (label, ordered, colour) in enumerate(orderings):
        shift = -offset if row == 0 else offset
        x = np.array([slot[int(st["year"])] for st in ordered], dtype=float) + shift
        mean = np.array([st["pooled"]["mean"] for st in ordered])
        ax.vlines(x, [st["predictive"]["ci95"][0] for st in ordered], [st["predictive"]["ci95"][1] for st in ordered],
                  color=colour, alpha=0.35, lw=1.4)
        ax.vlines(x, [st["pooled"]["ci95"][0] for st in ordered], [st["pooled"]["ci95"][1] for st in ordered],
                  color=colour, lw=3.5)
        if len(ordered) > 1:
            ax.plot(x, mean, "-", color=colour, lw=0.9, alpha=0.6)
        ax.plot(x, mean, "o", color=colour, mec="white", ms=7, zorder=3, gid=f"cumulative:{row}")
        for xi, st in zip(x, ordered):
            ax.annotate(f"{st['pooled']['mean']:.2f}", (xi, st["pooled"]["mean"]),
                        xytext=(-7 if row == 0 else 7, 0), textcoords="offset points",
                        ha="right" if row == 0 else "left", va="center", fontsize=7.5, color=colour,
                        bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none",
                              "alpha": 0.8})
            ax.annotate(f"{st['reports']} / {st['patients']}", (xi - shift, 0), xycoords=("data", "axes fraction"),
                        xytext=(0, -17 - 11 * row), textcoords="offset points", ha="center", va="top",
                        fontsize=8, color=colour, annotation_clip=False)
        handles.append(Line2D([], [], color=colour, lw=3.5, marker="o", label=wrap(label, 60)))
    ax.axhline(steps[-1]["pooled"]["mean"], color="#999999", ls=":", lw=1, zorder=0)
    handles += [Line2D([], [], color="#555555", lw=3.5, marker="o", label="pooled mean, 95% CrI"),
                Line2D([], [], color="#555555", lw=1.4, alpha=0.35, label="new report, 95% predictive interval")]
    ax.set_xticks(range(len(years)), [str(y) for y in years])
    ax.set_xlim(-0.6, len(years) - 0.4)
    ax.set_ylim(max(0.0, math.floor(10 * lowest - 0.5) / 10), 1.02)
    ax.set_ylabel("response probability")
    ax.set_xlabel("publication year  (under each year: reports / patients so far)", labelpad=10 + 11 * len(orderings))
    ax.set_title("Cumulative meta-analysis: the estimate after each year's reports (dotted: the final pooled mean)")
    legend_below(figure, handles, ncols=2)
    return figure


# --- graded outcomes ----------------------------------------------------------------------------------------


@styled
def graded(s: dict) -> plt.Figure:
    """The graded-outcome model: per outcome the pooled probability with its 95% interval, a new report's
    predictive interval, and each grading report's observed proportion (circle size by its n) with the
    crude rate of the reports that graded it.

    Reads ``s["graded"]``: {any, marked, complete, sustained}: {pooled, predictive, reports, patients,
    responders}; reports {id: {outcome: {observed, n}}}."""
    block = s["graded"]
    outcomes = [(key, label) for key, label in GRADED_OUTCOMES if key in block]
    figure, ax = plt.subplots(figsize=(WIDTH, 1.0 + 0.95 * len(outcomes) + 0.9), layout="constrained")
    for row, (key, _label) in enumerate(outcomes[::-1]):
        outcome = block[key]
        observed = [(r[key]["observed"], r[key]["n"]) for r in block["reports"].values()
                    if key in r and r[key].get("observed") is not None]
        if observed:
            # reports of the same proportion stacked upwards, one above the other, so that they can be counted
            proportions = [round(y / n, 9) for y, n in observed]
            tallest = max(proportions.count(p) for p in proportions)
            step = min(0.075, 0.5 / max(tallest - 1, 1))
            stacks: dict[float, int] = {}
            xs, ys, sizes = [], [], []
            for y, n in sorted(observed, key=lambda yn: (yn[0] / yn[1], -yn[1])):
                p = round(y / n, 9)
                level = stacks.get(p, 0)
                stacks[p] = level + 1
                xs.append(y / n)
                ys.append(row + 0.08 + step * level)
                sizes.append(n)
            ax.scatter(xs, ys, s=10 + 5 * np.asarray(sizes), facecolors="none", edgecolors="#777777", lw=0.8,
                       clip_on=False, zorder=2, gid=f"observed:{key}")
            crude = outcome["responders"] / max(outcome["patients"], 1)
            ax.plot(crude, row + 0.2, "|", color=CRUDE_COLOUR, ms=14, mew=2, zorder=3)
        ax.plot(outcome["predictive"]["ci95"], [row - 0.12] * 2, color=COLOURS["joint"], lw=1.2, alpha=0.7)
        ax.plot(outcome["pooled"]["ci95"], [row - 0.12] * 2, color=COLOURS["posterior"], lw=4, solid_capstyle="butt",
                gid=f"pooled:{key}")
        ax.plot(outcome["pooled"]["mean"], row - 0.12, "D", color=COLOURS["posterior"], ms=6, zorder=4)
        ax.text(1.05, row, f"{interval_text(outcome['pooled'])}\n"
                f"{outcome['reports']} reports graded it", va="center", fontsize=7.5,
                transform=ax.get_yaxis_transform())
    ax.set_yticks(range(len(outcomes)), [label for _, label in outcomes[::-1]])
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.6, len(outcomes) - 0.4)
    ax.set_xlabel("probability (pooled over reports) / observed proportion")
    handles = [Line2D([], [], color=COLOURS["posterior"], lw=4, marker="D", label="pooled, 95% interval"),
               Line2D([], [], color=COLOURS["joint"], lw=1.2, label="new report, 95% predictive interval"),
               Line2D([], [], ls="", marker="o", mfc="none", mec="#888888", label="report that graded it (size: n)"),
               Line2D([], [], ls="", marker="|", color=CRUDE_COLOUR, ms=10, mew=2, label="crude rate of those reports")]
    legend_below(figure, handles, ncols=2)
    ax.set_title("Graded outcomes from one model: complete ≤ marked ≤ any by construction")
    return figure


INFINITY_GAP = 1.5
"""Where δ = ∞ sits on the missingness axis: this far beyond the largest finite δ (after an axis break)."""


def _delta_positions(deltas) -> tuple[np.ndarray, float | None]:
    finite_deltas = [float(d) for d in deltas if d is not None]
    top = max(finite_deltas, default=0.0)
    infinity = top + INFINITY_GAP if any(d is None for d in deltas) else None
    return np.array([infinity if d is None else float(d) for d in deltas], dtype=float), infinity


@styled
def missingness(s: dict) -> plt.Figure:
    """How the pooled probability of each outcome moves if an ungraded stage went worse than the graded
    ones: one panel per outcome, mean and 95% interval against the pattern-mixture shift δ of the ungraded
    stages' log-odds, from δ = 0 (missing at random, the primary assumption, marked) to δ = ∞ (no patient
    of an ungraded report reached the stage: the worst case), drawn as the last tick after an axis break.

    Reads ``s["graded"]["missingness"]``: delta [.., None for ∞], outcomes {key: [Estimate per δ]},
    ungraded_reports {key: count}."""
    block = s["graded"]["missingness"]
    deltas = list(block["delta"])
    x, infinity = _delta_positions(deltas)
    finite_mask = np.array([d is not None for d in deltas])
    ungraded = block.get("ungraded_reports") or {}
    labels = dict(GRADED_OUTCOMES)
    keys = [k for k, _ in GRADED_OUTCOMES if k in block["outcomes"]] + \
        [k for k in block["outcomes"] if k not in labels]
    ncols = 2 if len(keys) > 1 else 1
    nrows = math.ceil(len(keys) / ncols)
    figure, axes = plt.subplots(nrows, ncols, figsize=(WIDTH, 2.45 * nrows + 0.9), layout="constrained",
                                sharex=True, sharey=True, squeeze=False)
    for ax in axes.ravel()[len(keys):]:
        ax.set_visible(False)
    finite_ticks = [float(d) for d in deltas if d is not None]
    ticks = list(finite_ticks) + ([infinity] if infinity is not None else [])
    tick_labels = [f"{d:g}" for d in finite_ticks]
    if infinity is not None:
        tick_labels.append("∞")
    for ax, key in zip(axes.ravel(), keys):
        estimates = block["outcomes"][key]
        colour = OUTCOME_COLOURS.get(key, "#555555")
        mean = np.array([e["mean"] if e.get("mean") is not None else e["median"] for e in estimates], dtype=float)
        lo = np.array([e["ci95"][0] for e in estimates], dtype=float)
        hi = np.array([e["ci95"][1] for e in estimates], dtype=float)
        ax.fill_between(x[finite_mask], lo[finite_mask], hi[finite_mask], color=colour, alpha=0.15, lw=0)
        ax.plot(x[finite_mask], mean[finite_mask], "-", color=colour, lw=1.6)
        if infinity is not None:  # the step to ∞ is not a continuation of the curve: dotted, with an interval
            last, worst = np.flatnonzero(finite_mask)[-1], np.flatnonzero(~finite_mask)[0]
            ax.plot([x[last], x[worst]], [mean[last], mean[worst]], ":", color=colour, lw=1.2)
            ax.vlines(x[worst], lo[worst], hi[worst], color=colour, lw=1.6)
            ax.axvline(infinity, color="#444444", lw=0.8, ls="--", zorder=0, gid="delta:infinity")
        ax.plot(x, mean, "o", color=colour, ms=4.5, zorder=3, gid=f"missingness:{key}")
        ax.axvline(0.0, color="#444444", lw=0.8, ls="--", zorder=0, gid="delta:mar")
        ax.annotate("MAR", (0.0, 0.03), xycoords=("data", "axes fraction"), xytext=(3, 0),
                    textcoords="offset points", ha="left", va="bottom", fontsize=7.5, color="#444444")
        if infinity is not None:
            ax.annotate("worst case", (infinity, 0.03), xycoords=("data", "axes fraction"), xytext=(-3, 0),
                        textcoords="offset points", ha="right", va="bottom", fontsize=7.5, color="#444444")
        count = int(ungraded.get(key, 0))
        note = "graded by every report" if count == 0 else f"ungraded in {count} report{'s' if count != 1 else ''}"
        ax.set_title(f"{labels.get(key, key)} ({note})", fontsize=9)
        ax.set_xticks(ticks, tick_labels)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.tick_params(labelbottom=True)
        if infinity is not None:  # an axis break between the largest finite δ and ∞
            gap = (max(finite_ticks, default=0.0) + infinity) / 2
            for dx in (-0.07, 0.07):
                ax.plot([gap + dx - 0.06, gap + dx + 0.06], [-0.03, 0.03], color="black", lw=0.9,
                        transform=ax.get_xaxis_transform(), clip_on=False)
    axes[0][0].set_xlim(min(ticks) - 0.35, max(ticks) + 0.35)
    axes[0][0].set_ylim(0, 1.0)
    for ax in axes[:, 0]:
        ax.set_ylabel("pooled probability")
    for ax in axes[-1]:
        ax.set_xlabel("log-odds shift of an ungraded stage, δ")
    if nrows > 1 and len(keys) % ncols:  # the last row is short: label the panel above the gap too
        axes[-2][-1].set_xlabel("log-odds shift of an ungraded stage, δ")
    figure.suptitle("Graded outcomes if an ungraded stage went worse than the graded ones (pattern mixture)\n"
                    "mean and 95% interval; δ = 0: missing at random (MAR, the primary assumption);\n"
                    "δ = ∞: no patient of an ungraded report reached the stage (the worst case)", x=0.01, ha="left",
                    fontsize=9.5)
    return figure
