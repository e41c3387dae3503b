"""Figures of a run, drawn from results only (no model code), saved as PNG and SVG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from analysis.borrowing import BorrowingResult  # noqa: E402
from models.borrowing import robustify  # noqa: E402

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
