"""Conventional (frequentist) comparators, so a reader can set the Bayesian synthesis beside published reviews.

Three pooled proportions from per-report counts y of n:

- crude: all patients added up, with the exact Clopper-Pearson interval;
- common effect: intercept-only logistic regression by maximum likelihood, Wald interval on the logit scale;
- GLMM: the binomial-normal random-intercept model logit θ_i = μ + u_i, u_i ~ N(0, τ²), by maximum
  likelihood with adaptive Gauss-Hermite quadrature of each report's marginal likelihood. This is what
  `lme4::glmer(nAGQ = 7)` fits, and so what `metafor::rma.glmm(measure = "PLO")` and
  `meta::metaprop(method = "GLMM")` report; the default of 7 nodes is theirs, so the numbers are the ones
  readers see.

All functions are pure and return plain floats (no rounding); failures of the GLMM fit are reported in the
result (`converged`, `note`), never raised.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import integrate, optimize, special, stats

from models.base import distinct_rows

CI_PROB = 0.95
_Z = float(stats.norm.ppf((1 + CI_PROB) / 2))  # 1.959964: metafor's Wald and prediction intervals use z
_TAU_MAX = 50.0  # logit scale; an MLE of τ this large means it is running off to infinity
_TAU_GRID = np.concatenate([[0.0], np.geomspace(1e-2, _TAU_MAX, 30)])  # steps of 34%, refined below
_BOUNDARY_GAIN = 1e-8  # log-likelihood gained over τ = 0 below which τ̂² is reported as exactly 0


def crude(y, n) -> dict:
    """Total responders over total patients: what a reader gets by adding up the reports."""
    y, n = _counts(y, n)
    total_y, total_n = int(y.sum()), int(n.sum())
    return {"y": total_y, "n": total_n, "proportion": total_y / total_n,
            "ci95": list(clopper_pearson(total_y, total_n))}


def common_effect(y, n) -> dict:
    """Common-effect logistic pooling: the MLE of a single logit is logit(Σy / Σn), so the point estimate is
    the crude proportion; only the interval differs (Wald on the logit scale, observed information
    Σy·Σ(n − y)/Σn). With no responders or no non-responders the MLE sits at ±∞ and there is no Wald
    interval, so the exact interval is given instead, with a note."""
    y, n = _counts(y, n)
    total_y, total_n = int(y.sum()), int(n.sum())
    if total_y in (0, total_n):
        side = "no responders" if total_y == 0 else "every patient responded"
        return {
            "proportion": total_y / total_n,
            "ci95": list(clopper_pearson(total_y, total_n)),
            "mu_logit": -math.inf if total_y == 0 else math.inf,
            "se_mu_logit": math.nan,
            "note": f"{side}: the logistic MLE is at the boundary (logit ±∞), so there is no Wald interval; "
                    "ci95 is the exact Clopper-Pearson interval",
        }
    mu = math.log(total_y / (total_n - total_y))
    se = math.sqrt(1 / total_y + 1 / (total_n - total_y))
    return {
        "proportion": total_y / total_n,
        "ci95": [float(special.expit(mu - _Z * se)), float(special.expit(mu + _Z * se))],
        "mu_logit": mu,
        "se_mu_logit": se,
        "note": "",
    }


def glmm_ml(y, n, nodes: int = 7) -> dict:
    """Binomial-normal random-intercept GLMM by maximum likelihood (adaptive Gauss-Hermite, `nodes` per
    report; 7 is glmer's nAGQ in metafor and meta).

    τ is profiled: for each τ on a grid from exactly 0 to a large value the marginal log-likelihood is
    maximised over μ (it is concave in μ), and the best grid cell is refined. τ = 0 is a candidate in its
    own right, so a between-report variance estimated at its boundary is reported as 0 with a note.

    The standard error of μ̂ is glmer's (and so metafor's): the μ entry of the inverse of the observed
    information in (μ, τ) jointly (lme4's vcov from its finite-difference Hessian). That carries the
    uncertainty in τ̂, which matters because μ̂ and τ̂ are correlated on the logit scale; the information
    in μ at fixed τ̂ ignores the correlation and understates the SE (0.2511 against metafor's 0.2570 on
    Stijnen et al.'s data, 0.81 against 1.41 on the sparse, nearly all-responder HHD counts). At τ̂ = 0
    the SE is the common-effect one, as metafor reports it there.
    """
    y, n = _counts(y, n)
    result = {
        "mu_logit": math.nan, "se_mu_logit": math.nan, "tau2": math.nan, "median_report": math.nan,
        "ci95": [math.nan, math.nan], "prediction_interval": [math.nan, math.nan],
        "population_mean_at_mle": math.nan, "converged": False, "note": "",
    }
    total_y, total_n = int(y.sum()), int(n.sum())
    if total_y in (0, total_n):
        # The likelihood keeps rising as μ → ±∞ at any τ: no finite MLE, and τ is not identified.
        side = "no report has a responder" if total_y == 0 else "every patient in every report responded"
        limit = 0.0 if total_y == 0 else 1.0
        result.update(mu_logit=-math.inf if total_y == 0 else math.inf, median_report=limit,
                      population_mean_at_mle=limit,
                      note=f"{side}: the GLMM has no finite maximum-likelihood estimate (μ̂ = "
                           f"{'−' if total_y == 0 else '+'}∞, τ² not identified); see the crude proportion and "
                           "its exact interval instead")
        return result
    if np.all((y == 0) | (y == n)):
        # Every report all or none, both kinds present: each report's marginal likelihood tends to its
        # maximum 1/2 as τ → ∞ (at μ = 0), so the MLE of τ is infinite (glmer returns τ² in the thousands).
        result["note"] = ("every report is all responders or no responders: the likelihood keeps rising as the "
                          "between-report variance grows, so τ̂² = ∞ and there is no finite ML fit")
        return result
    x, w = np.polynomial.hermite.hermgauss(nodes)
    (y, n), m = _distinct(y, n)
    try:
        tau, mu, loglik = _profile_fit(y, n, m, x, w)
        if tau >= _TAU_MAX * (1 - 1e-3):
            result["note"] = (f"τ̂ runs to the search bound ({_TAU_MAX:g} on the logit scale): the likelihood keeps "
                              "rising as the between-report variance grows, so there is no finite ML fit")
            return result
        note = ""
        if loglik - _best_mu(y, n, m, 0.0, x, w)[1] < _BOUNDARY_GAIN:
            # At τ = 0 the model is the common-effect one: μ̂ = logit(Σy / Σn), information Σn·p(1 − p).
            tau, mu = 0.0, math.log(total_y / (total_n - total_y))
            se = math.sqrt(1 / total_y + 1 / (total_n - total_y))
            note = ("the between-report variance is estimated at its boundary (τ̂² = 0): the reports vary no more "
                    "than binomial sampling alone explains, and the GLMM reduces to the common-effect model")
        else:
            # ℓ is even in τ (v → −v), so |τ| keeps a difference step just below a small τ̂ valid.
            information = -_hessian(lambda p: _loglik(p[0], abs(p[1]), y, n, m, x, w), [mu, tau])
            variance = np.linalg.inv(information)[0, 0] if np.all(np.linalg.eigvalsh(information) > 0) else -1.0
            if not np.isfinite(variance) or variance <= 0:
                result["note"] = "the observed information in (μ, τ) is not positive definite at the fit: no SE"
                return result
            se = math.sqrt(variance)
    except (FloatingPointError, ValueError, RuntimeError, ArithmeticError, np.linalg.LinAlgError) as error:
        result["note"] = f"the GLMM fit failed: {error}"
        return result
    tau2 = tau**2
    half_pi = _Z * math.sqrt(tau2 + se**2)
    result.update(
        mu_logit=float(mu), se_mu_logit=float(se), tau2=float(tau2), median_report=float(special.expit(mu)),
        ci95=[float(special.expit(mu - _Z * se)), float(special.expit(mu + _Z * se))],
        prediction_interval=[float(special.expit(mu - half_pi)), float(special.expit(mu + half_pi))],
        population_mean_at_mle=_population_mean(mu, tau), converged=True, note=note,
    )
    return result


def comparators(y, n) -> dict:
    """All three comparators for one data set."""
    return {"crude": crude(y, n), "common_effect": common_effect(y, n), "glmm_ml": glmm_ml(y, n)}


# --- pieces -------------------------------------------------------------------------------------------


def _counts(y, n) -> tuple[np.ndarray, np.ndarray]:
    y, n = np.atleast_1d(np.asarray(y)), np.atleast_1d(np.asarray(n))
    if y.shape != n.shape or y.ndim != 1 or y.size == 0:
        raise ValueError(f"y and n must be 1-D arrays of equal, non-zero length (got shapes {y.shape}, {n.shape})")
    if not (np.all(y == np.round(y)) and np.all(n == np.round(n))):
        raise ValueError("y and n must be whole numbers")
    y, n = y.astype(np.int64), n.astype(np.int64)
    if np.any(n < 1) or np.any(y < 0) or np.any(y > n):
        raise ValueError("every report needs n ≥ 1 and 0 ≤ y ≤ n")
    return y, n


def clopper_pearson(y: int, n: int) -> tuple[float, float]:
    """Exact (Clopper-Pearson) 95% interval for a binomial proportion (scipy's `binomtest`)."""
    return _clopper_pearson(int(y), int(n))


@functools.cache
def _clopper_pearson(y: int, n: int) -> tuple[float, float]:
    """Each (y, n) solved once: thousands of case reports hold a few hundred distinct counts, and each
    interval is a root search."""
    interval = stats.binomtest(y, n).proportion_ci(CI_PROB, method="exact")
    return float(interval.low), float(interval.high)


def _conditional_modes(mu: float, tau: float, y: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mode v̂ and curvature scale σ̂ of each report's integrand in the spherical effect v (u = τ v):
    h(v) = y log p + (n − y) log(1 − p) − v²/2, p = expit(μ + τ v). h is strictly concave and its mode
    solves v = τ (y − n p), so it lies in [−τ (n − y), τ y]: Newton steps, bisecting when one leaves that
    bracket."""
    lo, hi = -tau * (n - y).astype(float), tau * y.astype(float)
    v = np.zeros(y.shape)
    for _ in range(200):
        p = special.expit(mu + tau * v)
        grad = tau * (y - n * p) - v
        lo, hi = np.where(grad > 0, v, lo), np.where(grad < 0, v, hi)
        new = v + grad / (tau**2 * n * p * (1 - p) + 1)
        new = np.where((new < lo) | (new > hi), (lo + hi) / 2, new)
        done = np.all(np.abs(new - v) <= 1e-12 * (1 + np.abs(v)))
        v = new
        if done:
            break
    p = special.expit(mu + tau * v)
    return v, 1 / np.sqrt(tau**2 * n * p * (1 - p) + 1)


def _agq_terms(mu: float, tau: float, y, n, x, w):
    """Per-report, per-node log integrand at the adaptive nodes, and the nodes' linear predictors."""
    v_hat, sigma = _conditional_modes(mu, tau, y, n)
    v = v_hat[:, None] + math.sqrt(2) * sigma[:, None] * x
    eta = mu + tau * v
    log_f = y[:, None] * special.log_expit(eta) + (n - y)[:, None] * special.log_expit(-eta) - v**2 / 2
    # ∫ e^h(v) dv / √(2π) ≈ √2 σ̂ Σ_k w_k e^{x_k²} e^{h(v_k)} / √(2π)
    log_terms = log_f + (np.log(w) + x**2) + np.log(sigma)[:, None] - 0.5 * math.log(math.pi)
    return log_terms, eta


def _distinct(y, n) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """The distinct (y, n) pairs and how many reports hold each: the likelihood is computed once per pair
    (thousands of case reports hold a few hundred distinct counts)."""
    first, row = distinct_rows(np.column_stack([y, n]))
    return (y[first], n[first]), np.bincount(row)


def _loglik(mu: float, tau: float, y, n, m, x, w) -> float:
    """Marginal log-likelihood Σ_i m_i log ∫ Binomial(y_i | n_i, expit(μ + τ z)) φ(z) dz over distinct counts
    held by m_i reports, binomial coefficients included (glmer's logLik differs by a constant, which moves
    no estimate)."""
    log_terms, _ = _agq_terms(mu, tau, y, n, x, w)
    log_choose = special.gammaln(n + 1) - special.gammaln(y + 1) - special.gammaln(n - y + 1)
    return float(m @ (special.logsumexp(log_terms, axis=1) + log_choose))


def _hessian(f, point, step: float = 1e-4) -> np.ndarray:
    """Central finite-difference Hessian, the step glmer's own (lme4's deriv12, delta = 1e-4) uses."""
    point = np.asarray(point, dtype=float)
    k = point.size
    h = np.zeros((k, k))
    e = np.eye(k) * step
    f0 = f(point)
    for i in range(k):
        h[i, i] = (f(point + e[i]) - 2 * f0 + f(point - e[i])) / step**2
        for j in range(i):
            h[i, j] = h[j, i] = (f(point + e[i] + e[j]) - f(point + e[i] - e[j]) - f(point - e[i] + e[j])
                                 + f(point - e[i] - e[j])) / (4 * step**2)
    return h


def _best_mu(y, n, m, tau: float, x, w, start: float | None = None) -> tuple[float, float]:
    """argmax and max over μ of the marginal log-likelihood at fixed τ (concave in μ), started by default
    at the common-effect estimate."""
    if start is None:
        start = math.log((m @ y) / (m @ n - m @ y))
    fit = optimize.minimize_scalar(lambda mu: -_loglik(mu, tau, y, n, m, x, w), bracket=(start - 1, start + 1),
                                   method="brent", tol=1e-10)
    if not np.isfinite(fit.fun):
        raise RuntimeError(f"non-finite log-likelihood at τ = {tau:g}")
    return float(fit.x), float(-fit.fun)


def _profile_fit(y, n, m, x, w) -> tuple[float, float, float]:
    """(τ̂, μ̂, ℓ̂): the profile log-likelihood of τ on a grid (0 included), then refined by bounded Brent
    between the best cell's neighbours; the better of grid and refinement is kept."""
    profile = []
    for t in _TAU_GRID:  # each μ̂(τ) starts from the previous one: μ̂ moves smoothly with τ
        profile.append(_best_mu(y, n, m, t, x, w, profile[-1][0] if profile else None))
    best = int(np.argmax([ll for _, ll in profile]))
    tau, (mu, loglik) = float(_TAU_GRID[best]), profile[best]
    lo, hi = _TAU_GRID[max(best - 1, 0)], _TAU_GRID[min(best + 1, len(_TAU_GRID) - 1)]
    if hi > lo:
        fit = optimize.minimize_scalar(lambda t: -_best_mu(y, n, m, t, x, w, mu)[1], bounds=(lo, hi),
                                       method="bounded", options={"xatol": 1e-9})
        if -fit.fun > loglik:
            tau = float(fit.x)
            mu, loglik = _best_mu(y, n, m, tau, x, w, mu)
    return tau, mu, loglik


def _population_mean(mu: float, tau: float) -> float:
    """E[expit(μ + τ z)], z ~ N(0, 1): the population-average response probability at the MLE (what the
    Bayesian model's pooled mean estimates), as opposed to expit(μ), the median report's."""
    if tau == 0:
        return float(special.expit(mu))
    value, _ = integrate.quad(lambda z: special.expit(mu + tau * z) * stats.norm.pdf(z), -np.inf, np.inf,
                              epsabs=1e-12, epsrel=1e-10)
    return float(value)
