"""Figures of a run, drawn from results only (no model code), saved as PNG (150 dpi) and SVG.

Every figure here is a plain matplotlib figure with ``layout="constrained"`` (one layout pass when it is
saved, no ``bbox_inches="tight"``), drawn at about 7.5 inches wide so that it reads at an 800 px embed.

The primary analysis (`draw_primary`): forest, prior_posterior, trace, rank, energy,
predictive_intervals, predictive_statistics, khat, loo_pit. The target arm (`draw_borrowing`):
borrowing_update, borrowing_sweep, map_prior_fit. Figures from plain dicts and lists, for the pages that
compute their inputs: `funnel` (small-study effects), `cumulative` (cumulative meta-analysis),
`tornado` and `sensitivity_forest` (the sensitivity sweep), `loo_pit` (randomised LOO-PIT values).
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator  # noqa: E402
from scipy import stats  # noqa: E402

from analysis.borrowing import BorrowingResult  # noqa: E402
from analysis.checks import PARETO_K_UNRELIABLE, STATISTICS  # noqa: E402

GRID = np.linspace(0.0005, 0.9995, 1999)
COLOURS = {"prior": "#7f7f7f", "map": "#1f77b4", "likelihood": "#2ca02c", "posterior": "#d62728", "joint": "#9467bd"}
CHAIN_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
CRUDE_COLOUR = "#2ca02c"
ALTERNATIVE_COLOUR = "#e6550d"
FAILED_COLOUR = "#d62728"
GROUP_COLOURS = {
    "primary": "#1f77b4", "likelihood family": "#17becf", "outcome": "#9467bd", "prior": "#ff7f0e",
    "evidence": "#2ca02c", "publication bias": "#d62728", "small-study effects": "#8c564b",
    "naloxone borrowing": "#e377c2", "leave one out": "#7f7f7f", "graded outcomes": "#6b6ecf", "other": "#bcbd22",
}
_SPARE_COLOURS = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd")
WIDTH = 7.5  # inches: 1125 px at 150 dpi, shown at about 0.7 of that in an 800 px page
BAND_PROB = 0.95
BAND_SIMULATIONS = 1000
K_THRESHOLDS = (0.5, PARETO_K_UNRELIABLE)

STYLE = {
    "font.size": 9, "axes.titlesize": 9.5, "axes.labelsize": 9, "xtick.labelsize": 8.5, "ytick.labelsize": 8.5,
    "legend.fontsize": 8.5, "figure.titlesize": 10.5, "legend.frameon": False, "axes.spines.top": False,
    "axes.spines.right": False, "axes.titlelocation": "left", "figure.constrained_layout.h_pad": 0.06,
    "figure.constrained_layout.w_pad": 0.06,
}


def _styled(function):
    """Draw inside the module's rc style (font sizes, spines), without touching the global rcParams."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with plt.rc_context(STYLE):
            return function(*args, **kwargs)

    return wrapper


def save(figure: plt.Figure, directory: Path, name: str, tight: bool | None = None) -> None:
    """Write `name`.png (150 dpi) and `name`.svg (text kept as text, no date: reproducible) and close the figure.

    A figure with a layout engine (every figure of this module: ``layout="constrained"``) is laid out once,
    for the PNG, and the SVG reuses that layout; a figure without one (the ``tight_layout()`` figures of
    other modules) keeps ``bbox_inches="tight"``, unless `tight` says otherwise."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if tight is None:
        tight = figure.get_layout_engine() is None
    bbox = "tight" if tight else None
    try:
        figure.savefig(directory / f"{name}.png", dpi=150, bbox_inches=bbox)
        if figure.get_layout_engine() is not None:
            figure.set_layout_engine("none")  # the SVG keeps the PNG's layout: no second layout pass
        with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": name}):
            figure.savefig(directory / f"{name}.svg", bbox_inches=bbox, metadata={"Date": None})
    finally:
        plt.close(figure)


def save_collection(plot_collection, directory: Path, name: str) -> None:
    """Save an ArviZ PlotCollection as PNG and SVG (used by the validation page)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for suffix in ("png", "svg"):
        plot_collection.savefig(directory / f"{name}.{suffix}")
    plt.close("all")


# --- helpers: densities, parameters, bands --------------------------------------------------------------


