"""The bias-integrated answer against an independent grid: the scenario means, the tipping points of the
pooled mean and the answer with the selection strength ω integrated out under its log-uniform prior, on the
published HHD reports and a synthetic data set (default suite) and on BDA3's rat tumour experiments counted
as tumour-free rats (slow: 71 experiments, 14 of them all tumour-free, i.e. "all-responder" reports).

The reference is written here from the model's definition alone: a dense grid in (logit μ, log u), the
beta-binomial likelihood by log-beta functions, the all-responder selection term per report, and for the
averaged answer a Gauss-Legendre rule in log ω over the unnormalised evidence. It shares no code with
`analysis.steps.publication` or the engine's quadrature."""

from __future__ import annotations

import json
from functools import cached_property

import numpy as np
import pytest
from scipy import optimize, stats
from scipy.special import betaln, expit, logsumexp

from exact_posteriors import RAT_N, RAT_Y

GRID = 400
U_SCALE = 0.5  # the default prior: μ ~ Beta(1, 1), u ~ HalfNormal(0.5)
TOLERANCE = 2e-3
"""Both sides are deterministic quadratures; the tolerance covers the reference grid's own error
(400 × 400 nodes over the posterior's bulk), not Monte Carlo error."""


class Reference:
    """The posterior of (logit μ, log u) on a grid, under all-responder selection of any strength ω."""

    def __init__(self, y, n) -> None:
        self.y, self.n = np.asarray(y), np.asarray(n)

    @cached_property
    def _grid(self):
        lm, lu = np.meshgrid(np.linspace(-6, 7, GRID), np.linspace(-7, np.log(U_SCALE) + 2.5, GRID), indexing="ij")
        mu, u = expit(lm), np.exp(lu)
        a, b = mu / u**2, (1 - mu) / u**2
        base = stats.halfnorm.logpdf(u, scale=U_SCALE) + np.log(mu * (1 - mu)) + np.log(u)
        p_all = []
        for yi, ni in zip(self.y, self.n):
            base = base + betaln(a + yi, b + ni - yi) - betaln(a, b)
            p_all.append(np.exp(betaln(a + ni, b) - betaln(a, b)))
        return mu, base, np.array(p_all)

    def log_posterior(self, omega: float) -> np.ndarray:
        mu, base, p_all = self._grid
        mixed = (self.y < self.n)[:, None, None]
        selection = np.where(mixed, np.log(omega), 0.0) - np.log(p_all + omega * (1 - p_all))
        return base + selection.sum(axis=0)

    def mean(self, omega: float) -> float:
        log_post = self.log_posterior(omega)
        return float(np.sum(np.exp(log_post - logsumexp(log_post)) * self._grid[0]))

    def tipping(self, threshold: float, omega_min: float) -> float:
        return float(np.exp(optimize.brentq(lambda lw: self.mean(float(np.exp(lw))) - threshold,
                                            np.log(omega_min), 0.0, xtol=1e-5)))

    def averaged_mean(self, omega_min: float, nodes: int = 32) -> float:
        """E[μ] with log ω uniform on [log ω_min, 0]: Σ_k w_k Z(ω_k) E[μ | ω_k] / Σ_k w_k Z(ω_k)."""
        x, w = np.polynomial.legendre.leggauss(nodes)
        log_z, means = [], []
        for log_omega in np.log(omega_min) / 2 * (1 - x):
            log_post = self.log_posterior(float(np.exp(log_omega)))
            log_z.append(logsumexp(log_post))
            means.append(float(np.sum(np.exp(log_post - log_z[-1]) * self._grid[0])))
        log_weights = np.log(w) + np.array(log_z)
        return float(np.sum(np.exp(log_weights - logsumexp(log_weights)) * np.array(means)))


def check_against_reference(bias: dict, reference: Reference) -> None:
    """Every number of a `summary.json` bias block that the reference can recompute."""
    for scenario in bias["scenarios"]:
        if scenario["mechanism"] == "all_responders":
            assert scenario["pooled"]["mean"] == pytest.approx(reference.mean(scenario["weight"]), abs=TOLERANCE)
    for tip in bias["tipping"]:
        if tip["quantity"] == "mean" and tip["reached"] and tip["omega"] and tip["omega"] < 1:
            assert tip["omega"] == pytest.approx(reference.tipping(tip["threshold"], bias["omega_min"]), rel=0.02)
    assert bias["averaged"]["prior"] == "log_uniform"
    assert bias["averaged"]["pooled"]["mean"] == pytest.approx(reference.averaged_mean(bias["omega_min"]), abs=TOLERANCE)


@pytest.mark.parametrize("run", ["primary_run", "other_run"])
def test_the_reported_bias_analyses_equal_the_independent_grid(run, request):
    _, out = request.getfixturevalue(run)
    summary = json.loads((out / "summary.json").read_text())
    y = [r["y"] for r in summary["reports"].values()]
    n = [r["n"] for r in summary["reports"].values()]
    check_against_reference(summary["bias"], Reference(y, n))
    if run == "primary_run":  # the shipped data cross both thresholds: the roots are checked, not skipped
        assert sum(t["reached"] and t["omega"] < 1 for t in summary["bias"]["tipping"] if t["quantity"] == "mean") >= 2


@pytest.mark.slow
def test_on_the_rat_tumour_experiments_counted_as_tumour_free_rats(tmp_path, model_cache):
    from analysis.inputs.bundle import load_inputs
    from analysis.inputs.config import load_config, user_overrides
    from analysis.steps import primary, publication
    from analysis.results import to_plain

    y, n = RAT_N - RAT_Y, RAT_N
    reference = Reference(y, n)
    threshold = round((reference.mean(1.0) + reference.mean(0.01)) / 2, 3)
    path = tmp_path / "rats.csv"
    path.write_text("report_id,drug,n_treated,n_any_response\n" +
                    "".join(f"rat{i},naltrexone,{ni},{yi}\n" for i, (yi, ni) in enumerate(zip(y, n))))
    overrides = user_overrides(path)
    overrides["bias"] = {"thresholds": [threshold], "omega_min": 0.01}
    overrides["borrowing"] = {"enabled": False}
    inputs = load_inputs(load_config(**overrides))
    bias = to_plain(publication.analyse(inputs, primary.analyse(inputs, model_cache), model_cache))
    assert any(t["reached"] and t["omega"] for t in bias["tipping"])
    check_against_reference(bias, reference)
