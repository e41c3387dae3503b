"""The run's MCMC and LOO diagnostics as the standard ArviZ plots (arviz-plots 1.x), in the report's look
(the package's `style.STYLE` over ArviZ's "arviz-variat" sheet).

Each ``plot_*`` function takes results (a DataTree, Dataset, ``ELPDData`` or an array), the display labels
of the parameters and the thresholds to draw, draws one figure with an arviz-plots function and returns
the matplotlib Figure (``pc.viz["figure"].item()``) without saving it: hand it to
``analysis.report.figures.save``. The only changes made to ArviZ's figures are presentation: display
labels (``MapLabeller``), the report's width and font sizes, y axes kept, threshold lines, integer chain
ticks, readable report names and, where a parameter has a known bound, a kernel density that is reflected
at that bound instead of at the smallest or largest draw (ArviZ's default, which ends a density piled
against 1 with a cliff at its largest draw).

Numbers the captions quote: `THRESHOLDS` (what is drawn) and `rank_test` (the p-value of the multi-chain
rank test that `plot_rank` prints in each panel), so that a caption can say "no chain departs from the
others" from a number, not from the drawing.

This module imports only numpy, xarray, matplotlib, the ArviZ 1.x packages and this package's `style`, never
the sampler stack (pymc, pytensor, blackjax) nor another ``analysis`` module; a test checks it in a fresh
interpreter. (jax is loaded by ``arviz_base`` itself in an environment where it is installed, so it cannot
be kept out.)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import arviz_plots as azp  # noqa: E402
import arviz_stats  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from arviz_base.labels import MapLabeller  # noqa: E402
from arviz_stats.ecdf_utils import ecdf_pit  # noqa: E402
from arviz_stats.psense import power_scale_dataset  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .style import FAILED_COLOUR, STYLE, WIDTH, styled  # noqa: E402

__all__ = [
    "THRESHOLDS", "WIDTH", "STYLE", "bounded_kde", "plot_ecdf_pit_sbc", "plot_energy", "plot_khat",
    "plot_loo_pit", "plot_prior_posterior", "plot_psense_dist", "plot_rank", "plot_trace", "rank_test",
]

THRESHOLDS = {
    "pareto_k_good": 0.5,  # Pareto k: dashed line; below it PSIS-LOO is reliable for any number of draws
    "pareto_k_bad": 0.7,  # Pareto k: above it the PSIS-LOO estimate of that report is unreliable
    "e_bfmi": 0.3,  # E-BFMI per chain: below it the sampler explores the energy levels poorly
    "band_prob": 0.95,  # LOO-PIT: probability of ArviZ's simultaneous band (Säilynoja et al. 2022)
    "test_alpha": 0.01,  # rank (mtc_c) and SBC PIT (pot_c) tests: points flagged and p compared at this α
}

STYLE_SHEET = "arviz-variat"  # ArviZ's own style (colour-blind-safe cycle, no top/right spines) ...
KHAT_MAX_NAMES = 25  # more reports than this: every k-th name only, else they crowd at 7.5 inches
_ROTATED = {"rotation": 45, "horizontalalignment": "right", "rotation_mode": "anchor"}
_SAMPLE_DIMS = ("chain", "draw")


_styled = styled(sheet=STYLE_SHEET)
"""Draw inside ArviZ's `arviz-variat` style plus the house `STYLE`, without touching the global rcParams."""


def _figure(pc) -> plt.Figure:
    return pc.viz["figure"].item()


def _labeller(labels: Mapping[str, str] | None = None, coords: Mapping[str, Mapping] | None = None) -> MapLabeller:
    return MapLabeller(var_name_map=dict(labels or {}), coord_map={d: dict(m) for d, m in (coords or {}).items()})


def _dataset(data, group: str | None = None) -> xr.Dataset:
    """A group of a DataTree (or the Dataset itself) as a Dataset."""
    if isinstance(data, xr.DataTree):
        node = data[group] if group else data
        return node.to_dataset()
    if isinstance(data, xr.Dataset):
        return data
    raise TypeError(f"expected a DataTree or a Dataset, got {type(data).__name__}")


def _panels(dataset: xr.Dataset, var_names: Sequence[str], sample_dims=_SAMPLE_DIMS) -> int:
    """Number of scalar elements (one panel or row each) of the named variables."""
    return sum(int(np.prod([dataset[v].sizes[d] for d in dataset[v].dims if d not in sample_dims]))
               for v in var_names)


