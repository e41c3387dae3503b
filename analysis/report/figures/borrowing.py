"""The target arm (naloxone by default), from ``s["target"]``: what the robust meta-analytic-predictive (MAP)
prior borrows from the reports and what the arm's own patients add, how the answer depends on the weight
of the vague component, and how well RBesT's Beta-mixture approximation matches the exact MAP prior."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FixedLocator, NullLocator  # noqa: E402
from scipy import stats  # noqa: E402

from .style import COLOURS, WIDTH, legend_below, styled  # noqa: E402

DENSITY_FLOOR = 0.02
"""Bottom of the log density axes: below it a density is drawn as nothing (the MAP prior piles up near 1,
so a linear axis would flatten everything else)."""
DECADES = (0.03, 0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000)


def _edges(theta: np.ndarray) -> np.ndarray:
    """Bin edges around the midpoints `theta` (the densities are CDF differences over these bins)."""
    middle = 0.5 * (theta[1:] + theta[:-1])
    return np.r_[max(0.0, theta[0] - (middle[0] - theta[0])), middle, min(1.0, theta[-1] + (theta[-1] - middle[-1]))]


def _cdf(theta: np.ndarray, density: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(right bin edges, CDF there) of a density given as bin averages at the midpoints `theta`."""
    edges = _edges(theta)
    cdf = np.cumsum(density * np.diff(edges))
    return edges[1:], cdf / cdf[-1] if cdf[-1] > 0 else cdf


def _log_density_axis(ax, peak: float) -> None:
    ax.set_yscale("log")
    top = max(peak * 2.0, 1.0)
    ax.set_ylim(DENSITY_FLOOR, top)
    ticks = [v for v in DECADES if v <= top]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_yticklabels([f"{v:g}" for v in ticks])


def _drug(target: dict) -> str:
    return str(target.get("target_drug") or "the target drug")


@styled
def update(target: dict) -> plt.Figure:
    """The MAP prior (from the reports), the robust prior (MAP mixed with a vague component of weight w),
    the target arm's likelihood (normalised) and the posterior, exact: densities on a log axis (left; the
    MAP prior piles up near θ = 1, a linear axis would flatten the rest) and CDFs (right), with the
    total-variation distance between the posterior and the MAP prior.

    Reads ``s["target"]``: densities {theta, map_prior, robust_prior, likelihood, posterior}, y, n,
    robust_weight, vague_prior, posterior (Estimate), posterior_map_distance, target_drug."""
    densities = target["densities"]
    theta = np.asarray(densities["theta"], dtype=float)
    y, n, w = int(target["y"]), int(target["n"]), float(target["robust_weight"])
    drug = _drug(target)
    vague = target.get("vague_prior") or [1, 1]
    flat = list(map(float, vague)) == [1.0, 1.0]
    curves = (
        ("map_prior", COLOURS["map"], "--", 1.5, "MAP prior (predictive of the reports)"),
        ("robust_prior", COLOURS["prior"], "-", 1.8, f"robust prior (vague weight w = {w:g})"),
        ("likelihood", COLOURS["likelihood"], ":", 2.0,
         f"likelihood of {y}/{n} (normalised" + (": the posterior under a flat prior)" if flat else ")")),
        ("posterior", COLOURS["posterior"], "-", 2.2, "posterior (robust MAP prior, exact)"),
    )
    figure, (left, right) = plt.subplots(1, 2, figsize=(WIDTH, 4.1), layout="constrained",
                                         gridspec_kw={"width_ratios": [1.25, 1]})
    peak = 0.0
    for key, colour, ls, lw, label in curves:
        density = np.asarray(densities[key], dtype=float)
        left.plot(theta, density, color=colour, ls=ls, lw=lw, label=label, gid=f"density:{key}")
        x, cdf = _cdf(theta, density)
        right.plot(np.r_[0.0, x], np.r_[0.0, cdf], color=colour, ls=ls, lw=lw, gid=f"cdf:{key}")
        peak = max(peak, float(np.max(density)))
    _log_density_axis(left, peak)
    left.set_xlim(0, 1)
    left.set_xlabel(f"probability of response on {drug}, θ")
    left.set_ylabel("density (log scale)")
    left.set_title("Densities")
    right.set_xlim(0, 1)
    right.set_ylim(0, 1.01)
    right.set_xlabel(f"probability of response on {drug}, θ")
    right.set_ylabel("cumulative probability")
    distance = target.get("posterior_map_distance")
    right.set_title("CDFs" + (f": posterior against MAP prior\n(total-variation distance {distance:.3f})"
                              if distance is not None else ""))
    posterior = target.get("posterior") or {}
    summary = (f": posterior mean {posterior['mean']:.2f} (95% {posterior['ci95'][0]:.2f}–{posterior['ci95'][1]:.2f})"
               if posterior.get("mean") is not None else "")
    figure.suptitle(f"{drug.capitalize()}: what was borrowed, what its {n} patients add{summary}", x=0.01, ha="left")
    legend_below(figure, left.get_legend_handles_labels()[0], ncols=2, fontsize=8)
    return figure


