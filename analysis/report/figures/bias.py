"""Publication bias, from ``s["bias"]``: how far the pooled mean falls if reports with a non-responder were
less likely to be published (the tipping-point curve over the selection strength ω) and what the data say
about ω itself (its prior and posterior when ω is integrated out)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FixedLocator, NullLocator  # noqa: E402

from .style import COLOURS, WIDTH, finite, legend_below, styled  # noqa: E402

OMEGA_LABEL = "reports with a non-responder published with relative probability ω"
OMEGA_TICKS = (1.0, 0.5, 0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001)
THRESHOLD_COLOURS = ("#D55E00", "#CC79A7", "#009E73", "#E69F00", "#56B4E9")
MECHANISMS = {"all_responders": "all-responder reports favoured", "single_patient": "single-patient reports favoured"}
PRIORS = {"log_uniform": "log-uniform on [ω_min, 1]", "uniform": "uniform on (0, 1)"}


def _omega_axis(ax, omega_min: float, label: bool = True) -> None:
    """Log ω from 1 (left) down to `omega_min` (right): stronger selection to the right."""
    ax.set_xscale("log")
    ax.set_xlim(1.0 * 1.08, omega_min / 1.08)  # reversed
    ticks = [t for t in OMEGA_TICKS if omega_min * 0.999 <= t <= 1.0]
    if omega_min not in ticks and all(abs(np.log(omega_min / t)) > 0.3 for t in ticks):
        ticks.append(omega_min)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    if label:
        ax.set_xlabel(OMEGA_LABEL)


def _times(omega: float) -> str:
    times = 1.0 / omega
    return f"{times:.1f}" if times < 10 else f"{times:.0f}"


@styled
def tipping(s: dict) -> plt.Figure:
    """The pooled mean and its 95% band as a continuous curve over the selection strength ω (log axis, from
    1, no selection, on the left to `omega_min` on the right), the fixed scenarios as points with their
    intervals, each tipping threshold as a horizontal line with the ω at which the curve crosses it marked,
    and, in a panel of its own at the right, the answer with ω integrated out under its prior (and under
    the other prior).

    Reads ``s["bias"]``: omega_min, curve {omega, mean, lo, hi}, scenarios [{mechanism, weight, pooled}],
    tipping [{quantity, threshold, reached, omega, times, failures}], averaged and averaged_sensitivity
    {prior, pooled}, mechanism."""
    block = s["bias"]
    omega_min = float(block["omega_min"])
    curve = block["curve"]
    omega = np.asarray(curve["omega"], dtype=float)
    mean, lo, hi = (np.asarray(curve[k], dtype=float) for k in ("mean", "lo", "hi"))
    figure, (ax, side) = plt.subplots(1, 2, figsize=(WIDTH, 5.6), layout="constrained", sharey=True,
                                      gridspec_kw={"width_ratios": [4.3, 1.3]})
    ax.fill_between(omega, lo, hi, color=COLOURS["map"], alpha=0.16, lw=0)
    ax.plot(omega, mean, color=COLOURS["map"], lw=2.0, gid="curve:mean")
    ax.plot(omega, lo, color=COLOURS["map"], lw=0.8, ls="--", alpha=0.8, gid="curve:lower")
    handles = [Line2D([], [], color=COLOURS["map"], lw=2.0, label="pooled mean if selection had strength ω"),
               Patch(color=COLOURS["map"], alpha=0.3, label="its 95% interval (dashed: the lower bound)")]
    # fixed scenarios: the block's mechanism on the curve, another mechanism beside it
    mechanism = block.get("mechanism", "all_responders")
    markers = {}
    for scenario in block.get("scenarios") or []:
        other = scenario.get("mechanism", mechanism) != mechanism
        marker = "s" if other else "o"
        x = float(scenario["weight"]) * (0.93 if other else 1.0)
        pooled = scenario["pooled"]
        ax.errorbar([x], [pooled["mean"]], yerr=[[pooled["mean"] - pooled["ci95"][0]],
                                                 [pooled["ci95"][1] - pooled["mean"]]],
                    fmt=marker, color="#333333", mfc="white" if other else "#333333", ms=5.5, capsize=2.5,
                    lw=1.1, zorder=4, ls="none", gid=f"scenario:{scenario.get('variant', x)}")
        markers.setdefault(scenario.get("mechanism", mechanism), marker)
    for name, marker in markers.items():
        handles.append(Line2D([], [], color="#333333", marker=marker, mfc="white" if marker == "s" else "#333333",
                              lw=1.1, label=f"fixed scenario, 95% interval\n({MECHANISMS.get(name, name)})"))
    # thresholds and where the curve crosses them
    for i, point in enumerate(block.get("tipping") or []):
        colour = THRESHOLD_COLOURS[i % len(THRESHOLD_COLOURS)]
        threshold = float(point["threshold"])
        what = "pooled mean" if point["quantity"] == "mean" else "lower 95% bound"
        ax.axhline(threshold, color=colour, lw=1.0, ls=(0, (5, 3)), zorder=1, gid=f"threshold:{i}")
        if point.get("reached") and finite(point.get("omega")):
            at = float(point["omega"])
            ax.plot([at, at], [0, threshold], color=colour, lw=0.9, ls=":", zorder=1)
            ax.plot([at], [threshold], "o", ms=7, mfc="white", mec=colour, mew=1.8, zorder=5, gid=f"crossing:{i}")
            text = (f"{what} reaches {threshold:g} at ω = {at:.2g}\n({_times(at)}× less likely to be published"
                    + (f"; or {point['failures']} unpublished\nsingle-patient failures)"
                       if point.get("failures") is not None else ")"))
        else:
            text = f"{what} stays above {threshold:g} down to ω = {omega_min:g}"
        handles.append(Line2D([], [], color=colour, lw=1.0, ls=(0, (5, 3)), marker="o", mfc="white", mec=colour,
                              label=text))
    _omega_axis(ax, omega_min)
    ax.set_ylabel("pooled mean response probability")
    bottom = min(float(lo.min()), *(float(p["threshold"]) for p in block.get("tipping") or [])) - 0.05
    ax.set_ylim(max(0.0, np.floor(bottom * 10) / 10), 1.0)
    ax.set_title("If publication were selective: pooled mean against selection strength")
    # the ω-averaged answers, at the right
    averaged = [a for a in (block.get("averaged"), block.get("averaged_sensitivity")) if a]
    for j, a in enumerate(averaged):
        pooled = a["pooled"]
        side.errorbar([j], [pooled["mean"]], yerr=[[pooled["mean"] - pooled["ci95"][0]],
                                                   [pooled["ci95"][1] - pooled["mean"]]],
                      fmt="D", color=COLOURS["posterior"] if j == 0 else "#888888", ms=7, capsize=3, lw=1.8,
                      ls="none", zorder=4, gid=f"averaged:{a.get('prior', j)}")
        side.annotate(f"{pooled['mean']:.2f}", (j, pooled["mean"]), xytext=(7, 0), textcoords="offset points",
                      va="center", ha="left", fontsize=8)
    for i, point in enumerate(block.get("tipping") or []):
        side.axhline(float(point["threshold"]), color=THRESHOLD_COLOURS[i % len(THRESHOLD_COLOURS)], lw=1.0,
                     ls=(0, (5, 3)), zorder=1)
    side.set_xlim(-0.5, len(averaged) - 0.5 + 0.35)
    side.set_xticks(range(len(averaged)),
                    [("log-\nuniform" if a.get("prior") == "log_uniform" else str(a.get("prior")).replace("_", "-"))
                     + ("\n(primary)" if j == 0 else "") for j, a in enumerate(averaged)], fontsize=8)
    side.tick_params(axis="y", labelleft=False)
    side.set_title("ω averaged\nover its prior", fontsize=9)
    side.set_xlabel("prior of ω")
    handles.append(Line2D([], [], color=COLOURS["posterior"], marker="D", lw=1.8,
                          label="ω integrated out (right panel):\npooled mean, 95% interval"))
    legend_below(figure, handles, ncols=2, fontsize=8)
    return figure


@styled
def omega(s: dict) -> plt.Figure:
    """What the data say about the selection strength ω: the prior and the posterior density of log ω (ω
    integrated out), on a log ω axis in the same orientation as `tipping` (stronger selection to the
    right); P(ω < 0.1) before and after the data. The other prior's pair, where the summary has it, is
    drawn thinner.

    Reads ``s["bias"]["averaged"]`` (prior, density {omega, prior, posterior}, p_strong_prior,
    p_strong_posterior, omega_posterior) and ``s["bias"]["averaged_sensitivity"]``, ``s["bias"]["omega_min"]``."""
    block = s["bias"]
    omega_min = float(block["omega_min"])
    figure, ax = plt.subplots(figsize=(WIDTH, 3.9), layout="constrained")
    handles = []
    peak = 0.0
    for j, key in enumerate(("averaged", "averaged_sensitivity")):
        a = block.get(key)
        if not a or not a.get("density"):
            continue
        density = a["density"]
        x = np.asarray(density["omega"], dtype=float)
        prior = np.asarray(density["prior"], dtype=float)
        posterior = np.asarray(density["posterior"], dtype=float)
        name = PRIORS.get(a.get("prior"), str(a.get("prior"))).replace("ω_min", f"{omega_min:g}")
        width = 2.0 if j == 0 else 1.1
        alpha = 1.0 if j == 0 else 0.65
        ax.plot(x, prior, color=COLOURS["prior"], lw=width, ls="--", alpha=alpha, gid=f"prior:{key}")
        ax.plot(x, posterior, color=COLOURS["posterior"], lw=width, alpha=alpha, gid=f"posterior:{key}")
        if j == 0:
            ax.fill_between(x, posterior, color=COLOURS["posterior"], alpha=0.12, lw=0)
        peak = max(peak, float(prior.max()), float(posterior.max()))
        strong = (f": P(ω < 0.1) {a['p_strong_prior']:.2f} → {a['p_strong_posterior']:.2f}"
                  if finite(a.get("p_strong_prior")) and finite(a.get("p_strong_posterior")) else "")
        suffix = "" if j == 0 else " (sensitivity)"
        handles.append(Line2D([], [], color=COLOURS["prior"], ls="--", lw=width, alpha=alpha,
                              label=f"prior of ω: {name}{suffix}"))
        post = a.get("omega_posterior")
        median = f", median {post['median']:.2g}" if post and finite(post.get("median")) else ""
        handles.append(Line2D([], [], color=COLOURS["posterior"], lw=width, alpha=alpha,
                              label=f"posterior under it{median}{strong}"))
    ax.axvline(0.1, color="#999999", lw=0.8, ls=":", zorder=0)
    ax.annotate("ω = 0.1: ten times less likely", (0.1, 1.0), xycoords=("data", "axes fraction"),
                xytext=(-4, -2), textcoords="offset points", ha="right", va="top", fontsize=8, color="#666666")
    _omega_axis(ax, omega_min)
    ax.set_ylim(0, peak * 1.15 if peak > 0 else 1.0)
    ax.set_ylabel("density of log ω")
    ax.set_title("Selection strength ω: prior and posterior (ω integrated out)")
    legend_below(figure, handles, ncols=2, fontsize=8)
    return figure