def _targets(pc, var_name: str | None = None) -> xr.DataArray:
    """The axes of a PlotCollection (of `var_name`, else of its only or first variable) as a DataArray."""
    plots = pc.viz["plot"]
    if isinstance(plots, xr.DataArray):  # a collection without a variable facet keeps its axes at the root
        return plots
    plots = plots.to_dataset()
    return plots[var_name if var_name is not None else next(iter(plots.data_vars))]


def _target(pc, var_name: str | None = None, **sel) -> plt.Axes:
    return _targets(pc, var_name).sel(sel).item()


def _chain_legend(pc, n_chains: int) -> None:
    pc.add_legend("chain", loc="outside lower center", ncols=min(n_chains, 8), title="chain")


def _legend_below(pc, dim: str, **kwargs) -> None:
    """Move the legend ArviZ drew for `dim` below the panels. (Some plots, e.g. plot_prior_posterior and
    plot_psense_dist 1.3.2, read ``visuals["legend"]`` but their argument check refuses the key.)"""
    pc.viz["legend"][dim].item().remove()
    pc.add_legend(dim, loc="outside lower center", **kwargs)


_P_TEXT = re.compile(r"^p=(\S+?)\(α=(\S+?)\)\s*$")


def _tidy_p_values(pc) -> None:
    """ArviZ prints "p=0.37(α=0.01) " at x = 0, on the y axis line (and keeps no handle on the text for
    matplotlib): spaced out and moved off the axis."""
    for ax in _figure(pc).axes:
        for text in ax.texts:
            match = _P_TEXT.match(text.get_text())
            if match:
                text.set_text(f"p = {match[1]} (α = {match[2]})")
                text.set_x(0.03)


def bounded_kde(data: xr.Dataset, dims: Sequence[str],
                bounds: Mapping[str, tuple[float, float]] | None = None) -> xr.Dataset:
    """ArviZ's KDE (``arviz_stats.kde``) of every variable of `data` over `dims`, as arviz-plots accepts
    it precomputed (``stats={"dist": ...}``), with each variable's known `bounds` as the limits of its grid.

    ArviZ reflects its kernel at the grid limits, which by default are the smallest and largest draw; a
    known bound makes it reflect there instead (μ in (0, 1): at 1, not at the largest draw), so a density
    piled against the bound is neither cut off by a cliff at the last draw nor pulled down at the bound.
    An infinite side keeps ArviZ's default (the extreme draw, where the density is ~0)."""
    out = {}
    for name, da in data.data_vars.items():
        lower, upper = (bounds or {}).get(name, (-np.inf, np.inf))
        kwargs = {}
        if np.isfinite(lower) or np.isfinite(upper):
            kwargs["custom_lims"] = (float(lower) if np.isfinite(lower) else None,
                                     float(upper) if np.isfinite(upper) else None)
        density = arviz_stats.kde(da, dim=list(dims), **kwargs)
        density.attrs["kind"] = "kde"
        out[name] = density
    return xr.Dataset(out)


# --- MCMC diagnostics -----------------------------------------------------------------------------------


@_styled
def plot_trace(idata, var_names: Sequence[str], labels: Mapping[str, str],
               bounds: Mapping[str, tuple[float, float]] | None = None) -> plt.Figure:
    """``plot_trace_dist``: per parameter (row), each chain's density (left) and its draws in order (right),
    coloured by chain, with ArviZ's divergence marks (red ticks at the foot of both panels) and the
    display `labels` on the axes. `bounds` (name → (lower, upper)) reflect the densities at known bounds."""
    var_names = list(var_names)
    posterior = _dataset(idata, "posterior")[var_names]
    rows = _panels(posterior, var_names)
    stats = {"dist": bounded_kde(posterior, ["draw"], bounds)} if bounds else None
    pc = azp.plot_trace_dist(
        idata, var_names=var_names, compact=False, labeller=_labeller(labels), kind="kde", stats=stats,
        visuals={"remove_axis": False, "trace": {"width": 0.5, "alpha": 0.75}, "dist": {"width": 1.2},
                 "divergence": {"color": FAILED_COLOUR}},
        figure_kwargs={"figsize": (WIDTH, 1.75 * rows + 0.9), "figsize_units": "inches", "width_ratios": [1, 2]},
    )
    _chain_legend(pc, posterior.sizes["chain"])
    figure = _figure(pc)
    first = var_names[0]
    if posterior[first].ndim > 2:  # the first row is the first element of a vector parameter
        first_element = {d: posterior[first][d].values[0] for d in posterior[first].dims if d not in _SAMPLE_DIMS}
        targets = _targets(pc, first).sel(first_element)
    else:
        targets = _targets(pc, first)
    _zoom_densities(pc, posterior, bounds, column="dist")
    targets.sel(column="dist").item().set_title("density by chain")
    targets.sel(column="trace").item().set_title("draws by chain" + _divergence_note(idata))
    return figure