@styled
def sweep(target: dict) -> plt.Figure:
    """How the answer depends on the borrowing: the posterior mean and 95% interval against the weight w
    of the vague (non-exchangeable) component, by two routes per weight: exact (the robust MAP prior with
    the exact MAP prior, i.e. the joint EXNEX model) and RBesT's two-step route (the MAP prior approximated
    by a Beta mixture, robustified, updated); the configured weight dashed, the arm's own answer (no
    borrowing, flat prior) dotted.

    Reads ``s["target"]``: sweep [{weight, exact, two_step}], robust_weight, unborrowed, target_drug."""
    rows = target["sweep"]
    weights = np.array([float(r["weight"]) for r in rows])
    figure, ax = plt.subplots(figsize=(WIDTH, 3.9), layout="constrained")
    step = 0.012 * max(1.0, float(np.ptp(weights)) or 1.0)
    for offset, route, colour, marker, label in (
            (-step, "exact", COLOURS["posterior"], "o", "exact (the exact MAP prior, robustified)"),
            (step, "two_step", COLOURS["joint"], "s", "two-step (Beta-mixture fit of the MAP prior, RBesT)")):
        present = [r for r in rows if r.get(route)]
        if not present:
            continue
        x = np.array([float(r["weight"]) for r in present]) + offset
        mean = np.array([r[route]["mean"] for r in present])
        lo = np.array([r[route]["ci95"][0] for r in present])
        hi = np.array([r[route]["ci95"][1] for r in present])
        ax.errorbar(x, mean, yerr=[mean - lo, hi - mean], fmt=marker, color=colour, capsize=3, label=label,
                    clip_on=False, ms=5, ls="none", gid=f"route:{route}")
    ax.axvline(float(target["robust_weight"]), color="#888888", ls="--", lw=1,
               label=f"configured weight (w = {float(target['robust_weight']):g})")
    unborrowed = target.get("unborrowed")
    if unborrowed and unborrowed.get("mean") is not None:
        ax.axhline(unborrowed["mean"], color=COLOURS["likelihood"], ls=":", lw=1.3,
                   label=f"the arm alone ({target['y']}/{target['n']}, flat prior): mean {unborrowed['mean']:.2f}")
    ax.set_xlabel("weight of the vague component, w (0 = full borrowing, 1 = none)")
    ax.set_ylabel(f"response probability on {_drug(target)}")
    ax.set_xticks(weights, [f"{w:g}" for w in weights])
    ax.set_xlim(min(weights.min(), 0.0) - 0.05, max(weights.max(), 1.0) + 0.05)
    ax.set_ylim(0, 1.02)
    ax.set_title("Borrowing sweep: posterior mean and 95% interval by weight, two routes")
    legend_below(figure, ax.get_legend_handles_labels()[0], ncols=2, fontsize=8)
    return figure


