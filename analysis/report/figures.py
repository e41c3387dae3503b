"""Figures of a run, drawn from results only (no model code), saved as PNG and SVG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import arviz_plots as azp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from analysis.borrowing import BorrowingResult  # noqa: E402
from analysis.checks import STATISTICS, loo_data, loo_summary  # noqa: E402

GRID = np.linspace(0.0005, 0.9995, 1999)
COLOURS = {"prior": "#7f7f7f", "map": "#1f77b4", "likelihood": "#2ca02c", "posterior": "#d62728", "joint": "#9467bd"}


def save(figure: plt.Figure, directory: Path, name: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for suffix in ("png", "svg"):
        figure.savefig(directory / f"{name}.{suffix}", dpi=150 if suffix == "png" else None, bbox_inches="tight",
                       metadata={"Date": None} if suffix == "svg" else None)
    plt.close(figure)


def borrowing_update(result: BorrowingResult) -> plt.Figure:
    """Prior, the target's likelihood and the posterior on one axis: what was borrowed, what was seen."""
    y, n, w = result.target.y, result.target.n, result.weight
    figure, ax = plt.subplots(figsize=(7.5, 4.2))
    ax.plot(GRID, result.map_fit.mixture.pdf(GRID), color=COLOURS["map"], ls="--", lw=1.2,
            label="MAP prior (from the naltrexone reports)")
    ax.plot(GRID, result.prior.pdf(GRID), color=COLOURS["prior"], lw=1.8, label=f"robust prior (w = {w:g})")
    ax.plot(GRID, stats.beta.pdf(GRID, y + 1, n - y + 1), color=COLOURS["likelihood"], ls=":", lw=2,
            label=f"likelihood of {y} of {n} (scaled)")
    ax.plot(GRID, result.posterior.pdf(GRID), color=COLOURS["posterior"], lw=2.2, label="posterior (two-step)")
    theta_joint = result.joint.idata["posterior"]["theta_target"].values.ravel()
    ax.hist(theta_joint, bins=60, range=(0, 1), density=True, histtype="step", color=COLOURS["joint"], lw=1.2,
            label="posterior (joint model draws)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, min(ax.get_ylim()[1], 3 * np.max(result.posterior.pdf(GRID[:-50]))))
    ax.set_xlabel(f"probability of response on {result.target.drug}")
    ax.set_ylabel("density")
    ax.set_title(f"{result.target.drug}: prior, likelihood of the {n} patients, posterior")
    ax.legend(fontsize=8, loc="upper left", frameon=False)
    return figure


def borrowing_sweep(summary: dict) -> plt.Figure:
    """How the conclusion depends on the borrowing: posterior mean and 95% interval against the weight
    of the vague (non-exchangeable) component, for both routes."""
    rows = summary["sweep"]
    weights = np.array([r["weight"] for r in rows])
    figure, ax = plt.subplots(figsize=(7.5, 4.0))
    for offset, route, colour, label in ((-0.008, "two_step", COLOURS["posterior"], "two-step robust MAP"),
                                         (0.008, "joint", COLOURS["joint"], "joint EXNEX model")):
        mean = np.array([r[route]["mean"] for r in rows])
        lo = np.array([r[route]["ci95"][0] for r in rows])
        hi = np.array([r[route]["ci95"][1] for r in rows])
        ax.errorbar(weights + offset, mean, yerr=[mean - lo, hi - mean], fmt="o", color=colour, capsize=3, label=label)
    ax.axvline(summary["robust_weight"], color="#bbbbbb", ls="--", lw=1, label="configured weight")
    ax.set_xlabel("weight of the vague component w (0 = full borrowing, 1 = none)")
    ax.set_ylabel(f"response probability on {summary['target_drug']}")
    ax.set_ylim(0, 1.02)
    ax.set_title("Borrowing sweep: posterior mean and 95% interval")
    ax.legend(fontsize=8, loc="lower left", frameon=False)
    return figure


def map_fit_check(result: BorrowingResult) -> plt.Figure:
    """The Beta-mixture approximation of the MAP prior against the MCMC draws it approximates."""
    draws = np.sort(result.map_draws)
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    left.hist(draws, bins=80, range=(0, 1), density=True, color="#dddddd", label="MCMC draws of θ_new")
    left.plot(GRID, result.map_fit.mixture.pdf(GRID), color=COLOURS["map"], lw=1.8,
              label=f"mixture fit ({len(result.map_fit.mixture.weights)} components)")
    left.plot(GRID, result.elir_fit.mixture.pdf(GRID), color="#ff7f0e", lw=1.2, ls="--",
              label="fit with a, b ≥ 1 (for ELIR)")
    left.set_xlim(0, 1)
    left.set_ylim(0, np.quantile(result.map_fit.mixture.pdf(GRID), 0.99) * 1.3)
    left.set_xlabel("θ_new")
    left.legend(fontsize=7, frameon=False, loc="upper left")
    ecdf = np.arange(1, draws.size + 1) / draws.size
    right.plot(draws, ecdf - result.map_fit.mixture.cdf(draws), color=COLOURS["map"], lw=1,
               label=f"mixture (KS {result.map_fit.ks_distance:.3f})")
    right.plot(draws, ecdf - result.elir_fit.mixture.cdf(draws), color="#ff7f0e", lw=1, ls="--",
               label=f"a, b ≥ 1 (KS {result.elir_fit.ks_distance:.3f})")
    right.axhline(0, color="black", lw=0.5)
    right.set_xlabel("θ_new")
    right.set_ylabel("ECDF of draws − mixture CDF")
    right.legend(fontsize=7, frameon=False)
    figure.suptitle("MAP prior: Beta-mixture approximation against the MCMC draws", fontsize=10)
    figure.tight_layout()
    return figure


# --- the primary analysis -----------------------------------------------------------------------------


def forest(summary: dict) -> plt.Figure:
    """Per report: raw proportion with its exact interval (open) and the shrunken posterior θ_i (filled);
    then the pooled mean and the predictive interval for a new report."""
    reports = summary["reports"]
    names = list(reports)
    rows = len(names) + 3
    figure, ax = plt.subplots(figsize=(7.5, 0.36 * rows + 1.2))
    for i, name in enumerate(names):
        r = reports[name]
        yy = rows - i
        raw = r["y"] / r["n"]
        ax.plot(r["raw_ci95"], [yy + 0.15] * 2, color="#999999", lw=1.2)
        ax.plot(raw, yy + 0.15, "o", mfc="white", mec="#555555", ms=5)
        ax.plot(r["ci95"], [yy - 0.15] * 2, color=COLOURS["map"], lw=2)
        ax.plot(r["mean"], yy - 0.15, "o", color=COLOURS["map"], ms=5)
        ax.text(1.02, yy, f"{r['y']}/{r['n']}", va="center", fontsize=8, transform=ax.get_yaxis_transform())
    for yy, key, colour in ((2, "pooled", "black"), (1, "predictive", COLOURS["posterior"])):
        block = summary[key]
        ax.plot(block["ci95"], [yy] * 2, color=colour, lw=3)
        ax.plot(block["mean"], yy, "D", color=colour, ms=6)
    ax.set_yticks([rows - i for i in range(len(names))] + [2, 1])
    ax.set_yticklabels(names + ["pooled mean", "new report (predictive)"], fontsize=8)
    ax.axhline(2.6, color="#cccccc", lw=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0.4, rows + 0.6)
    ax.set_xlabel(f"probability of {summary['outcome'].replace('_', ' ')} on {summary['drug']}")
    ax.plot([], [], "o", mfc="white", mec="#555555", label="observed proportion, exact 95% CI")
    ax.plot([], [], "o-", color=COLOURS["map"], label="posterior θ_i (shrunken), 95% CrI")
    ax.legend(fontsize=7, loc="lower left", frameon=False)
    figure.tight_layout()
    return figure


def report_predictive_intervals(idata) -> plt.Figure:
    """Each report's observed count against its posterior predictive 50% and 95% intervals, for the same
    reports (same θ_i) and for new reports of the same size (fresh θ)."""
    observed = idata["observed_data"]["y"].values
    n = idata["constant_data"]["n"].values
    names = [str(r) for r in idata["observed_data"]["report"].values]
    figure, ax = plt.subplots(figsize=(7.5, 0.36 * len(names) + 1.2))
    for offset, var, colour, label in ((0.15, "y", COLOURS["map"], "same report"),
                                       (-0.15, "y_new_reports", COLOURS["joint"], "new report of that size")):
        draws = idata["posterior_predictive"][var].values.reshape(-1, len(names)) / n
        q = np.quantile(draws, [0.025, 0.25, 0.75, 0.975], axis=0)
        positions = np.arange(len(names))[::-1] + offset
        ax.hlines(positions, q[0], q[3], color=colour, lw=1, label=f"{label}: 95%")
        ax.hlines(positions, q[1], q[2], color=colour, lw=4, alpha=0.6, label=f"{label}: 50%")
    ax.plot(observed / n, np.arange(len(names))[::-1], "k|", ms=12, mew=2, label="observed")
    ax.set_yticks(np.arange(len(names))[::-1])
    ax.set_yticklabels([f"{name} (n={k})" for name, k in zip(names, n)], fontsize=8)
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("proportion responding (replicated counts / n)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False, ncol=3)
    figure.tight_layout()
    return figure


def predictive_statistics(idata) -> plt.Figure:
    """Distribution of each check statistic before the data (prior predictive) and for new reports of the
    same sizes (posterior mixed predictive), with the observed value."""
    observed = idata["observed_data"]["y"].values
    n = idata["constant_data"]["n"].values
    rows = (("prior predictive", idata["prior_predictive"]["y"]),
            ("posterior predictive (new reports)", idata["posterior_predictive"]["y_new_reports"]))
    figure, axes = plt.subplots(len(rows), len(STATISTICS), figsize=(9, 5))
    for (row_label, replicated), row_axes in zip(rows, axes):
        y_rep = replicated.transpose(..., "report").values
        for (name, statistic), ax in zip(STATISTICS.items(), row_axes):
            values = statistic(y_rep, n).ravel()
            bins = np.arange(values.min(), values.max() + 2) - 0.5
            ax.hist(values, bins=bins, density=True, color="#cccccc")
            ax.axvline(statistic(observed, n), color=COLOURS["posterior"], lw=2)
            ax.set_title(f"{name.replace('_', ' ')}\n{row_label}", fontsize=8)
            ax.tick_params(labelsize=7)
    figure.tight_layout()
    return figure


def save_collection(plot_collection, directory: Path, name: str) -> None:
    """Save an ArviZ PlotCollection as PNG and SVG."""
    directory.mkdir(parents=True, exist_ok=True)
    for suffix in ("png", "svg"):
        plot_collection.savefig(directory / f"{name}.{suffix}")
    plt.close("all")


def draw_primary(result, summary: dict, directory: Path, parameters: tuple[str, ...]) -> None:
    """Every figure of the primary analysis: ArviZ where it has the plot, matplotlib where it does not."""
    idata, names = result.idata, list(parameters)
    save_collection(azp.plot_trace_dist(idata, var_names=names), directory, "trace")
    # The multi-chain test on draws thinned by ESS: unthinned, it reads autocorrelation as disagreement.
    save_collection(azp.plot_rank(idata, var_names=names, method="mtc_c", thin=True), directory, "rank")
    save_collection(azp.plot_energy(idata), directory, "energy")
    save_collection(azp.plot_prior_posterior(idata, var_names=names), directory, "prior_posterior")
    save_collection(azp.plot_khat(loo_summary(idata)[1]), directory, "khat")
    save_collection(azp.plot_loo_pit(loo_data(idata)), directory, "loo_pit")
    save(forest(summary), directory, "forest")
    save(report_predictive_intervals(idata), directory, "predictive_intervals")
    save(predictive_statistics(idata), directory, "predictive_statistics")


def draw_borrowing(result: BorrowingResult, block: dict, directory: Path) -> None:
    save(borrowing_update(result), directory, "borrowing_update")
    save(borrowing_sweep(block), directory, "borrowing_sweep")
    save(map_fit_check(result), directory, "map_prior_fit")