def _zoom_densities(pc, posterior: xr.Dataset, bounds, **sel) -> None:
    """x limits of the density panels (`sel`, e.g. column="dist"): the draws' range (99.9%) padded by 8%,
    or the bound when that reaches it, so that a density reflected at a bound (its grid spans the whole
    bounded range) is seen up to the bound, without empty space."""
    for name, da in posterior.data_vars.items():
        lower, upper = (bounds or {}).get(name, (-np.inf, np.inf))
        targets = _targets(pc, name)
        extra = [d for d in da.dims if d not in _SAMPLE_DIMS]
        stacked = da.stack(__element__=extra) if extra else da.expand_dims(__element__=[0])
        for i in range(stacked.sizes["__element__"]):
            values = np.asarray(stacked.isel(__element__=i).values, dtype=float).ravel()
            low, high = np.nanquantile(values, [0.0005, 0.9995])
            pad = 0.08 * (high - low) if high > low else 0.5
            low = lower if np.isfinite(lower) and low - pad <= lower else low - pad
            high = upper if np.isfinite(upper) and high + pad >= upper else high + pad
            selection = dict(sel)
            if extra:
                selection.update(dict(zip(extra, np.atleast_1d(stacked["__element__"].values[i]))))
            for ax in np.asarray(targets.sel(selection).values).ravel():
                ax.set_xlim(low, high)


def _divergence_note(idata) -> str:
    try:
        diverging = idata["sample_stats"]["diverging"]
    except KeyError:
        return ""
    count = int(np.asarray(diverging.values).sum())
    return f" ({count} divergent: red ticks)" if count else " (no divergent transitions)"


def rank_test(idata, var_names: Sequence[str]) -> dict[str, float]:
    """p-value of ArviZ's multi-chain rank uniformity test (``mtc_c``, the test `plot_rank` draws and prints
    in each panel) per parameter element: small when some chain's draws rank differently from the others'.
    Computed exactly as ``plot_rank`` does (relative ranks over all chains, then
    ``mchain_uniformity_test``); keys are "name" or "name[coordinate]"."""
    posterior = _dataset(idata, "posterior")[list(var_names)]
    ranks = posterior.azstats.compute_ranks(dim=list(_SAMPLE_DIMS), relative=True)
    p_values, _, _ = ranks.azstats.mchain_uniformity_test(dim=list(_SAMPLE_DIMS))
    out = {}
    for name in var_names:
        da = p_values[name]
        if da.ndim == 0:
            out[name] = float(da)
            continue
        stacked = da.stack(__element__=list(da.dims))
        for i, coordinate in enumerate(stacked["__element__"].values):
            label = ", ".join(str(c) for c in np.atleast_1d(coordinate))
            out[f"{name}[{label}]"] = float(stacked.values[i])
    return out


@_styled
def plot_rank(idata, var_names: Sequence[str], labels: Mapping[str, str],
              alpha: float = THRESHOLDS["test_alpha"], col_wrap: int = 3) -> plt.Figure:
    """``plot_rank`` with its default multi-chain test (``method="mtc_c"``, Tesso et al. 2026): per
    parameter, each chain's ECDF of its draws' fractional ranks among all chains minus the uniform CDF; the
    panel prints the test's p-value and marks the draws that drive a departure when p < `alpha`. Unlike
    the old simultaneous band it accounts for autocorrelation, so the draws are not thinned. The p-values
    are `rank_test`'s."""
    var_names = list(var_names)
    posterior = _dataset(idata, "posterior")[var_names]
    panels = _panels(posterior, var_names)
    ncols = min(col_wrap, panels)
    nrows = math.ceil(panels / ncols)
    pc = azp.plot_rank(
        idata, var_names=var_names, labeller=_labeller(labels), envelope_prob=1 - alpha, col_wrap=ncols,
        visuals={"remove_axis": False, "xlabel": {"text": "fractional rank"},
                 "ecdf_lines": {"width": 1.2}},
        figure_kwargs={"figsize": (WIDTH, 2.6 * nrows + 0.8), "figsize_units": "inches"},
    )
    _chain_legend(pc, posterior.sizes["chain"])
    _tidy_p_values(pc)
    figure = _figure(pc)
    axes = [ax for ax in figure.axes if ax.get_visible() and ax.axison]
    for ax in axes:
        ax.axhline(0, color="0.3", lw=0.6, zorder=0)
        ax.tick_params(labelleft=True, labelbottom=True)  # ArviZ shares x and hides the inner labels
    for ax in axes[::ncols]:
        ax.set_ylabel("ECDF − uniform CDF")
    return figure