def mixture_pdf(components, x: np.ndarray) -> np.ndarray:
    """Density of a Beta mixture [[weight, a, b], ...] at `x`."""
    return sum(float(w) * stats.beta.pdf(x, float(a), float(b)) for w, a, b in components)


def mixture_cdf(components, x: np.ndarray) -> np.ndarray:
    return sum(float(w) * stats.beta.cdf(x, float(a), float(b)) for w, a, b in components)


@styled
def map_fit(target: dict, draws=None) -> plt.Figure:
    """RBesT's Beta-mixture approximation of the MAP prior (``map_fit.components``) against the exact MAP
    density: densities on a log axis (left) and the difference of the CDFs, mixture − exact (right), with
    the largest difference; with `draws` (MCMC draws of θ_new), their histogram and ECDF too.

    Reads ``s["target"]``: map_fit {components [[w, a, b], ...], ks_distance}, densities {theta, map_prior},
    target_drug."""
    components = target["map_fit"]["components"]
    theta = np.asarray(target["densities"]["theta"], dtype=float)
    exact = np.asarray(target["densities"]["map_prior"], dtype=float)
    edges = _edges(theta)
    fitted = mixture_pdf(components, theta)
    figure, (left, right) = plt.subplots(1, 2, figsize=(WIDTH, 3.7), layout="constrained")
    peak = max(float(exact.max()), float(np.max(fitted[np.isfinite(fitted)])))
    if draws is not None:
        values = np.asarray(draws, dtype=float).ravel()
        values = values[np.isfinite(values)]
        counts, bins = np.histogram(values, bins=80, range=(0, 1), density=True)
        left.stairs(counts, bins, color="#bbbbbb", lw=1.0, fill=True, alpha=0.6, label="MCMC draws of θ_new")
        peak = max(peak, float(counts.max()))
    left.plot(theta, exact, color="black", lw=1.4, label="exact MAP prior", gid="density:exact")
    left.plot(theta, fitted, color=COLOURS["map"], lw=1.6, ls="--",
              label=f"Beta mixture ({len(components)} components)", gid="density:mixture")
    _log_density_axis(left, peak)
    left.set_xlim(0, 1)
    left.set_xlabel("θ_new (response probability of a new report)")
    left.set_ylabel("density (log scale)")
    left.set_title("Densities")
    right_edges = edges[1:]
    exact_cdf = _cdf(theta, exact)[1]
    difference = mixture_cdf(components, right_edges) - exact_cdf
    right.plot(right_edges, difference, color=COLOURS["map"], lw=1.3, label="mixture − exact MAP prior",
               gid="cdf:difference")
    largest = float(np.max(np.abs(difference)))
    if draws is not None and values.size:
        ordered = np.sort(values)
        ecdf = np.arange(1, ordered.size + 1) / ordered.size
        right.plot(ordered, ecdf - np.interp(ordered, np.r_[0.0, right_edges], np.r_[0.0, exact_cdf]),
                   color="#999999", lw=1.0, label="ECDF of the draws − exact")
    right.axhline(0, color="black", lw=0.6)
    right.set_xlim(0, 1)
    span = max(largest, 1e-3) * 1.3
    right.set_ylim(-span, span)
    right.set_xlabel("θ_new")
    right.set_ylabel("difference of CDFs")
    ks = target["map_fit"].get("ks_distance")
    right.set_title(f"CDF difference: largest {largest:.4f}" + (f"\n(KS distance of the fit: {ks:.4f})" if ks else ""))
    figure.suptitle(f"MAP prior for {_drug(target)}: the Beta-mixture approximation against the exact density",
                    x=0.01, ha="left")
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    legend_below(figure, handles, ncols=2, fontsize=8)
    return figure