def density(values, bounds: tuple[float, float] = (-np.inf, np.inf), points: int = 512,
            bandwidth: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian kernel density on a grid, boundary-corrected by reflection at finite `bounds`.

    Binned (`points` bins) and convolved, so that it costs the same for any number of draws. At a finite
    bound the grid ends exactly at the bound (the density neither hooks down nor is cut off there); on an
    unbounded side it runs 4 bandwidths past the last draw, where the density has decayed to ~0.
    Bandwidth: Silverman's rule (with at most 2000 draws, since MCMC draws are autocorrelated) unless
    given. Returns (x, density)."""
    x = np.asarray(values, dtype=float).ravel()
    x = x[np.isfinite(x)]
    lower, upper = bounds
    if x.size == 0:
        return np.array([]), np.array([])
    if bandwidth is None:
        iqr = np.subtract(*np.percentile(x, [75, 25]))
        spread = min(x.std(), iqr / 1.349) if iqr > 0 else x.std()
        bandwidth = 0.9 * spread * min(x.size, 2000) ** -0.2  # MCMC draws are autocorrelated: n capped
    if not bandwidth > 0:
        bandwidth = 1e-3 * (abs(x.mean()) + 1.0)
    lo = lower if np.isfinite(lower) else x.min() - 4 * bandwidth
    hi = upper if np.isfinite(upper) else x.max() + 4 * bandwidth
    dx = (hi - lo) / points
    counts = np.histogram(x, bins=points, range=(lo, hi))[0].astype(float)
    half = int(math.ceil(4 * bandwidth / dx))
    m = min(half, points)
    left, right = np.zeros(half), np.zeros(half)
    if np.isfinite(lower):
        left[half - m:] = counts[:m][::-1]
    if np.isfinite(upper):
        right[:m] = counts[::-1][:m]
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) * dx / bandwidth) ** 2)
    smoothed = np.convolve(np.concatenate([left, counts, right]), kernel / kernel.sum(), mode="valid")
    grid = lo + dx * (np.arange(points) + 0.5)
    values_out = smoothed / (x.size * dx)
    if np.isfinite(lower):
        grid, values_out = np.r_[lower, grid], np.r_[values_out[0], values_out]
    if np.isfinite(upper):
        grid, values_out = np.r_[grid, upper], np.r_[values_out, values_out[-1]]
    return grid, values_out


PARAMETERS = {
    # (family, or None for any, name): (symbol, what it is, short name, bounds)
    ("beta_binomial", "mu"): ("μ", "μ: population mean response probability", "population mean", (0.0, 1.0)),
    ("beta_binomial", "u"): ("u", "u = κ$^{-1/2}$: between-report spread (0 = identical reports)",
                             "between-report spread", (0.0, np.inf)),
    ("beta_binomial", "kappa"): ("κ", "κ: concentration of the reports' θ (∞ = identical reports)",
                                 "concentration", (0.0, np.inf)),
    ("logit_normal", "mu"): ("μ", "μ: logit of the median report's response probability", "logit median",
                             (-np.inf, np.inf)),
    ("logit_normal", "tau"): ("τ", "τ: between-report SD, logit scale (0 = identical reports)",
                              "between-report SD, logit", (0.0, np.inf)),
    ("sequential", "mu"): ("μ", "μ: logit of the median report's stage probability", "logit median",
                           (-np.inf, np.inf)),
    ("sequential", "tau"): ("τ", "τ: between-report SD, stage logits (0 = identical reports)",
                            "between-report SD, logit", (0.0, np.inf)),
    (None, "mu"): ("μ", "μ: population mean", "population mean", (-np.inf, np.inf)),
    (None, "u"): ("u", "u = κ$^{-1/2}$: between-report spread (0 = identical reports)", "between-report spread",
                  (0.0, np.inf)),
    (None, "tau"): ("τ", "τ: between-report SD, logit scale (0 = identical reports)", "between-report SD, logit",
                    (0.0, np.inf)),
    (None, "heterogeneity_sd"): ("SD(θ)", "SD(θ): spread of the reports' θ (0 = identical reports)",
                                 "between-report SD of θ", (0.0, 0.5)),
    (None, "pooled"): ("pooled", "pooled mean response probability", "pooled mean", (0.0, 1.0)),
    (None, "theta_new"): ("θ_new", "θ_new: response probability of a new report", "new report", (0.0, 1.0)),
}


def parameter_info(name: str, family: str | None, draws=None) -> tuple[str, str, tuple[float, float]]:
    """(symbol, title, bounds) of a plotted parameter; unknown names get bounds from their draws."""
    symbol, title, _, bounds = _parameter(name, family, draws)
    return symbol, title, bounds


def _parameter(name: str, family: str | None, draws=None) -> tuple[str, str, str, tuple[float, float]]:
    for key in ((family, name), (None, name)):
        if key in PARAMETERS:
            return PARAMETERS[key]
    lower = 0.0 if draws is not None and np.nanmin(draws) >= 0 else -np.inf
    return name, name, name, (lower, np.inf)


def _series(dataset, names) -> list[tuple[str, str, np.ndarray]]:
    """(variable, coordinate label, draws as (chain, draw)) for every scalar element of the named variables."""
    out = []
    for name in names:
        if name not in dataset:
            continue
        da = dataset[name]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        if not extra:
            out.append((name, "", da.transpose("chain", "draw").values))
            continue
        stacked = da.stack(__element__=extra).transpose("chain", "draw", "__element__")
        for i, coordinate in enumerate(stacked["__element__"].values):
            label = ",".join(str(c) for c in np.atleast_1d(coordinate))
            out.append((name, label, stacked.values[..., i]))
    return out


def _family(idata) -> str | None:
    return getattr(idata, "attrs", {}).get("model")


def _symbol(name: str, coordinate: str, family: str | None, draws=None) -> str:
    symbol = parameter_info(name, family, draws)[0]
    return f"{symbol}[{coordinate}]" if coordinate else symbol


@functools.lru_cache(maxsize=32)
def simultaneous_band(n_draws: int, n_chains: int = 1, prob: float = BAND_PROB, n_simulations: int = BAND_SIMULATIONS,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ArviZ's simultaneous `prob` band for the ECDF of `n_draws` values per chain (Säilynoja et al. 2022):
    (x, lower, upper), x = 0, 1/n, ..., 1, as `arviz_stats.ecdf_utils.ecdf_pit` returns them.

    One chain: `ecdf_pit` itself. Several chains (rank plots): the same simulation as `ecdf_pit(...,
    n_chains)` (same random stream, so the same band; `tests/test_figures.py` checks it), vectorised over
    the simulations: ArviZ evaluates its hypergeometric CDFs one at a time, seconds per band at the sizes of
    a rank plot. Cached: the band depends on the sizes only."""
    rng = np.random.default_rng(seed)
    if n_chains <= 1:
        from arviz_stats.ecdf_utils import ecdf_pit

        x, _, lower, upper = ecdf_pit(np.linspace(0, 1, n_draws), prob, n_simulations=n_simulations, rng=rng)
        return x, lower, upper
    from arviz_stats.ecdf_utils import get_pointwise_confidence_band, hypergeom_cdf

    eval_points = np.arange(1, n_draws) / n_draws
    total = n_draws * n_chains
    successes = np.linspace(1, total, n_draws - 1, dtype=int, endpoint=False)
    # table[j, c + 1] = P(X ≤ c), X ~ Hypergeometric(total, successes_j, n_draws), c = -1..n_draws, with
    # ArviZ's conventions (0 below 0, 1 from min(n_draws, successes_j) up).
    table = np.ones((n_draws - 1, n_draws + 2))
    table[:, 0] = 0.0
    for j, s in enumerate(successes):
        top = min(n_draws, s, total)
        c = np.arange(top)
        table[j, 1:top + 1] = hypergeom_cdf(c, n_draws, s, total)
    rows = np.arange(n_draws - 1)
    gamma = np.empty(n_simulations)
    for start in range(0, n_simulations, 100):  # bounded memory
        size = min(100, n_simulations - start)
        sample = rng.uniform(0, 1, size=(size, n_chains, n_draws))
        # counts[..., j - 1] = #{u ≤ j / n}, j = 1..n − 1, by binning (as ArviZ's searchsorted, but in one call)
        bins = np.minimum((sample * n_draws).astype(int), n_draws - 1)
        bins += (np.arange(size * n_chains) * n_draws).reshape(size, n_chains, 1)
        counts = np.cumsum(np.bincount(bins.ravel(), minlength=size * n_chains * n_draws)
                           .reshape(size, n_chains, n_draws), axis=-1)[..., :-1]
        ecdf_counts = (counts / n_draws * n_draws).astype(int)
        lower_tail = np.nanmin(table[rows, ecdf_counts + 1], axis=-1)
        upper_tail = np.nanmin(1 - table[rows, ecdf_counts], axis=-1)
        gamma[start:start + size] = np.min(1 - 2 * np.minimum(lower_tail, upper_tail), axis=-1)
    lower, upper = get_pointwise_confidence_band(np.quantile(gamma, prob), n_draws, eval_points)
    x = np.concatenate(([0.0], eval_points, [1.0]))
    return x, np.concatenate(([0.0], lower, [1.0])), np.concatenate(([0.0], upper, [1.0]))


def _report_order(reports: dict) -> list[str]:
    """Largest report first, then by year, then by name."""
    return sorted(reports, key=lambda r: (-int(reports[r]["n"]), int(reports[r].get("year") or 0), r))


def _legend_below(figure: plt.Figure, handles, ncols: int = 2, **kwargs) -> None:
    figure.legend(handles=handles, loc="outside lower center", ncols=ncols, handlelength=2.2, **kwargs)


def _interval_text(mean: float, ci: tuple[float, float]) -> str:
    return f"{mean:.2f} ({ci[0]:.2f}–{ci[1]:.2f})"


def _finite(value) -> bool:
    try:
        return value is not None and np.isfinite(float(value))
    except (TypeError, ValueError):
        return False


# --- the primary analysis ---------------------------------------------------------------------------------


@_styled
def forest(summary: dict) -> plt.Figure:
    """Per report (largest first): the observed proportion with its exact interval (open) and the shrunken
    posterior θ_i (filled); then the pooled mean and the predictive interval for a new report, the crude
    patient-weighted proportion as a vertical line, and y/n per report on the right."""
    reports = summary["reports"]
    names = _report_order(reports)
    k = len(names)
    positions = {name: k + 1 - i for i, name in enumerate(names)}  # k+1 .. 2; pooled 1, predictive 0
    figure, ax = plt.subplots(figsize=(WIDTH, 0.33 * (k + 2) + 2.0), layout="constrained")
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
        block = summary[key]
        ax.plot(block["ci95"], [yy] * 2, color=colour, lw=3.2, solid_capstyle="butt", clip_on=False)
        ax.plot(block["mean"], yy, "D", color=colour, ms=7, clip_on=False, zorder=3)
        right_labels.append(_interval_text(block["mean"], block["ci95"]))
    ax.axhline(1.5, color="#bbbbbb", lw=0.8)
    handles = [
        Line2D([], [], color="#9a9a9a", lw=1.3, marker="o", mfc="white", mec="#555555",
               label="observed proportion y/n, exact 95% CI"),
        Line2D([], [], color=COLOURS["map"], lw=2.2, marker="o", label="report's θ_i (shrunken), 95% CrI"),
        Line2D([], [], color="black", lw=3.2, marker="D", label="pooled mean (average over reports), 95% CrI"),
        Line2D([], [], color=COLOURS["posterior"], lw=3.2, marker="D", label="new report θ_new (predictive), 95% CrI"),
    ]
    crude = summary.get("comparators", {}).get("crude")
    if crude:
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
    outcome = summary["outcome"].replace("_", " ")
    ax.set_xlabel(f"probability of {outcome} on {summary['drug']}")
    ax.set_title(f"{outcome.capitalize()} on {summary['drug']}: {k} reports, largest first", loc="left")
    _legend_below(figure, handles, ncols=2)
    return figure


@_styled
def prior_posterior(idata, parameters, extra: tuple[str, ...] = ("heterogeneity_sd",)) -> plt.Figure:
    """Prior and posterior density of each population parameter (and of `extra` quantities present in both
    groups), on a common density axis. Boundary-corrected kernel densities (reflection at 0, and at 1 for
    probabilities), so neither a flat prior nor a posterior piled against a bound is distorted there."""
    family = _family(idata)
    names = [n for n in (*parameters, *extra) if n in idata["posterior"] and n in idata["prior"]]
    prior_series = {(n, c): v for n, c, v in _series(idata["prior"], names)}
    panels = [(n, c, v) for n, c, v in _series(idata["posterior"], names) if (n, c) in prior_series]
    ncols = min(3, len(panels))
    nrows = int(math.ceil(len(panels) / ncols))
    figure, axes = plt.subplots(nrows, ncols, figsize=(WIDTH, 3.0 * nrows + 0.7),
                                layout="constrained", squeeze=False)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    for ax, (name, coordinate, draws) in zip(axes.ravel(), panels):
        prior = prior_series[(name, coordinate)]
        symbol, title, bounds = parameter_info(name, family, np.r_[prior.ravel(), draws.ravel()])
        both = np.r_[prior.ravel(), draws.ravel()]
        lo = bounds[0] if np.isfinite(bounds[0]) else np.quantile(both, 0.002)
        hi = bounds[1] if np.isfinite(bounds[1]) and bounds[1] <= 1 else np.quantile(both, 0.995)
        peak = 0.0
        for values, colour, label, fill in ((prior, COLOURS["prior"], "prior", False),
                                            (draws, COLOURS["posterior"], "posterior", True)):
            x, d = density(values, bounds)
            ax.plot(x, d, color=colour, lw=1.8 if fill else 1.5, ls="-" if fill else "--", label=label)
            if fill:
                ax.fill_between(x, d, color=colour, alpha=0.18, lw=0)
            inside = (x >= lo) & (x <= hi)
            peak = max(peak, float(d[inside].max()) if inside.any() else 0.0)
        ax.set_xlim(lo, hi)
        ax.set_ylim(0, peak * 1.12)
        ax.set_title(_wrap(title + (f" [{coordinate}]" if coordinate else ""), 30 if ncols == 3 else 46), fontsize=9)
        ax.set_xlabel(symbol + (f"[{coordinate}]" if coordinate else ""))
        ax.set_ylabel("density")
    _legend_below(figure, [Line2D([], [], color=COLOURS["prior"], ls="--", lw=1.5, label="prior"),
                           Patch(facecolor=COLOURS["posterior"], alpha=0.35, edgecolor=COLOURS["posterior"],
                                 label="posterior")], ncols=2)
    figure.suptitle("Population parameters: prior against posterior", x=0.01, ha="left")
    return figure


def _wrap(text: str, width: int) -> str:
    words, lines, line = text.split(" "), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


@_styled
def trace(idata, parameters) -> plt.Figure:
    """Per parameter: each chain's density (left, labelled with the parameter) and its draws in order
    (right), divergent transitions as red ticks under the trace."""
    family = _family(idata)
    panels = _series(idata["posterior"], parameters)
    diverging = None
    if "sample_stats" in idata and "diverging" in idata["sample_stats"]:
        diverging = idata["sample_stats"]["diverging"].transpose("chain", "draw").values.astype(bool)
    figure, axes = plt.subplots(len(panels), 2, figsize=(WIDTH, 1.85 * len(panels) + 0.7), layout="constrained",
                                squeeze=False, gridspec_kw={"width_ratios": [1, 2.2]})
    chains = None
    for (left, right), (name, coordinate, draws) in zip(axes, panels):
        symbol, title, bounds = parameter_info(name, family, draws)
        chains = draws.shape[0]
        for c in range(chains):
            colour = CHAIN_COLOURS[c % len(CHAIN_COLOURS)]
            x, d = density(draws[c], bounds)
            left.plot(x, d, color=colour, lw=1.1)
            right.plot(np.arange(draws.shape[1]), draws[c], color=colour, lw=0.4, alpha=0.7)
        label = _symbol(name, coordinate, family, draws)
        left.set_title(f"{label}: {_parameter(name, family, draws)[2]}", fontsize=9)
        left.set_xlabel(label)
        left.set_ylabel("density")
        left.set_ylim(bottom=0)
        low, high = np.quantile(draws, [0.0005, 0.9995])
        pad = 0.08 * (high - low)
        low = bounds[0] if np.isfinite(bounds[0]) and low - pad <= bounds[0] else low - pad
        high = bounds[1] if np.isfinite(bounds[1]) and high + pad >= bounds[1] else high + pad
        left.set_xlim(low, high)
        right.set_ylabel(label)
        right.set_xlim(0, draws.shape[1])
        title_right = f"{label}: draws by chain"
        if diverging is not None and diverging.any():
            where = np.nonzero(diverging)
            right.plot(where[1], np.full(where[1].size, np.min(draws)), "|", color=FAILED_COLOUR, ms=8, mew=1,
                       clip_on=False)
            title_right += f" ({int(diverging.sum())} divergent, red ticks)"
        right.set_title(title_right, fontsize=8.5)
    axes[-1][1].set_xlabel("draw (after warm-up)")
    _legend_below(figure, [Line2D([], [], color=CHAIN_COLOURS[c % len(CHAIN_COLOURS)], lw=1.5, label=f"chain {c}")
                           for c in range(chains or 0)], ncols=max(1, chains or 1))
    return figure


def _thinned(draws: np.ndarray) -> np.ndarray:
    """Draws (chain, draw) thinned by their ESS (min of bulk and tail), as ArviZ's `thin(factor="auto")`."""
    import arviz_stats

    return np.asarray(arviz_stats.thin(draws, factor="auto", chain_axis=0, draw_axis=1))


@_styled
def rank(idata, parameters) -> plt.Figure:
    """Rank ECDF difference per chain: each chain's ECDF of its draws' fractional ranks among all chains,
    minus the uniform CDF, with ArviZ's simultaneous 95% band for this many chains and draws (draws thinned
    by ESS first, else autocorrelation reads as disagreement). A chain leaving the band (marked) samples a
    different distribution from the others; by chance that happens to 5% of the parameters."""
    family = _family(idata)
    panels = [(n, c, _thinned(v)) for n, c, v in _series(idata["posterior"], parameters)]
    chains = panels[0][2].shape[0]
    ncols = min(3, len(panels))
    nrows = int(math.ceil(len(panels) / ncols))
    figure, axes = plt.subplots(nrows, ncols, figsize=(WIDTH, 2.9 * nrows + 0.8), layout="constrained",
                                squeeze=False, sharey=True)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    limit = 0.0
    for ax, (name, coordinate, draws) in zip(axes.ravel(), panels):
        size = draws.shape[1]
        x, lower, upper = simultaneous_band(size, chains)
        ranks = stats.rankdata(draws.ravel()).reshape(draws.shape) / draws.size  # ArviZ's relative ranks
        ax.fill_between(x, lower - x, upper - x, step="post", color="#cccccc", alpha=0.6, lw=0)
        outside_any = False
        for c in range(chains):
            ecdf = np.searchsorted(np.sort(ranks[c]), x, side="right") / size
            diff = ecdf - x
            ax.step(x, diff, where="post", color=CHAIN_COLOURS[c % len(CHAIN_COLOURS)], lw=1.1)
            outside = (ecdf < lower) | (ecdf > upper)
            if outside.any():
                outside_any = True
                ax.plot(x[outside], diff[outside], "o", ms=3, color=FAILED_COLOUR, zorder=4)
            limit = max(limit, float(np.abs(diff).max()))
        limit = max(limit, float(np.max(upper - x)), float(np.max(x - lower)))
        ax.axhline(0, color="black", lw=0.6)
        label = _symbol(name, coordinate, family, draws)
        verdict = "a chain leaves the band" if outside_any else "every chain inside the band"
        ax.set_title(f"{label}: {verdict}\n({size} draws per chain)", fontsize=9,
                     color=FAILED_COLOUR if outside_any else "black")
        ax.set_xlabel("fractional rank among all chains")
        ax.set_xlim(0, 1)
        ax.yaxis.set_tick_params(labelleft=True)
    for ax in axes[:, 0]:
        ax.set_ylabel("ECDF − uniform CDF")
        ax.set_ylim(-1.15 * limit, 1.15 * limit)
    handles = [Line2D([], [], color=CHAIN_COLOURS[c % len(CHAIN_COLOURS)], lw=1.5, label=f"chain {c}")
               for c in range(chains)]
    handles += [Patch(color="#cccccc", alpha=0.6, label="simultaneous 95% band"),
                Line2D([], [], ls="", marker="o", ms=3, color=FAILED_COLOUR, label="outside the band")]
    _legend_below(figure, handles, ncols=min(len(handles), 4 if chains <= 4 else 5))
    figure.suptitle("Rank ECDF by chain, draws thinned by ESS", x=0.01, ha="left")
    return figure


def bfmi(energy: np.ndarray) -> np.ndarray:
    """E-BFMI per chain: mean squared energy transition over the variance of the energy."""
    energy = np.atleast_2d(energy)
    return np.square(np.diff(energy, axis=1)).mean(axis=1) / np.var(energy, axis=1)


@_styled
def energy(idata, threshold: float = 0.3) -> plt.Figure:
    """Left: marginal energy (centred) against energy transitions, pooled over chains; a transition density
    much narrower than the marginal one means the sampler explores the energy levels slowly. Right: E-BFMI
    per chain with the 0.3 threshold below which exploration is poor."""
    sample = idata["sample_stats"]["energy"].transpose("chain", "draw")
    values = sample.values
    chain_ids = [int(c) if np.issubdtype(np.asarray(c).dtype, np.integer) else c for c in sample["chain"].values]
    figure, (left, right) = plt.subplots(1, 2, figsize=(WIDTH, 3.3), layout="constrained",
                                         gridspec_kw={"width_ratios": [2.2, 1]})
    marginal = (values - values.mean(axis=1, keepdims=True)).ravel()
    transitions = np.diff(values, axis=1).ravel()
    for data, colour, label in ((marginal, "#1f77b4", "marginal energy (E − mean E)"),
                                (transitions, "#ff7f0e", "energy transition (ΔE)")):
        x, d = density(data)
        left.plot(x, d, color=colour, lw=1.6, label=label)
        left.fill_between(x, d, color=colour, alpha=0.15, lw=0)
    left.set_ylim(bottom=0)
    left.set_xlabel("energy (centred)")
    left.set_ylabel("density")
    left.set_title("Marginal energy against energy transitions")
    left.legend(loc="upper right", fontsize=8)
    values_bfmi = bfmi(values)
    positions = np.arange(len(values_bfmi))
    colours = [FAILED_COLOUR if v < threshold else CHAIN_COLOURS[i % len(CHAIN_COLOURS)]
               for i, v in enumerate(values_bfmi)]
    right.bar(positions, values_bfmi, color=colours, width=0.6)
    for p, v in zip(positions, values_bfmi):
        right.text(p, v, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    right.axhline(threshold, color=FAILED_COLOUR, ls="--", lw=1)
    right.xaxis.set_major_locator(FixedLocator(positions))
    right.set_xticklabels([str(c) for c in chain_ids])
    right.set_xlim(-0.6, len(values_bfmi) - 0.4)
    right.set_ylim(0, max(1.2, 1.15 * float(values_bfmi.max())))
    right.set_xlabel("chain")
    right.set_ylabel("E-BFMI")
    right.set_title(f"E-BFMI per chain\n(dashed: {threshold:g})")
    return figure


@_styled
def khat(pareto_k: dict, order: list[str] | None = None, sizes: dict | None = None) -> plt.Figure:
    """PSIS-LOO Pareto k of each report (leave one report out), report names on the x axis, with the 0.7
    line above which the importance-sampling estimate is unreliable (0.5 dashed); values above 0.7 in red
    and printed."""
    names = [n for n in (order or list(pareto_k)) if n in pareto_k]
    names += [n for n in pareto_k if n not in names]
    values = np.array([float(pareto_k[n]) for n in names])
    figure, ax = plt.subplots(figsize=(WIDTH, 3.9), layout="constrained")
    positions = np.arange(len(names))
    bad = values > K_THRESHOLDS[1]
    ax.vlines(positions, 0, values, color=np.where(bad, FAILED_COLOUR, "#8a8a8a"), lw=1.2)
    ax.plot(positions[~bad], values[~bad], "o", color="#444444", ms=6)
    ax.plot(positions[bad], values[bad], "o", color=FAILED_COLOUR, ms=7)
    for p, v in zip(positions[bad], values[bad]):
        ax.annotate(f"{v:.2f}", (p, v), xytext=(0, 6), textcoords="offset points", ha="center",
                    color=FAILED_COLOUR, fontsize=8.5)
    ax.axhline(K_THRESHOLDS[1], color=FAILED_COLOUR, lw=1.1)
    ax.axhline(K_THRESHOLDS[0], color="#888888", lw=1, ls="--")
    ax.axhline(0, color="black", lw=0.5)
    labels = [f"{n} (n={sizes[n]})" if sizes and n in sizes else n for n in names]
    ax.set_xticks(positions, labels, rotation=40, ha="right", rotation_mode="anchor")
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylim(min(-0.05, values.min() - 0.05), max(1.0, values.max() + 0.15))
    ax.set_ylabel("Pareto k")
    ax.set_title("PSIS-LOO Pareto k per report (leave one report out)")
    _legend_below(figure, [
        Line2D([], [], color=FAILED_COLOUR, lw=1.1,
               label=f"k = {K_THRESHOLDS[1]}: above, the LOO estimate is unreliable"),
        Line2D([], [], color="#888888", lw=1, ls="--", label=f"k = {K_THRESHOLDS[0]}"),
    ], ncols=2)
    return figure


@_styled
def loo_pit(pit_values, prob: float = BAND_PROB) -> plt.Figure:
    """ECDF of randomised LOO-PIT values (one per report) minus the uniform CDF, with ArviZ's simultaneous
    `prob` band (`ecdf_pit`): under a calibrated model the randomised PIT of discrete counts is exactly
    Uniform(0, 1) and the curve stays inside the band everywhere with probability `prob`.

    With few reports (12 here) the band is wide: only gross misfit can leave it, and staying inside it
    says little. The mid-PIT of discrete counts is not uniform even under the true model and must not be
    passed here; pass randomised values, P(y_rep < y) + V·P(y_rep = y), V ~ Uniform(0, 1)."""
    pit = np.sort(np.asarray(pit_values, dtype=float).ravel())
    pit = pit[np.isfinite(pit)]
    from arviz_stats.ecdf_utils import ecdf_pit

    x, ecdf, lower, upper = ecdf_pit(pit, prob, n_simulations=BAND_SIMULATIONS, rng=np.random.default_rng(0))
    figure, ax = plt.subplots(figsize=(WIDTH * 0.8, 3.6), layout="constrained")
    ax.fill_between(x, lower - x, upper - x, step="post", color="#cccccc", alpha=0.6, lw=0,
                    label=f"simultaneous {prob:.0%} band")
    ax.step(x, ecdf - x, where="post", color="#1f77b4", lw=1.8, label="ECDF of the PIT values − uniform CDF")
    ax.plot(pit, np.full(pit.size, -0.02) + (lower - x).min(), "|", color="#1f77b4", ms=9, clip_on=False,
            label="PIT values")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlim(0, 1)
    span = max(float(np.max(upper - x)), float(np.max(x - lower)), float(np.max(np.abs(ecdf - x))))
    ax.set_ylim(-1.2 * span - 0.04, 1.2 * span)
    ax.set_xlabel("PIT value")
    ax.set_ylabel("ECDF − uniform")
    ax.set_title(f"LOO-PIT calibration: randomised PIT of {pit.size} reports' counts")
    _legend_below(figure, ax.get_legend_handles_labels()[0], ncols=3)
    return figure


def report_predictive_intervals(idata, order: list[str] | None = None) -> plt.Figure:
    """Each report's observed proportion against its posterior predictive 50% and 95% intervals, for the
    same report (same θ_i) and for a new report of the same size (fresh θ). With one patient the count is 0
    or 1, so every interval of a single-patient report spans 0 to 1 (and its 50% band too, or none)."""
    observed = idata["observed_data"]["y"].values
    n = idata["constant_data"]["n"].values
    names = [str(r) for r in idata["observed_data"]["report"].values]
    index = {name: i for i, name in enumerate(names)}
    shown = [name for name in (order or names) if name in index] + [nm for nm in names if order and nm not in order]
    rows = [index[name] for name in shown]
    figure, ax = plt.subplots(figsize=(WIDTH, 0.36 * len(names) + 1.8), layout="constrained")
    positions = np.arange(len(shown))[::-1]
    for offset, var, colour, label in ((0.16, "y", COLOURS["map"], "same report"),
                                       (-0.16, "y_new_reports", COLOURS["joint"], "new report of that size")):
        draws = idata["posterior_predictive"][var].transpose(..., "report").values.reshape(-1, len(names)) / n
        q = np.quantile(draws, [0.025, 0.25, 0.75, 0.975], axis=0)[:, rows]
        ax.hlines(positions + offset, q[0], q[3], color=colour, lw=1.2, label=f"{label}: 95%", clip_on=False)
        ax.hlines(positions + offset, q[1], q[2], color=colour, lw=5, alpha=0.55, label=f"{label}: 50%",
                  clip_on=False)
        single = q[1] == q[2]  # the middle half of the replications is one count: a square
        ax.plot(q[1][single], (positions + offset)[single], "s", color=colour, alpha=0.6, ms=7, clip_on=False)
    ax.plot((observed / n)[rows], positions, "k|", ms=14, mew=1.6, label="observed", clip_on=False, zorder=4)
    ax.set_yticks(positions, [f"{name} (n={n[index[name]]})" for name in shown])
    ax.tick_params(axis="y", length=0)
    ax.set_xlim(-0.03, 1.03)
    ax.set_xlabel("proportion responding (replicated count / n)")
    figure.suptitle("Posterior predictive intervals per report\nn = 1: a count is 0 or 1, so both intervals span "
                    "0 to 1; a square: the middle 50% is a single count", x=0.01, ha="left", fontsize=9.5)
    _legend_below(figure, ax.get_legend_handles_labels()[0], ncols=3)
    return figure


def _statistics():
    """(name, function, label) of each check statistic of `analysis.checks.STATISTICS`, whose entries are
    functions or (function, label) pairs."""
    for name, entry in STATISTICS.items():
        if callable(entry):
            yield name, entry, name.replace("_", " ")
        else:
            yield name, entry[0], (entry[1] if len(entry) > 1 else name.replace("_", " "))


def _bins(values: np.ndarray):
    """Unit bins for counts, bins between the distinct values for a few distinct values, else 30."""
    distinct = np.unique(values)
    if np.allclose(distinct, np.round(distinct)) and distinct.size and distinct[-1] - distinct[0] <= 200:
        return np.arange(distinct[0], distinct[-1] + 2) - 0.5
    if distinct.size <= 25:
        gaps = np.diff(distinct)
        half = (gaps.min() if gaps.size else 1.0) / 2
        return np.r_[distinct[0] - half, (distinct[:-1] + distinct[1:]) / 2, distinct[-1] + half]
    return 30


@_styled
def predictive_statistics(idata) -> plt.Figure:
    """Per check statistic: its distribution before the data (prior predictive, grey) and for new reports
    of the same sizes (posterior mixed predictive, purple), the observed value (red), and the informative
    tail probability of the posterior predictive (the side where the observation lies)."""
    observed = idata["observed_data"]["y"].values
    n = idata["constant_data"]["n"].values
    replications = (("prior predictive", idata["prior_predictive"]["y"], "#cfcfcf", True),
                    ("posterior predictive, new reports", idata["posterior_predictive"]["y_new_reports"],
                     COLOURS["joint"], False))
    statistics = list(_statistics())
    ncols = min(3, len(statistics))
    nrows = int(math.ceil(len(statistics) / ncols))
    figure, axes = plt.subplots(nrows, ncols, figsize=(WIDTH, 2.35 * nrows + 0.7), layout="constrained",
                                squeeze=False)
    spare = axes.ravel()[len(statistics):]
    for ax in spare:
        ax.set_axis_off()
    for ax, (_name, statistic, label) in zip(axes.ravel(), statistics):
        with np.errstate(invalid="ignore", divide="ignore"):
            t_obs = float(statistic(observed, n))
            replicated = [np.asarray(statistic(r.transpose(..., "report").values.reshape(-1, observed.size), n),
                                     dtype=float).ravel() for _, r, _, _ in replications]
        replicated = [v[np.isfinite(v)] for v in replicated]
        pooled = np.concatenate(replicated)
        bins = _bins(pooled) if pooled.size else 10
        for (_, _, colour, filled), values in zip(replications, replicated):
            if not values.size:
                continue
            if isinstance(bins, np.ndarray):
                ax.hist(values, bins=bins, density=True, color=colour, histtype="stepfilled" if filled else "step",
                        lw=1.6, alpha=0.9 if filled else 1.0)
            else:  # a continuous statistic (many distinct values): a density, shown over the values' range
                x, d = density(values, bandwidth=0.06 * np.ptp(pooled))
                ax.set_xlim(float(pooled.min()), float(pooled.max()))
                if filled:
                    ax.fill_between(x, d, color=colour, lw=0, alpha=0.9)
                else:
                    ax.plot(x, d, color=colour, lw=1.6)
        note = ""
        if np.isfinite(t_obs):
            ax.axvline(t_obs, color=COLOURS["posterior"], lw=2)
            values = replicated[-1]
            if values.size:
                upper = np.mean(values >= t_obs) <= np.mean(values <= t_obs)
                p = np.mean(values >= t_obs) if upper else np.mean(values <= t_obs)
                note = f"P(T {'≥' if upper else '≤'} observed) = {p:.2f}"
        else:
            note = "not defined for the data"
        ax.set_title(_wrap(label, 34), fontsize=8.5)
        ax.set_xlabel(note, fontsize=8, color=COLOURS["joint"])
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        if isinstance(bins, np.ndarray) and np.allclose(bins + 0.5, np.round(bins + 0.5)):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
        ax.set_ylim(0, ax.get_ylim()[1] * 1.12)
    handles = [Patch(color="#cfcfcf", label="prior predictive"),
               Line2D([], [], color=COLOURS["joint"], lw=1.6,
                      label="posterior predictive,\nnew reports of the same sizes"),
               Line2D([], [], color=COLOURS["posterior"], lw=2, label="observed value")]
    if len(spare):
        spare[0].legend(handles=handles, loc="center",
                        title="purple P: posterior predictive tail\non the side of the observed value",
                        title_fontsize=8)
    else:
        _legend_below(figure, handles, ncols=3)
    figure.suptitle("Predictive checks: statistics of replicated data sets of the same report sizes", x=0.01,
                    ha="left")
    return figure


@dataclass(frozen=True)
class Job:
    """One figure to draw: `draw(*args)` returns it, `name` is its file name (PNG and SVG)."""

    name: str
    draw: Callable
    args: tuple


def primary_jobs(result, summary: dict, parameters: tuple[str, ...], pit_values) -> list[Job]:
    """Every figure of the primary analysis. `pit_values`: the randomised LOO-PIT values (one per report,
    `analysis.checks.randomised_loo_pit`); the Pareto k come from the summary (PSIS-LOO is computed once,
    by the analysis)."""
    idata, names = result.idata, list(parameters)
    order = _report_order(summary["reports"]) if summary.get("reports") else None
    sizes = {name: int(r["n"]) for name, r in summary.get("reports", {}).items()}
    jobs = [
        Job("forest", forest, (summary,)),
        Job("prior_posterior", prior_posterior, (idata, names)),
        Job("trace", trace, (idata, names)),
        Job("rank", rank, (idata, names)),
        Job("energy", energy, (idata,)),
        Job("predictive_intervals", report_predictive_intervals, (idata, order)),
        Job("predictive_statistics", predictive_statistics, (idata,)),
        Job("khat", khat, (summary["loo"]["pareto_k"], order, sizes)),
    ]
    if len(pit_values) >= 2:  # one report: no distribution of PIT values to compare with the uniform
        jobs.append(Job("loo_pit", loo_pit, (np.asarray(pit_values),)))
    return jobs


def draw_primary(result, summary: dict, directory: Path, parameters: tuple[str, ...], pit_values) -> list[str]:
    """Draw `primary_jobs` here, one after another; returns the names written."""
    jobs = primary_jobs(result, summary, parameters, pit_values)
    for job in jobs:
        draw_job(job, directory)
    return [job.name for job in jobs]


def draw_job(job: Job, directory: Path) -> str:
    save(job.draw(*job.args), directory, job.name)
    return job.name


_WORKER = None


def start_worker():
    """A second process that draws half of a report's figures while this one draws the other half
    (matplotlib holds the interpreter, so threads would not overlap). Started early, so that its imports
    overlap the sampling; kept for the life of the process."""
    global _WORKER
    if _WORKER is None:
        _WORKER = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        _WORKER.submit(_ready)
    return _WORKER


def _ready() -> bool:
    return True


def draw_jobs(jobs: list[Job], directory: Path) -> list[str]:
    """Draw `jobs` into `directory`, every other one (by expected cost) in the worker process. The files
    do not depend on which process drew them."""
    ordered = sorted(jobs, key=lambda job: -COST.get(job.name, 1.0))
    remote = [start_worker().submit(draw_job, job, directory) for job in ordered[1::2]]
    for job in ordered[::2]:
        draw_job(job, directory)
    for future in remote:
        future.result()
    return [job.name for job in jobs]


COST = {"risk_of_bias": 3.0, "sensitivity_forest": 2.0, "trace": 1.6, "forest": 1.6, "prior_posterior": 1.5,
        "tornado": 1.2, "rank": 1.2, "predictive_statistics": 1.2, "borrowing_update": 1.2, "map_prior_fit": 1.1}
"""Rough relative drawing times (measured), so that the two processes get similar shares."""


# --- the target arm (borrowing) ---------------------------------------------------------------------------


@_styled
def borrowing_update(result: BorrowingResult, distance: float) -> plt.Figure:
    """MAP prior, robust prior, the target's likelihood and the posterior: densities on a log scale (left;
    they pile up towards θ = 1) and CDFs (right), with the total-variation `distance` posterior − MAP prior
    (the summary's `posterior_map_distance`)."""
    y, n, w = result.target.y, result.target.n, result.weight
    figure, (left, right) = plt.subplots(1, 2, figsize=(WIDTH, 3.9), layout="constrained",
                                         gridspec_kw={"width_ratios": [1.25, 1]})
    theta_joint = result.joint.idata["posterior"]["theta_target"].values.ravel()
    curves = (
        (result.map_fit.mixture, COLOURS["map"], "--", 1.4, "MAP prior (from the naltrexone reports)"),
        (result.prior, COLOURS["prior"], "-", 1.8, f"robust prior (w = {w:g})"),
        (None, COLOURS["likelihood"], ":", 2.0, f"likelihood of {y} of {n} (scaled)"),
        (result.posterior, COLOURS["posterior"], "-", 2.2, "posterior (two-step)"),
    )
    peak = 0.0
    for mixture, colour, ls, lw, label in curves:
        pdf = stats.beta.pdf(GRID, y + 1, n - y + 1) if mixture is None else mixture.pdf(GRID)
        cdf = stats.beta.cdf(GRID, y + 1, n - y + 1) if mixture is None else mixture.cdf(GRID)
        left.plot(GRID, pdf, color=colour, ls=ls, lw=lw, label=label)
        right.plot(GRID, cdf, color=colour, ls=ls, lw=lw)
        peak = max(peak, float(np.max(pdf)))
    counts, edges = np.histogram(theta_joint, bins=50, range=(0, 1), density=True)
    left.stairs(counts, edges, color=COLOURS["joint"], lw=1.2, label="posterior (joint model draws)")
    peak = max(peak, float(counts.max()))
    ordered = np.sort(theta_joint)
    step = max(1, ordered.size // 1000)
    right.plot(ordered[::step], (np.arange(1, ordered.size + 1) / ordered.size)[::step], color=COLOURS["joint"], lw=1.2)
    left.set_yscale("log")
    left.set_ylim(0.02, peak * 2)
    decades = [v for v in (0.03, 0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000) if v <= peak * 2]
    left.yaxis.set_major_locator(FixedLocator(decades))
    left.yaxis.set_minor_locator(NullLocator())
    left.set_yticklabels([f"{v:g}" for v in decades])
    left.set_xlim(0, 1)
    left.set_xlabel(f"probability of response on {result.target.drug}")
    left.set_ylabel("density (log scale)")
    left.set_title("Densities")
    right.set_xlim(0, 1)
    right.set_ylim(0, 1.01)
    right.set_xlabel(f"probability of response on {result.target.drug}")
    right.set_ylabel("cumulative probability")
    right.set_title(f"CDFs: posterior against MAP prior\n(total-variation distance {distance:.3f})")
    figure.suptitle(f"{result.target.drug.capitalize()}: what was borrowed, what the {n} patients add",
                    x=0.01, ha="left")
    _legend_below(figure, left.get_legend_handles_labels()[0], ncols=3, fontsize=8)
    return figure


@_styled
def borrowing_sweep(summary: dict) -> plt.Figure:
    """How the conclusion depends on the borrowing: posterior mean and 95% interval against the weight
    of the vague (non-exchangeable) component, for both routes."""
    rows = summary["sweep"]
    weights = np.array([r["weight"] for r in rows])
    figure, ax = plt.subplots(figsize=(WIDTH, 3.9), layout="constrained")
    step = 0.012 * max(1.0, float(np.ptp(weights)) or 1.0)
    for offset, route, colour, label in ((-step, "two_step", COLOURS["posterior"], "two-step robust MAP"),
                                         (step, "joint", COLOURS["joint"], "joint EXNEX model")):
        mean = np.array([r[route]["mean"] for r in rows])
        lo = np.array([r[route]["ci95"][0] for r in rows])
        hi = np.array([r[route]["ci95"][1] for r in rows])
        ax.errorbar(weights + offset, mean, yerr=[mean - lo, hi - mean], fmt="o", color=colour, capsize=3,
                    label=label, clip_on=False)
    ax.axvline(summary["robust_weight"], color="#bbbbbb", ls="--", lw=1, label="configured weight")
    ax.set_xlabel("weight of the vague component w (0 = full borrowing, 1 = none)")
    ax.set_ylabel(f"response probability on {summary['target_drug']}")
    ax.set_ylim(0, 1.02)
    ax.set_title("Borrowing sweep: posterior mean and 95% interval")
    _legend_below(figure, ax.get_legend_handles_labels()[0], ncols=3)
    return figure


@_styled
def map_fit_check(result: BorrowingResult) -> plt.Figure:
    """The Beta-mixture approximation of the MAP prior against the MCMC draws it approximates."""
    draws = np.sort(result.map_draws)
    figure, (left, right) = plt.subplots(1, 2, figsize=(WIDTH, 3.5), layout="constrained")
    left.hist(draws, bins=80, range=(0, 1), density=True, color="#dddddd", label="MCMC draws of θ_new")
    left.plot(GRID, result.map_fit.mixture.pdf(GRID), color=COLOURS["map"], lw=1.8,
              label=f"mixture fit ({len(result.map_fit.mixture.weights)} components)")
    left.plot(GRID, result.elir_fit.mixture.pdf(GRID), color="#ff7f0e", lw=1.2, ls="--",
              label="fit with a, b ≥ 1 (for ELIR)")
    left.set_xlim(0, 1)
    left.set_ylim(0, np.quantile(result.map_fit.mixture.pdf(GRID), 0.99) * 1.3)
    left.set_xlabel("θ_new")
    left.set_ylabel("density")
    ecdf = np.arange(1, draws.size + 1) / draws.size
    right.plot(draws, ecdf - result.map_fit.mixture.cdf(draws), color=COLOURS["map"], lw=1,
               label=f"mixture (KS {result.map_fit.ks_distance:.3f})")
    right.plot(draws, ecdf - result.elir_fit.mixture.cdf(draws), color="#ff7f0e", lw=1, ls="--",
               label=f"a, b ≥ 1 (KS {result.elir_fit.ks_distance:.3f})")
    right.axhline(0, color="black", lw=0.5)
    right.set_xlabel("θ_new")
    right.set_ylabel("ECDF of draws − mixture CDF")
    right.legend(fontsize=8)
    figure.suptitle("MAP prior: Beta-mixture approximation against the MCMC draws", x=0.01, ha="left")
    _legend_below(figure, left.get_legend_handles_labels()[0], ncols=3, fontsize=8)
    return figure


def borrowing_jobs(result: BorrowingResult, block: dict) -> list[Job]:
    """The target arm's figures, with the numbers of its summary block."""
    return [Job("borrowing_update", borrowing_update, (result, block["posterior_map_distance"])),
            Job("borrowing_sweep", borrowing_sweep, (block,)),
            Job("map_prior_fit", map_fit_check, (result,))]


def draw_borrowing(result: BorrowingResult, block: dict, directory: Path) -> None:
    for job in borrowing_jobs(result, block):
        draw_job(job, directory)


# --- figures from plain inputs: small-study effects, cumulative analysis, the sensitivity sweep ---------------


FUNNEL_TICKS = (1, 2, 3, 5, 8, 14, 30)
_JITTER = 0.02  # log10 units between reports of the same counts


def _minus(text: str) -> str:
    """Typographic minus signs in a formatted number."""
    return text.replace("-", "−")


@_styled
def funnel(block: dict) -> plt.Figure:
    """Small-study effects: each report's observed proportion against its size (log scale), with its exact
    95% interval; the meta-regression's mean curve and 95% band; its predictions marked.

    block = {"reports": {id: {"n", "y", "raw_ci95"}}, "curve": {"n", "mean", "lo", "hi"} (lists),
             "predictions": [{"label", "n", "mean", "ci95"}], "log_n": {"mean", "ci95", "p_negative"[, "unit"]}}
    ("curve", "predictions" and "log_n" may be absent; predictions without a size are skipped.) Reports
    with the same counts are spread sideways and labelled once ("3/3 (5 reports)"); reports with a
    non-responder are named under their interval."""
    reports = block.get("reports", {})
    figure, ax = plt.subplots(figsize=(WIDTH, 4.8), layout="constrained")
    handles = []
    curve = block.get("curve")
    if curve and len(curve.get("n", [])):
        cn = np.asarray(curve["n"], dtype=float)
        ax.fill_between(cn, curve["lo"], curve["hi"], color=COLOURS["map"], alpha=0.15, lw=0)
        ax.plot(cn, curve["mean"], color=COLOURS["map"], lw=1.8)
        handles.append(Line2D([], [], color=COLOURS["map"], lw=1.8, label="fitted mean by report size"))
        handles.append(Patch(color=COLOURS["map"], alpha=0.25, label="95% band of the fitted mean"))
    groups: dict[tuple[int, int], list[str]] = {}
    for name, r in reports.items():
        groups.setdefault((int(r["n"]), int(r["y"])), []).append(name)
    largest = max((int(r["n"]) for r in reports.values()), default=1)
    spans: dict[int, float] = {}  # n -> left end of its reports (log10), for placing the predictions
    top_labels = 0
    for (n, y), members in sorted(groups.items()):
        k = len(members)
        shifts = (np.arange(k) - (k - 1) / 2) * _JITTER
        xs = n * 10 ** shifts
        spans[n] = min(spans.get(n, 0.0), float(shifts[0]))
        lows = [reports[m]["raw_ci95"][0] for m in sorted(members)]
        highs = [reports[m]["raw_ci95"][1] for m in sorted(members)]
        ax.vlines(xs, lows, highs, color="#8a8a8a", lw=1.1, zorder=2)
        ax.scatter(xs, np.full(k, y / n), s=16 + 110 * n / largest, color="#333333", edgecolor="white", lw=0.6,
                   zorder=3, clip_on=False)
        if y == n:
            label = f"{y}/{n}" + (f" ({k} reports)" if k > 1 else f" ({members[0]})")
            ax.annotate(label, (n, 1.0), xytext=(0, 7 + 11 * (top_labels % 2)), textcoords="offset points",
                        ha="center", va="bottom", fontsize=8)
            top_labels += 1
        else:  # under the lowest end of the group's intervals, clear of the curve and the predictions
            label = "\n".join(sorted(members)) + f"\n{y}/{n}"
            ax.annotate(label, (n, min(lows)), xytext=(0, -4), textcoords="offset points", ha="center", va="top",
                        fontsize=8, linespacing=1.1)
    handles.append(Line2D([], [], ls="", marker="o", color="#333333", ms=6,
                          label="observed proportion (size ∝ n), exact 95% CI"))
    markers = ("D", "s", "^", "v", "P")
    predictions = [p for p in block.get("predictions") or [] if _finite(p.get("n"))]
    for i, p in enumerate(predictions):
        n = float(p["n"])
        x = n * 10 ** (min(spans.get(int(round(n)), 0.0), 0.0) - 0.035)  # just left of that size's reports
        marker = markers[i % len(markers)]
        ax.errorbar([x], [p["mean"]], yerr=[[p["mean"] - p["ci95"][0]], [p["ci95"][1] - p["mean"]]], fmt=marker,
                    color=ALTERNATIVE_COLOUR, ms=6, capsize=3, lw=1.4, zorder=4)
        handles.append(Line2D([], [], color=ALTERNATIVE_COLOUR, marker=marker, lw=1.4,
                              label=f"{p['label']}: {_interval_text(p['mean'], p['ci95'])}"))
    top = max([largest, *(float(v) for v in (curve or {}).get("n", [])),
               *(float(p["n"]) for p in predictions)] or [30])
    ax.set_xscale("log")
    ax.set_xlim(0.8, max(32.0, top * 1.25))
    ticks = [t for t in FUNNEL_TICKS if t <= ax.get_xlim()[1]]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels([str(t) for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_ylim(0, 1.12)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_xlabel("patients in the report, n (log scale)")
    ax.set_ylabel("proportion responding")
    title = "Small-study effects: response against report size"
    slope = block.get("log_n")
    if slope:
        mean, lo, hi = (_minus(f"{float(v):.2f}") for v in (slope["mean"], *slope["ci95"]))
        unit = f" {slope['unit']}" if slope.get("unit") else " per unit of log n"
        title += (f"\nmeta-regression slope (logit scale) {mean} (95% {lo} to {hi}){unit}; "
                  f"P(slope < 0) = {slope['p_negative']:.3f}")
    figure.suptitle("\n".join(_wrap(line, 100) for line in title.split("\n")), x=0.01, ha="left", fontsize=9.5)
    _legend_below(figure, handles, ncols=2)
    return figure


@_styled
def cumulative(steps: list[dict], alternative: dict | None = None) -> plt.Figure:
    """Cumulative meta-analysis by publication year: pooled mean and 95% interval (thick) and the predictive
    interval of a new report (thin, lighter) after each year's reports, reports/patients so far under the
    axis; `alternative` = {"label", "steps"} (another ordering, e.g. a report moved to the year it was first
    seen) drawn beside it in its own colour, or None.

    steps = [{"year", "reports", "patients", "pooled": {"mean", "ci95"}, "predictive": {"mean", "ci95"},
              "added": [report ids]}, ...]"""
    orderings = [("as published", steps, COLOURS["map"])]
    if alternative and alternative.get("steps"):
        orderings.append((alternative.get("label", "alternative"), alternative["steps"], ALTERNATIVE_COLOUR))
    offset = 0.15 if len(orderings) > 1 else 0.0
    years = sorted({int(s["year"]) for _, ordered, _ in orderings for s in ordered})
    lowest = min(float(s["predictive"]["ci95"][0]) for _, ordered, _ in orderings for s in ordered)
    figure, ax = plt.subplots(figsize=(WIDTH, 4.4 + 0.25 * len(orderings)), layout="constrained")
    handles = []
    for row, (label, ordered, colour) in enumerate(orderings):
        shift = -offset if row == 0 else offset
        x = np.array([int(s["year"]) for s in ordered], dtype=float) + shift
        mean = np.array([s["pooled"]["mean"] for s in ordered])
        ax.vlines(x, [s["predictive"]["ci95"][0] for s in ordered], [s["predictive"]["ci95"][1] for s in ordered],
                  color=colour, alpha=0.35, lw=1.4)
        ax.vlines(x, [s["pooled"]["ci95"][0] for s in ordered], [s["pooled"]["ci95"][1] for s in ordered],
                  color=colour, lw=3.5)
        if len(ordered) > 1:
            ax.plot(x, mean, "-", color=colour, lw=0.9, alpha=0.6)
        ax.plot(x, mean, "o", color=colour, mec="white", ms=7, zorder=3)
        for xi, s in zip(x, ordered):
            ax.annotate(f"{s['pooled']['mean']:.2f}", (xi, s["pooled"]["mean"]), xytext=(-6 if row == 0 else 6, 0),
                        textcoords="offset points", ha="right" if row == 0 else "left", va="center", fontsize=7.5,
                        color=colour)
            ax.annotate(f"{s['reports']} / {s['patients']}", (xi - shift, 0), xycoords=("data", "axes fraction"),
                        xytext=(0, -17 - 11 * row), textcoords="offset points", ha="center", va="top",
                        fontsize=8, color=colour, annotation_clip=False)
        handles.append(Line2D([], [], color=colour, lw=3.5, marker="o", label=_wrap(label, 55)))
    ax.axhline(steps[-1]["pooled"]["mean"], color="#999999", ls=":", lw=1)
    handles += [Line2D([], [], color="#555555", lw=3.5, marker="o", label="pooled mean, 95% CrI"),
                Line2D([], [], color="#555555", lw=1.4, alpha=0.35, label="new report, 95% predictive interval")]
    ax.set_xticks(years, [str(y) for y in years])
    ax.set_xlim(years[0] - 0.6, years[-1] + 0.6)
    ax.set_ylim(max(0.0, math.floor(10 * lowest - 0.5) / 10), 1.02)
    ax.set_ylabel("response probability")
    ax.set_xlabel("publication year  (under each year: reports / patients so far)", labelpad=10 + 11 * len(orderings))
    ax.set_title("Cumulative meta-analysis: the estimate after each year's reports (dotted: the final pooled mean)")
    _legend_below(figure, handles, ncols=2)
    return figure


_LABEL_PREFIXES = (("sens_outcome_", "outcome: "), ("sens_prior_", "prior: "), ("sens_tau_", "τ prior: "),
                   ("sens_evidence_", "evidence: "), ("sens_publication_", "publication: "),
                   ("sens_metareg_", "meta-regression: "), ("sens_naloxone_", "naloxone: "),
                   ("sens_graded_", "graded: "), ("graded_", "graded: "), ("loo_", "without "), ("sens_", ""))


def variant_label(row: dict, grouped: bool = False) -> str:
    """A short label for a sensitivity variant: its "label" if given, else its name made readable
    ("sens_publication_all_w025" → "publication: all w=0.25", "loo_X" → "without X"); `grouped` (under a
    group header) drops the group word ("all w=0.25")."""
    if row.get("label"):
        return str(row["label"])
    name = str(row.get("variant", ""))
    for prefix, replacement in _LABEL_PREFIXES:
        if name.startswith(prefix):
            rest = name[len(prefix):]
            if prefix != "loo_":
                rest = rest.replace("_", " ")
                rest = re.sub(r"\bw(\d)(\d*)\b", lambda m: f"w={m.group(1)}" + (f".{m.group(2)}" if m.group(2) else ""),
                              rest)
                rest = re.sub(r"\bu(\d)(\d*)\b",
                              lambda m: f"u~HN({m.group(1)}" + (f".{m.group(2)}" if m.group(2) else "") + ")", rest)
                rest = re.sub(r"\b(hn|hc)(\d)(\d*)\b", lambda m: f"{m.group(1).upper()}({m.group(2)}"
                              + (f".{m.group(3)}" if m.group(3) else "") + ")", rest)
                if grouped and replacement:
                    return ("τ " if prefix == "sens_tau_" else "") + rest
            return replacement + rest
    return name.replace("_", " ")


def _status(row: dict) -> str:
    status = row.get("status")
    if status:
        return str(status)
    passed = row.get("passed")
    return "passed" if passed is None or bool(passed) else "failed"


def _group_colours(groups) -> dict[str, str]:
    colours, spare = {}, iter(_SPARE_COLOURS * 4)
    for group in groups:
        colours[group] = GROUP_COLOURS.get(group) or next(spare)
    return colours


def tornado_rows(rows: list[dict], reference: float, limit: int = 25) -> tuple[list[dict], list[dict], list[dict]]:
    """(shown, usable, left_out) for `tornado`: usable = passed variants other than the primary with a
    finite `pooled_shift` (the sweep leaves it empty for rows of another outcome, which are comparisons,
    not perturbations), each with "shift" and "label" added; shown = the `limit` largest by absolute
    shift, largest first; left_out = failed and not-run variants."""
    usable, left_out = [], []
    for row in rows:
        if str(row.get("variant")) == "primary":
            continue
        if _status(row) != "passed":
            left_out.append(row)
            continue
        shift = row.get("pooled_shift")
        if not _finite(shift):
            continue
        usable.append({**row, "shift": float(shift), "label": variant_label(row)})
    usable.sort(key=lambda r: (-abs(r["shift"]), r["label"]))
    return usable[:limit], usable, left_out


@_styled
def tornado(rows: list[dict], reference: float, limit: int = 25) -> plt.Figure:
    """Shift of the pooled mean from the primary analysis for each sensitivity variant, as horizontal bars
    sorted by absolute shift (largest on top, at most `limit`), coloured by group; failed and not-run
    variants are listed under the bars in red, without a bar.

    rows: dicts with "variant", "description", "group", "pooled_mean", "pooled_lo", "pooled_hi",
    "pooled_shift", "status" ("passed" / "failed" / "not run"); reference: the primary pooled mean."""
    shown, usable, left_out = tornado_rows(rows, reference, limit)
    listed = left_out[:8]
    colours = _group_colours(dict.fromkeys(r.get("group", "other") for r in shown))
    lines = len(shown) + (len(listed) + (len(left_out) > len(listed)) + 0.5 if left_out else 0)
    figure, ax = plt.subplots(figsize=(WIDTH, 0.27 * max(lines, 3) + 2.1), layout="constrained")
    positions = np.arange(len(shown))[::-1] + (lines - len(shown))
    shifts = np.array([r["shift"] for r in shown]) if shown else np.zeros(0)
    ax.barh(positions, shifts, color=[colours[r.get("group", "other")] for r in shown], height=0.7)
    low = min(float(shifts.min()) if shifts.size else 0.0, 0.0)
    high = max(float(shifts.max()) if shifts.size else 0.0, 0.0)
    span = max(high - low, 0.02)
    for p, r in zip(positions, shown):
        text = _minus(f"{r['shift']:+.3f}")
        if _finite(r.get("pooled_mean")):
            text += f" → {float(r['pooled_mean']):.2f}"
        ax.annotate(text, (r["shift"], p), xytext=(4 if r["shift"] >= 0 else -4, 0), textcoords="offset points",
                    ha="left" if r["shift"] >= 0 else "right", va="center", fontsize=7.5)
    labels, label_colours, ticks = [r["label"] for r in shown], ["#222222"] * len(shown), list(positions)
    if left_out:
        ax.axhline(lines - len(shown) - 0.5, color="#cccccc", lw=0.8)
        extra = [f"{variant_label(r)} ({_status(r)})" for r in listed]
        if len(left_out) > len(listed):
            extra.append(f"and {len(left_out) - len(listed)} more failed or not run")
        for i, text in enumerate(extra):
            y = len(extra) - 1 - i
            ticks.append(y)
            labels.append(text)
            label_colours.append(FAILED_COLOUR)
        ax.text(0, len(extra) - 0.4, "  no estimate shown (failed or not run)", color=FAILED_COLOUR, fontsize=7.5,
                va="top", ha="left" if abs(low) > high else "right")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlim(low - 0.5 * span, high + 0.5 * span)
    ax.set_yticks(ticks, labels)
    for tick, colour in zip(ax.get_yticklabels(), label_colours):
        tick.set_color(colour)
    ax.tick_params(axis="y", length=0, labelsize=8)
    ax.set_ylim(-0.7, max(lines, 1) - 0.3)
    ax.set_xlabel(f"shift of the pooled mean from the primary analysis ({reference:.3f})")
    which = (f"the {len(shown)} largest of {len(usable)} variants" if len(usable) > len(shown)
             else f"all {len(usable)} variants")
    figure.suptitle(f"Sensitivity of the pooled mean: {which}, by absolute shift\n"
                    "bar label: shift → the variant's pooled mean", x=0.01, ha="left", fontsize=9.5)
    handles = [Patch(color=c, label=g) for g, c in colours.items()]
    _legend_below(figure, handles, ncols=min(4, max(1, len(handles))), fontsize=8)
    return figure


SENSITIVITY_COLUMNS = (("pooled", "pooled mean"), ("predictive", "new report (predictive)"),
                       ("naloxone", "naloxone"))


@_styled
def sensitivity_forest(rows) -> plt.Figure:
    """Every variant's pooled and predictive estimates (mean and 95% interval), and the naloxone arm's where
    the variant has one, against the primary analysis (band and line); variants grouped under group
    headers, failed variants in red, not-run variants listed with no estimate.

    rows: dicts (or a DataFrame) with "variant", "group", "status" (or "passed"), "<key>_mean", "<key>_lo",
    "<key>_hi" for key in pooled, predictive and naloxone (naloxone may be absent or NaN)."""
    if hasattr(rows, "to_dict"):
        rows = rows.to_dict(orient="records")
    rows = list(rows)
    primary = next((r for r in rows if str(r.get("variant")) == "primary"), None)
    keys = [(k, title) for k, title in SENSITIVITY_COLUMNS if any(_finite(r.get(f"{k}_mean")) for r in rows)]
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(str(r.get("group") or "other"), []).append(r)
    if "primary" in groups:
        groups = {"primary": groups.pop("primary"), **groups}
    lines: list[tuple[str, dict | None]] = []
    for group, members in groups.items():
        if group != "primary" or len(members) > 1:
            lines.append((group, None))
        lines.extend((group, r) for r in members)
    total = len(lines)
    figure, axes = plt.subplots(1, len(keys), figsize=(WIDTH, 0.2 * total + 1.9), layout="constrained",
                                squeeze=False)
    axes = axes[0]
    positions = np.arange(total)[::-1]
    labels, label_colours, label_weights = [], [], []
    segments = {k: {"y": [], "lo": [], "hi": [], "mean": [], "colour": [], "width": [], "size": []} for k, _ in keys}
    headers = []
    for pos, (group, r) in zip(positions, lines):
        if r is None:
            labels.append(group.upper() if group else "")
            label_colours.append("#333333")
            label_weights.append("bold")
            headers.append(pos)
            continue
        status = _status(r)
        failed = status != "passed"
        labels.append(variant_label(r, grouped=group != "primary") + (f" ({status.upper()})" if failed else ""))
        label_colours.append(FAILED_COLOUR if failed else "#222222")
        label_weights.append("normal")
        is_primary = str(r.get("variant")) == "primary"
        for key, _ in keys:
            mean, lo, hi = (r.get(f"{key}_{part}") for part in ("mean", "lo", "hi"))
            if not (_finite(mean) and _finite(lo) and _finite(hi)):
                continue
            bucket = segments[key]
            bucket["y"].append(pos)
            bucket["lo"].append(float(lo))
            bucket["hi"].append(float(hi))
            bucket["mean"].append(float(mean))
            bucket["colour"].append(FAILED_COLOUR if failed else (COLOURS["map"] if is_primary else "#333333"))
            bucket["width"].append(2.2 if is_primary else 1.3)
            bucket["size"].append(26 if is_primary else 12)
    for index, (ax, (key, title)) in enumerate(zip(axes, keys)):
        for pos in headers:
            ax.axhspan(pos - 0.5, pos + 0.5, color="#eeeeee", lw=0, zorder=0)
        if primary is not None and _finite(primary.get(f"{key}_mean")):
            ax.axvspan(primary[f"{key}_lo"], primary[f"{key}_hi"], color="#dce6f2", lw=0, zorder=0)
            ax.axvline(primary[f"{key}_mean"], color=COLOURS["map"], lw=1)
        bucket = segments[key]
        ax.hlines(bucket["y"], bucket["lo"], bucket["hi"], colors=bucket["colour"], lw=bucket["width"])
        ax.scatter(bucket["mean"], bucket["y"], c=bucket["colour"], s=bucket["size"], zorder=3, clip_on=False, lw=0)
        ax.set_xlim(-0.02, 1.03)
        ax.set_xticks(np.linspace(0, 1, 3 if len(keys) > 2 else 6))
        ax.set_ylim(-0.6, total - 0.4)
        ax.set_title(title, loc="center")
        ax.set_xlabel("probability")
        if index == 0:
            ax.set_yticks(positions, labels)
            ax.tick_params(axis="y", length=0)
            for tick, colour, weight in zip(ax.get_yticklabels(), label_colours, label_weights):
                tick.set_color(colour)
                tick.set_fontweight(weight)
                tick.set_fontsize(7.5)
        else:
            ax.set_yticks([])
            ax.spines["left"].set_visible(False)
    figure.suptitle("Sensitivity analyses: mean and 95% interval of each variant\nblue band and line: the primary "
                    "analysis; red: failed convergence checks", x=0.01, ha="left", fontsize=9.5)
    _legend_below(figure, [Patch(color="#dce6f2", label="primary analysis, 95% interval"),
                           Line2D([], [], color="#333333", marker="o", ms=4, label="variant"),
                           Line2D([], [], color=FAILED_COLOUR, marker="o", ms=4, label="failed variant")],
                  ncols=3, fontsize=8)
    return figure


GRADED_OUTCOMES = (("any", "any response"), ("marked", "marked response"), ("complete", "complete clearance"),
                   ("sustained", "sustained response"))


@_styled
def graded(block: dict) -> plt.Figure:
    """The graded-outcome model (`summary.json` key `graded`): per outcome the pooled probability (95%
    interval), a new report's predictive interval, and each grading report's observed proportion (size by
    its n) against the crude rate of the reports that graded it."""
    figure, ax = plt.subplots(figsize=(WIDTH, 3.6), layout="constrained")
    for row, (key, _label) in enumerate(GRADED_OUTCOMES[::-1]):
        outcome = block[key]
        observed = [(r[key]["observed"], r[key]["n"]) for r in block["reports"].values() if r[key]["observed"] is not None]
        if observed:
            proportions = np.array([y / n for y, n in observed])
            sizes = np.array([n for _, n in observed])
            jitter = np.linspace(-0.18, 0.18, len(observed)) if len(observed) > 1 else np.zeros(1)
            ax.scatter(proportions, row + 0.22 + jitter * 0.3, s=12 + 6 * sizes, facecolors="none",
                       edgecolors="#888888", lw=0.8, clip_on=False, zorder=2)
            crude = outcome["responders"] / max(outcome["patients"], 1)
            ax.plot(crude, row + 0.22, "|", color=CRUDE_COLOUR, ms=14, mew=2, zorder=3)
        ax.plot(outcome["predictive"]["ci95"], [row - 0.12] * 2, color=COLOURS["joint"], lw=1.2, alpha=0.7)
        ax.plot(outcome["pooled"]["ci95"], [row - 0.12] * 2, color=COLOURS["posterior"], lw=4, solid_capstyle="butt")
        ax.plot(outcome["pooled"]["mean"], row - 0.12, "D", color=COLOURS["posterior"], ms=6, zorder=4)
        ax.text(1.05, row, f"{outcome['pooled']['mean']:.2f} ({outcome['pooled']['ci95'][0]:.2f}–"
                f"{outcome['pooled']['ci95'][1]:.2f})\n{outcome['reports']} reports graded it",
                va="center", fontsize=7.5, transform=ax.get_yaxis_transform())
    ax.set_yticks(range(len(GRADED_OUTCOMES)), [label for _, label in GRADED_OUTCOMES[::-1]])
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.6, len(GRADED_OUTCOMES) - 0.4)
    ax.set_xlabel("probability (pooled over reports) / observed proportion")
    handles = [Line2D([], [], color=COLOURS["posterior"], lw=4, marker="D", label="pooled, 95% interval"),
               Line2D([], [], color=COLOURS["joint"], lw=1.2, label="new report, 95% predictive interval"),
               Line2D([], [], ls="", marker="o", mfc="none", mec="#888888", label="report that graded it (size: n)"),
               Line2D([], [], ls="", marker="|", color=CRUDE_COLOUR, ms=10, mew=2, label="crude rate of those reports")]
    _legend_below(figure, handles, ncols=2)
    ax.set_title("Graded outcomes from one sequential model: complete ≤ marked ≤ any in every draw")
    return figure