@_styled
def plot_energy(idata, threshold: float = THRESHOLDS["e_bfmi"]) -> plt.Figure:
    """``plot_energy``: E-BFMI per chain with the `threshold` line (left; chains on the y axis, integer
    ticks) and the marginal energy against the energy transitions (right). A transition density much
    narrower than the marginal one, or an E-BFMI below the line, means poor exploration."""
    pc = azp.plot_energy(
        idata, threshold=threshold, kind="kde",
        visuals={"remove_axis": False, "legend": {"loc": "outside lower center", "ncols": 2},
                 "ylabel": {"text": "chain"}},
        figure_kwargs={"figsize": (WIDTH, 3.0), "figsize_units": "inches", "width_ratios": [1, 2.2]},
    )
    figure = _figure(pc)
    bfmi_ax, energy_ax = _target(pc, column="bfmi"), _target(pc, column="energy")
    bfmi_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    n_chains = int(idata["sample_stats"].sizes["chain"])
    bfmi_ax.set_ylim(-0.6, n_chains - 0.4)
    values = np.asarray(idata["sample_stats"]["energy"].azstats.bfmi(sample_dims=list(_SAMPLE_DIMS)))
    bfmi_ax.set_xlim(0, max(1.0, 1.1 * float(np.nanmax(values))))
    bfmi_ax.set_xlabel("E-BFMI")
    bfmi_ax.set_title(f"E-BFMI per chain\n(line: {threshold:g})")
    energy_ax.set_title("marginal energy and energy transitions (centred)")
    energy_ax.set_xlabel("energy")
    energy_ax.set_ylabel("density")
    return figure


# --- PSIS-LOO -----------------------------------------------------------------------------------------------


@_styled
def plot_khat(elpd, labels_by_report: Mapping[str, str] | None = None,
              threshold: float = THRESHOLDS["pareto_k_bad"],
              hline_values: Sequence[float] = (THRESHOLDS["pareto_k_good"], THRESHOLDS["pareto_k_bad"]),
              max_names: int = KHAT_MAX_NAMES) -> plt.Figure:
    """``plot_khat``: the Pareto k of each report (left out one at a time), with lines at `hline_values`
    (the last one, 0.7 by default, solid red; the others dashed grey) and the reports above `threshold`
    named at their point. Report names (the pointwise dimension's coordinates, or their
    `labels_by_report`) on the x axis, rotated; with more than `max_names` reports every k-th name only,
    so that they stay readable (constrained layout keeps the rotated names inside the figure)."""
    khat = elpd.pareto_k
    dim = khat.dims[0] if khat.ndim == 1 else None
    coords = {dim: labels_by_report} if dim and labels_by_report else None
    n = int(khat.size)
    show_all = n <= max_names
    pc = azp.plot_khat(
        elpd, threshold=threshold, hline_values=list(hline_values), labeller=_labeller(coords=coords),
        visuals={"ticks": dict(_ROTATED) if show_all else False, "hlines": {"alpha": 1.0, "width": 1.1},
                 "khat": {"size": 36 if n <= 50 else 12}, "threshold_text": {"size": 8},
                 "xlabel": {"text": dim or "observation"}, "ylabel": {"text": "Pareto k"}},
        figure_kwargs={"figsize": (WIDTH, 3.6), "figsize_units": "inches"},
    )
    figure = _figure(pc)
    ax = figure.axes[0]
    for i, value in enumerate(hline_values):  # ArviZ colours the lines C1, C2, ...: the report's look instead
        line = pc.viz[f"hline_{i}"]["pareto_k"].item()
        last = i == len(hline_values) - 1
        line.set_color(FAILED_COLOUR if last else "0.45")
        line.set_linestyle("-" if last else "--")
    if not show_all:  # every k-th report named
        names = _coordinate_labels(khat, coords)
        step = math.ceil(n / max_names)
        positions = np.arange(0, n, step)
        ax.set_xticks(positions, [names[i] for i in positions], rotation=_ROTATED["rotation"],
                      ha="right", rotation_mode="anchor")
        ax.set_xlabel(f"{dim or 'observation'} (every {step}th named)")
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(min(-0.05, float(np.nanmin(khat.values)) - 0.05), max(1.0, float(np.nanmax(khat.values)) + 0.12))
    lines = ", ".join(f"{v:g}" for v in hline_values)
    ax.set_title(f"PSIS-LOO Pareto k per {dim or 'observation'} (lines at {lines})")
    return figure


def _coordinate_labels(khat: xr.DataArray, coords) -> list[str]:
    if khat.ndim != 1 or khat.dims[0] not in khat.coords:
        return [str(i) for i in range(khat.size)]
    mapping = (coords or {}).get(khat.dims[0], {})
    return [str(mapping.get(c, c)) for c in khat[khat.dims[0]].values.tolist()]


@_styled
def plot_loo_pit(pit, var_name: str = "y", dim: str = "report", prob: float = THRESHOLDS["band_prob"],
                 band: bool = True, title: str | None = None) -> plt.Figure:
    """ECDF of the LOO-PIT values minus the uniform CDF, drawn by ArviZ's ``plot_ecdf_pit`` (``pot_c`` test).

    `pit`: the PIT values, already randomised within each discrete count's probability mass (an array or
    DataArray over `dim`, e.g. ``checks.randomised_loo_pit``), wrapped here as the ``loo_pit`` group that
    ``plot_loo_pit`` itself hands to ``plot_ecdf_pit``; or a DataTree as ``plot_loo_pit`` takes it
    (posterior_predictive, observed_data, log_likelihood), which ArviZ turns into PIT values itself
    (Pareto-smoothed, and randomised for discrete data without a seed: not reproducible, so the report
    passes its own seeded values).

    The panel prints the p-value of ArviZ's ``pot_c`` uniformity test and marks the PIT values that drive
    a departure when p < 1 − `prob`. With `band`, ArviZ's simultaneous `prob` band (Säilynoja et al. 2022,
    ``arviz_stats.ecdf_utils.ecdf_pit``, the computation of ``method="envelope"``) is drawn behind it
    with arviz-plots' ``fill_between_y`` visual: under a calibrated model the curve stays inside it
    everywhere with probability `prob`. (``method="envelope"`` itself fails in arviz-plots 1.3.2:
    ``np.linspace`` is handed a DataArray; ArviZ also calls the band legacy, as it assumes independent
    PIT values.)"""
    visuals = {"xlabel": {"text": "LOO-PIT"}, "ylabel": {"text": "ECDF − uniform CDF"}, "remove_axis": False,
               "title": False, "ecdf_lines": {"width": 1.6}}
    figure_kwargs = {"figsize": (WIDTH * 0.75, 3.3), "figsize_units": "inches"}
    if isinstance(pit, xr.DataTree):
        pc = azp.plot_loo_pit(pit, var_names=[var_name], method="pot_c", envelope_prob=prob,
                              visuals=visuals, figure_kwargs=figure_kwargs)
        data = pit["observed_data"].to_dataset()[[var_name]]
    else:
        if not isinstance(pit, xr.DataArray):
            pit = xr.DataArray(np.asarray(pit, dtype=float).ravel(), dims=[dim])
        values = pit
        data = values.rename(var_name).to_dataset()
        pc = azp.plot_ecdf_pit(xr.DataTree.from_dict({"loo_pit": data}), group="loo_pit", var_names=[var_name],
                               sample_dims=list(values.dims), method="pot_c", envelope_prob=prob,
                               visuals=visuals, figure_kwargs=figure_kwargs)
    size = int(data[var_name].size)
    if band:
        _add_band(pc, data, size, prob)
    _tidy_p_values(pc)
    figure = _figure(pc)
    ax = figure.axes[0]
    if not band:
        _pad_ylim(pc)
    ax.set_xlim(0, 1)
    if not isinstance(pit, xr.DataTree):  # few values: show where they are (the ECDF is drawn on a grid)
        bottom = ax.get_ylim()[0]
        pc.map(azp.visuals.scatter_x, "rug", data=data, y=0.92 * bottom, marker="|", size=60, color="C0",
               ignore_aes="all")
    ax.set_title(title or f"LOO-PIT of {size} {dim}s" + (f", simultaneous {prob:.0%} band" if band else ""))
    return figure


def _add_band(pc, data: xr.Dataset, size: int, prob: float) -> None:
    """ArviZ's simultaneous band for the ECDF of `size` independent uniform values, drawn as ``plot_ecdf_pit``
    draws it with ``method="envelope"`` (same computation, same visual, same name "credible_interval")."""
    x, _, lower, upper = ecdf_pit(np.linspace(0, 1, size), prob, n_simulations=1000)  # seeded inside
    lower, upper = lower - x, upper - x
    _pad_ylim(pc, float(max(np.max(np.abs(lower)), np.max(np.abs(upper)))))  # ArviZ's limits ignore the band
    pc.map(azp.visuals.fill_between_y, "credible_interval", data=data, x=x, y_bottom=lower, y_top=upper,
           step=True, ignore_aes="all", color="B1", alpha=0.12)


def _pad_ylim(pc, at_least: float = 0.0) -> None:
    """``plot_ecdf_pit`` sets its y limits at ± the largest departure, so the curve's extreme (and the
    points marked there) touch the frame: 10% more room, symmetric, and room for a band of ± `at_least`."""
    for ax in _figure(pc).axes:
        if ax.axison:
            bottom, top = ax.get_ylim()
            span = 1.1 * max(abs(bottom), abs(top), at_least)
            ax.set_ylim(-span, span)


# --- priors ----------------------------------------------------------------------------------------------


@_styled
def plot_prior_posterior(idata, var_names: Sequence[str], labels: Mapping[str, str],
                         bounds: Mapping[str, tuple[float, float]] | None = None) -> plt.Figure:
    """``plot_prior_posterior``: prior (grey, dashed) against posterior (filled) density per parameter,
    y axis kept. The densities are ArviZ's KDE with each parameter's known `bounds` (name → (lower,
    upper)) as grid limits (`bounded_kde`), so μ in (0, 1), SD(θ) in (0, 0.5] and u > 0 show no kernel
    artefact at the bound; all prior and all posterior draws are used."""
    var_names = list(var_names)
    prior, posterior = _dataset(idata, "prior")[var_names], _dataset(idata, "posterior")[var_names]
    density = xr.concat([bounded_kde(prior, list(_SAMPLE_DIMS), bounds),
                         bounded_kde(posterior, list(_SAMPLE_DIMS), bounds)],
                        dim="group", coords="minimal", compat="override").assign_coords(group=["prior", "posterior"])
    for name in density.data_vars:
        density[name].attrs["kind"] = "kde"
    panels = _panels(posterior, var_names)
    ncols = min(3, panels)
    nrows = math.ceil(panels / ncols)
    pc = azp.plot_prior_posterior(
        idata, var_names=var_names, labeller=_labeller(labels), kind="kde", stats={"dist": density},
        visuals={"remove_axis": False, "face": {"alpha": 0.18}},
        col_wrap=ncols, aes={"color": ["group"], "linestyle": ["group"]},
        color=["#7f7f7f", "#d62728"], linestyle=["--", "-"],
        figure_kwargs={"figsize": (WIDTH, 2.7 * nrows + 0.7), "figsize_units": "inches"},
    )
    figure = _figure(pc)
    # the legend below the panels, as in the other figures (``visuals["legend"]`` is refused by the
    # argument check of plot_prior_posterior 1.3.2, though the function reads it)
    _legend_below(pc, "group", ncols=2, title="")
    axes = [ax for ax in figure.axes if ax.axison]
    for i, ax in enumerate(axes):
        ax.set_ylim(bottom=0)
        if i % ncols == 0:
            ax.set_ylabel("density")
    for name in var_names:
        lower, upper = (bounds or {}).get(name, (-np.inf, np.inf))
        for ax in np.asarray(_targets(pc, name).values).ravel():
            left, right = ax.get_xlim()
            ax.set_xlim(lower if np.isfinite(lower) else left, upper if np.isfinite(upper) else right)
    return figure


@_styled
def plot_psense_dist(idata, var_names: Sequence[str], labels: Mapping[str, str],
                     bounds: Mapping[str, tuple[float, float]] | None = None,
                     alphas: tuple[float, float] = (0.8, 1.25), prior_var_names: Sequence[str] | None = None,
                     likelihood_var_names: Sequence[str] | None = None) -> plt.Figure:
    """``plot_psense_dist``: each parameter's posterior when the prior (left) or the likelihood (right) is
    power-scaled by `alphas` (Kallioinen et al. 2024: importance-weighted and resampled, no refit), with
    point estimates and intervals below. Needs ``log_prior`` and ``log_likelihood`` groups in `idata`.
    Curves that move apart mean the posterior is sensitive to that component. With `bounds`, the
    densities are reflected at the known bounds (`bounded_kde`) of the same resampled draws ArviZ uses
    (``arviz_stats.psense.power_scale_dataset``, seeded)."""
    var_names = list(var_names)
    prior_names = list(prior_var_names) if prior_var_names else None
    likelihood_names = list(likelihood_var_names) if likelihood_var_names else None
    rows = _panels(_dataset(idata, "posterior")[var_names], var_names)
    stats = None
    if bounds:
        scaled = xr.concat(
            [power_scale_dataset(idata, group=group, alphas=alphas, sample_dims=list(_SAMPLE_DIMS),
                                 group_var_names=names, group_coords=None)[var_names]
             for group, names in (("prior", prior_names), ("likelihood", likelihood_names))],
            dim="component_group").assign_coords(component_group=["prior", "likelihood"])
        stats = {"dist": bounded_kde(scaled, ["sample"], bounds)}
    component = {"component_group": {"prior": "prior power-scaled", "likelihood": "likelihood power-scaled"}}
    pc = azp.plot_psense_dist(
        idata, var_names=var_names, labeller=_labeller(labels, component), alphas=alphas, kind="kde",
        prior_var_names=prior_names, likelihood_var_names=likelihood_names, stats=stats,
        figure_kwargs={"figsize": (WIDTH, 2.2 * rows + 0.9), "figsize_units": "inches"},
    )
    figure = _figure(pc)
    _zoom_densities(pc, _dataset(idata, "posterior")[var_names], bounds)
    _legend_below(pc, "alpha", ncols=3, title="power-scaling α")
    return figure


# --- calibration -------------------------------------------------------------------------------------------


@_styled
def plot_ecdf_pit_sbc(pit_dataset: xr.Dataset, labels: Mapping[str, str] | None = None,
                      prob: float = 1 - THRESHOLDS["test_alpha"], band: bool = False,
                      band_prob: float = THRESHOLDS["band_prob"], col_wrap: int = 3) -> plt.Figure:
    """``plot_ecdf_pit`` of simulation-based-calibration PIT values: one panel per quantity (a variable of
    `pit_dataset` with dims (sample,) or (chain, draw)), ECDF minus uniform CDF, with ArviZ's default
    ``pot_c`` test (p-value printed, the values that drive a departure marked when p < 1 − `prob`). With
    `band`, ArviZ's simultaneous `band_prob` band is drawn behind (valid here: SBC replications are
    independent), as in `plot_loo_pit`."""
    dataset = pit_dataset.to_dataset() if isinstance(pit_dataset, xr.DataTree) else pit_dataset
    sample_dims = list(dataset.dims)
    panels = len(dataset.data_vars)
    ncols = min(col_wrap, panels)
    nrows = math.ceil(panels / ncols)
    pc = azp.plot_ecdf_pit(
        xr.DataTree.from_dict({"prior_sbc": dataset}), group="prior_sbc", sample_dims=sample_dims,
        method="pot_c", envelope_prob=prob, labeller=_labeller(labels), col_wrap=ncols,
        visuals={"xlabel": {"text": "PIT"}, "ylabel": {"text": "ECDF − uniform CDF"}, "remove_axis": False},
        figure_kwargs={"figsize": (WIDTH, 2.5 * nrows + 0.4), "figsize_units": "inches"},
    )
    if band:
        size = int(np.prod([dataset.sizes[d] for d in sample_dims]))
        _add_band(pc, dataset, size, band_prob)
    else:
        _pad_ylim(pc)
    _tidy_p_values(pc)
    figure = _figure(pc)
    for ax in figure.axes:
        if ax.axison:
            ax.tick_params(labelleft=True, labelbottom=True)
    return figure
