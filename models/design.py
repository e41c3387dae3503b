"""Planning the next study after the synthesis: exact operating characteristics of Bayesian decision rules.

A single-arm binomial study is judged by dual criteria on its posterior (RBesT's decision1S); its
probability of success given θ, and averaged over a design prior for θ (assurance), follow exactly from
binomial and beta-binomial sums because the decision is monotone in the number of responders. The same
rules are given for a normal endpoint, for Lee & Liu's predictive-probability monitoring of a phase II
study, and for a two-arm randomised withdrawal. The effective sample size of a normal-mixture prior for
logit θ (ELIR) tells how many patients such a prior is worth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import integrate, special, stats

from models.mixtures import BetaMixture
from models.special import log_betabinom

_MAX_CELLS = 2**21
"""Rows × mixture components evaluated at once by the beta-binomial predictive (bounded memory)."""


# --- decision rules -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Criterion:
    """Success when P(θ > threshold | data) > probability, or P(θ < threshold | data) > probability when
    `lower`. A study succeeds when all its criteria hold (dual criteria: significance and relevance)."""

    threshold: float
    probability: float
    lower: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.probability < 1.0:
            raise ValueError(f"probability must lie in (0, 1), got {self.probability}")


def _as_criteria(criteria: Criterion | Sequence[Criterion]) -> tuple[Criterion, ...]:
    result = (criteria,) if isinstance(criteria, Criterion) else tuple(criteria)
    if not result:
        raise ValueError("at least one criterion is needed")
    return result


def _is_lower(criteria: tuple[Criterion, ...]) -> bool:
    """The common tail of the criteria: the success set is then one tail of the outcomes. Mixed tails
    would make it an interval, which no single critical count describes."""
    tails = {c.lower for c in criteria}
    if len(tails) > 1:
        raise ValueError("criteria must all be upper-tail or all lower-tail (lower=True)")
    return tails.pop()


def _log_weights(mixture: BetaMixture) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(mixture.weights)


def _log_predictive_pmf(mixture: BetaMixture, n: int, y: ArrayLike) -> np.ndarray:
    """log P(Y = y), Y ~ Binomial(n, θ), θ ~ mixture, for each y: one logsumexp over the components,
    so that mixtures of thousands of components (a gridded predictive distribution) stay exact and fast."""
    y = np.atleast_1d(np.asarray(y, dtype=float))
    log_w = _log_weights(mixture)
    rows = max(1, _MAX_CELLS // max(1, log_w.size))
    out = np.empty(y.size)
    for start in range(0, y.size, rows):
        block = y[start : start + rows, None]
        out[start : start + rows] = special.logsumexp(log_w + log_betabinom(block, n, mixture.a, mixture.b), axis=1)
    return out


def posterior_tail_probabilities(prior: BetaMixture, n: int, criterion: Criterion) -> np.ndarray:
    """The criterion's posterior probability after y = 0..n responders of n, all at once: the
    conjugate update of every component, weighted by its marginal likelihood of y."""
    y = np.arange(n + 1, dtype=float)[:, None]
    log_w = _log_weights(prior) + log_betabinom(y, n, prior.a, prior.b)
    w = np.exp(log_w - special.logsumexp(log_w, axis=1, keepdims=True))
    a, b, t = prior.a + y, prior.b + n - y, criterion.threshold
    tail = special.betainc(a, b, t) if criterion.lower else special.betaincc(a, b, t)
    return np.clip(np.sum(w * tail, axis=1), 0.0, 1.0)


def decisions(prior: BetaMixture, n: int, criteria: Criterion | Sequence[Criterion]) -> np.ndarray:
    """Success (True) or not for each y = 0..n responders of n: all criteria must hold."""
    criteria = _as_criteria(criteria)
    return np.logical_and.reduce([posterior_tail_probabilities(prior, n, c) > c.probability for c in criteria])


def critical_count(prior: BetaMixture, n: int, criteria: Criterion | Sequence[Criterion]) -> int | None:
    """The boundary of the success set: the smallest successful y for upper-tail criteria (success for
    y at or above it), the largest for lower-tail ones (success at or below it); None if no y succeeds.

    The binomial likelihood orders posteriors stochastically in y for any prior, so an upper-tail
    criterion can only switch on as y grows and a lower-tail one only off; the success set is checked
    to be such a tail all the same."""
    criteria = _as_criteria(criteria)
    lower = _is_lower(criteria)
    success = decisions(prior, n, criteria)
    if not success.any():
        return None
    hits = np.flatnonzero(success)
    boundary = int(hits[-1] if lower else hits[0])
    expected = np.arange(n + 1) <= boundary if lower else np.arange(n + 1) >= boundary
    if not np.array_equal(success, expected):
        raise RuntimeError("the decision is not monotone in the number of responders")
    return boundary


def _success_counts(prior: BetaMixture, n: int, criteria: Criterion | Sequence[Criterion]) -> np.ndarray:
    criteria = _as_criteria(criteria)
    boundary = critical_count(prior, n, criteria)
    if boundary is None:
        return np.arange(0)
    return np.arange(boundary + 1) if _is_lower(criteria) else np.arange(boundary, n + 1)


def operating_characteristics(prior: BetaMixture, n: int, criteria: Criterion | Sequence[Criterion],
                              theta: ArrayLike) -> np.ndarray:
    """P(success | θ) for each θ: a binomial tail beyond the critical count (RBesT's oc1S)."""
    criteria = _as_criteria(criteria)
    theta = np.asarray(theta, dtype=float)
    boundary = critical_count(prior, n, criteria)
    if boundary is None:
        return np.zeros_like(theta)
    if _is_lower(criteria):
        return stats.binom.cdf(boundary, n, theta)
    return stats.binom.sf(boundary - 1, n, theta)


def assurance(prior: BetaMixture, n: int, criteria: Criterion | Sequence[Criterion],
              design_prior: BetaMixture) -> float:
    """P(success) with θ drawn from the design prior: the design prior's beta-binomial predictive
    probability of the successful counts, summed in log space."""
    success = _success_counts(prior, n, criteria)
    if success.size == 0:
        return 0.0
    return float(min(1.0, np.exp(special.logsumexp(_log_predictive_pmf(design_prior, n, success)))))


def mean_precision_mixture(weights: ArrayLike, means: ArrayLike, precisions: ArrayLike) -> BetaMixture:
    """Σ_g w_g Beta(μ_g κ_g, (1 − μ_g) κ_g), weights normalised: how a gridded predictive distribution
    of θ (mean μ_g and precision κ_g at each grid point) becomes a design prior."""
    w = np.asarray(weights, dtype=float)
    mu, kappa = np.asarray(means, dtype=float), np.asarray(precisions, dtype=float)
    if np.any(w < 0) or not w.sum() > 0:
        raise ValueError("weights must be non-negative and not all zero")
    if np.any((mu <= 0) | (mu >= 1)) or np.any(kappa <= 0):
        raise ValueError("means must lie in (0, 1) and precisions be positive")
    return BetaMixture(w / w.sum(), mu * kappa, (1 - mu) * kappa)


# --- normal endpoint ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeanInterval:
    """The sample means (lower, upper) at which a normal-endpoint study succeeds (an open interval;
    ±inf for a one-sided rule; lower ≥ upper when no mean succeeds)."""

    lower: float
    upper: float


def success_region_normal(n: int, sigma: float, criteria: Criterion | Sequence[Criterion],
                          prior_mean: float | None = None, prior_sd: float | None = None) -> MeanInterval:
    """Where the sample mean of n observations (known sd sigma) must fall: the posterior mean is linear
    in the sample mean and the posterior sd does not depend on it, so each criterion is a half-line."""
    if (prior_mean is None) != (prior_sd is None):
        raise ValueError("give both prior_mean and prior_sd for a normal prior, or neither for a flat one")
    se = sigma / np.sqrt(n)
    if prior_sd is None:
        slope, shift, post_sd = 1.0, 0.0, se
    else:
        precision = 1 / prior_sd**2 + 1 / se**2
        slope, shift, post_sd = (1 / se**2) / precision, (prior_mean / prior_sd**2) / precision, precision**-0.5
    lower, upper = -np.inf, np.inf
    for c in _as_criteria(criteria):
        z = stats.norm.ppf(c.probability)
        if c.lower:
            upper = min(upper, (c.threshold - z * post_sd - shift) / slope)
        else:
            lower = max(lower, (c.threshold + z * post_sd - shift) / slope)
    return MeanInterval(float(lower), float(upper))


def operating_characteristics_normal(n: int, sigma: float, criteria: Criterion | Sequence[Criterion], theta: ArrayLike,
                                     prior_mean: float | None = None, prior_sd: float | None = None) -> np.ndarray:
    """P(success | θ) for a normal endpoint (RBesT's oc1S for a normal prior): the sample mean's normal
    probability of the success region."""
    region = success_region_normal(n, sigma, criteria, prior_mean, prior_sd)
    theta = np.asarray(theta, dtype=float)
    se = sigma / np.sqrt(n)
    z_low, z_high = (region.lower - theta) / se, (region.upper - theta) / se
    if np.isinf(region.upper):
        return stats.norm.sf(z_low)
    if np.isinf(region.lower):
        return stats.norm.cdf(z_high)
    return np.clip(stats.norm.cdf(z_high) - stats.norm.cdf(z_low), 0.0, 1.0)


# --- predictive-probability monitoring (Lee & Liu 2008) -------------------------------------------------


def _final_success(prior: BetaMixture, n_max: int, p0: float, theta_t: float) -> int | None:
    return critical_count(prior, n_max, Criterion(p0, theta_t))


def _predictive_tail(prior: BetaMixture, x: int, n: int, n_max: int, final: int | None) -> float:
    """P(X + Y ≥ final) with Y the remaining responders, predicted from the posterior after x of n."""
    remaining = n_max - n
    if final is None or final - x > remaining:
        return 0.0
    y = np.arange(max(final - x, 0), remaining + 1)
    log_pp = special.logsumexp(_log_predictive_pmf(prior.posterior(x, n), remaining, y))
    return float(min(1.0, np.exp(log_pp)))


def predictive_probability(x: int, n: int, n_max: int, prior: BetaMixture, p0: float, theta_t: float) -> float:
    """Lee & Liu's predictive probability: the chance, given x responders of n so far, that the study
    ends (at n_max) with P(θ > p0 | data) > theta_t."""
    if not 0 <= x <= n <= n_max:
        raise ValueError("need 0 ≤ x ≤ n ≤ n_max")
    return _predictive_tail(prior, x, n, n_max, _final_success(prior, n_max, p0, theta_t))


@dataclass(frozen=True)
class InterimBoundary:
    """Stopping rule at an interim look after n patients: stop for futility when responders ≤ futility,
    for efficacy when responders ≥ efficacy; None when that stop cannot happen at this look."""

    n: int
    futility: int | None
    efficacy: int | None


def interim_boundaries(n_looks: Sequence[int], n_max: int, prior: BetaMixture, p0: float, theta_t: float,
                       theta_l: float, theta_u: float) -> list[InterimBoundary]:
    """Boundaries for each look: futility at the largest x with predictive probability below theta_l,
    efficacy at the smallest x with predictive probability above theta_u."""
    if not 0 <= theta_l < theta_u <= 1:
        raise ValueError("need 0 ≤ theta_l < theta_u ≤ 1")
    final = _final_success(prior, n_max, p0, theta_t)
    result = []
    for n in n_looks:
        if not 0 < n <= n_max:
            raise ValueError(f"interim sample size {n} outside 1..n_max")
        pp = np.array([_predictive_tail(prior, x, n, n_max, final) for x in range(n + 1)])
        futile, efficacious = np.flatnonzero(pp < theta_l), np.flatnonzero(pp > theta_u)
        result.append(InterimBoundary(
            n=int(n),
            futility=int(futile[-1]) if futile.size else None,
            efficacy=int(efficacious[0]) if efficacious.size else None,
        ))
    return result


# --- effective sample size of a normal mixture on the logit scale -----------------------------------------


def _normal_parameters(weights: ArrayLike, means: ArrayLike,
                       sds: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w, m, s = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (weights, means, sds))
    if not (w.shape == m.shape == s.shape) or w.ndim != 1:
        raise ValueError("weights, means and sds must be 1-d of equal length")
    if np.any(w < 0) or not np.isclose(w.sum(), 1.0) or np.any(s <= 0):
        raise ValueError("weights must be non-negative and sum to 1, sds positive")
    return w, m, s


def ess_elir_logit(weights: ArrayLike, means: ArrayLike, sds: ArrayLike) -> float:
    """ELIR effective sample size of a normal-mixture prior for η = logit θ with binomial data
    (Neuenschwander et al. 2020; RBesT ≥ 1.8): E_p[ i_p(η) / i_F(η) ], where i_p = −(log p)'' and
    i_F = expit(η)(1 − expit(η)) is one patient's Fisher information.

    With component responsibilities r_k(η) and scores u_k = −(η − m_k)/s_k², the curvature is
    i_p = Σ r_k / s_k² − Var_r(u), a form that needs no second derivative of a small density; the
    integrand p · i_p · (2 + e^η + e^−η) is integrated adaptively, piece by piece between the components'
    centres and the centres of their tilts by e^±η (a normal tilted by e^±η moves by ±s²)."""
    w, m, s = _normal_parameters(weights, means, sds)
    keep = w > 0
    w, m, s = w[keep], m[keep], s[keep]
    log_w = np.log(w)
    with np.errstate(over="ignore"):
        scale = float(np.sum(w * (2 + np.exp(m + s**2 / 2) + np.exp(-m + s**2 / 2)) / s**2))
    if not np.isfinite(scale):
        return float("inf")  # a component far out on the logit scale: the integral diverges numerically

    def integrand(eta: float) -> float:
        log_comp = log_w + stats.norm.logpdf(eta, m, s)
        log_p = special.logsumexp(log_comp)
        r = np.exp(log_comp - log_p)
        u = -(eta - m) / s**2
        curvature = np.sum(r / s**2) - np.sum(r * (u - np.sum(r * u)) ** 2)
        return float(np.exp(log_p + 2 * np.logaddexp(eta / 2, -eta / 2)) * curvature)

    low, high = np.min(m - s**2 - 15 * s), np.max(m + s**2 + 15 * s)
    points = np.concatenate([m, m - s**2, m + s**2, m - 3 * s, m + 3 * s])
    edges = np.unique(np.concatenate([[low, high], points[(points > low) & (points < high)]]))
    total = 0.0
    for left, right in zip(edges[:-1], edges[1:]):
        value, _ = integrate.quad(integrand, left, right, epsabs=1e-13 * scale, epsrel=1e-11, limit=200)
        total += value
    return float(total)


@dataclass(frozen=True)
class NormalMixture:
    """Σ_k w_k N(m_k, s_k²), here a prior for logit θ."""

    weights: np.ndarray
    means: np.ndarray
    sds: np.ndarray

    def __post_init__(self) -> None:
        for name, value in zip(("weights", "means", "sds"), _normal_parameters(self.weights, self.means, self.sds)):
            object.__setattr__(self, name, value)

    def logpdf(self, x: ArrayLike) -> np.ndarray:
        x = np.asarray(x, dtype=float)[..., None]
        with np.errstate(divide="ignore"):
            return special.logsumexp(np.log(self.weights) + stats.norm.logpdf(x, self.means, self.sds), axis=-1)

    def pdf(self, x: ArrayLike) -> np.ndarray:
        return np.exp(self.logpdf(x))

    def cdf(self, x: ArrayLike) -> np.ndarray:
        x = np.asarray(x, dtype=float)[..., None]
        return (self.weights * stats.norm.cdf(x, self.means, self.sds)).sum(axis=-1)

    def mean(self) -> float:
        return float(np.sum(self.weights * self.means))

    def var(self) -> float:
        return float(np.sum(self.weights * (self.sds**2 + self.means**2)) - self.mean() ** 2)

    def ess_elir_logit(self) -> float:
        return ess_elir_logit(self.weights, self.means, self.sds)


def fit_normal_mixture(draws: ArrayLike, max_components: int = 4, min_sd: float | None = None) -> NormalMixture:
    """EM fits with 1..max_components normal components, the lowest AIC winning (ties: fewer components).

    Deterministic: each fit starts from equal-count groups of the sorted draws. Draws of logit θ from a
    predictive distribution that piles up near θ = 1 make components collapse, so every sd is kept at or
    above `min_sd` (default 1% of the draws' sd) and components left with less than two draws' worth of
    responsibility are dropped (the AIC counts the components that remain)."""
    x = np.sort(np.asarray(draws, dtype=float).ravel())
    if x.size < 2 or not np.all(np.isfinite(x)):
        raise ValueError("need at least two finite draws (clip θ away from 0 and 1 before taking logits)")
    if min_sd is None:
        min_sd = max(0.01 * float(x.std()), 1e-8)
    best, best_aic = None, np.inf
    for k in range(1, max_components + 1):
        mixture, loglik = _em_normal(x, k, min_sd)
        aic = 2 * (3 * mixture.weights.size - 1) - 2 * loglik
        if aic < best_aic - 1e-9:
            best, best_aic = mixture, aic
    return best


def _em_normal(x: np.ndarray, k: int, min_sd: float, max_iter: int = 1000,
               tol: float = 1e-3) -> tuple[NormalMixture, float]:
    """EM until the log-likelihood gains less than `tol` (AIC differences that matter are of order 1)."""
    groups = np.array_split(x, k)
    w = np.array([g.size for g in groups], dtype=float) / x.size
    m = np.array([g.mean() for g in groups])
    s = np.array([max(g.std(), min_sd) for g in groups])
    previous = -np.inf
    for _ in range(max_iter):
        log_dens, loglik = _normal_log_densities(x, w, m, s)
        if loglik - previous < tol:
            break
        previous = loglik
        resp = np.exp(log_dens - _column_logsumexp(log_dens))
        mass = resp.sum(axis=1)
        keep = mass >= 2.0
        if not keep.all():
            resp, mass, previous = resp[keep], mass[keep], -np.inf
        w = mass / mass.sum()
        m = resp @ x / mass
        s = np.sqrt(np.maximum(np.einsum("kn,kn->k", resp, (x - m[:, None]) ** 2) / mass, min_sd**2))
    else:
        loglik = _normal_log_densities(x, w, m, s)[1]
    order = np.argsort(m)
    return NormalMixture(w[order], m[order], s[order]), loglik


def _normal_log_densities(x: np.ndarray, w: np.ndarray, m: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, float]:
    """log(w_k φ_k(x_i)) as a components × draws array (reductions over a few long rows are fast), and
    the mixture's log-likelihood."""
    z = (x - m[:, None]) / s[:, None]
    log_dens = (np.log(w) - np.log(s) - 0.5 * np.log(2 * np.pi))[:, None] - 0.5 * z**2
    return log_dens, float(_column_logsumexp(log_dens).sum())


def _column_logsumexp(log_dens: np.ndarray) -> np.ndarray:
    peak = log_dens.max(axis=0)
    return peak + np.log(np.exp(log_dens - peak).sum(axis=0))


# --- randomised withdrawal ------------------------------------------------------------------------------


def _integer_valued(v: np.ndarray) -> bool:
    return bool(np.all((v >= 1) & (v == np.round(v))))


def prob_greater(a1: ArrayLike, b1: ArrayLike, a2: ArrayLike, b2: ArrayLike) -> np.ndarray:
    """P(X > Y) for independent X ~ Beta(a1, b1), Y ~ Beta(a2, b2), broadcast over arrays.

    Exact finite sums when b2 (or, by the mirror X → 1 − X, a1) is a whole number, as with integer
    prior parameters and counts; otherwise numerical integration on the logit scale."""
    a1, b1, a2, b2 = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (a1, b1, a2, b2)))
    if _integer_valued(b2):
        return _prob_greater_series(a1, b1, a2, b2)
    if _integer_valued(a1):
        return _prob_greater_series(b2, a2, b1, a1)
    return _prob_greater_logit(a1, b1, a2, b2)


def _prob_greater_series(a1: np.ndarray, b1: np.ndarray, a2: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """For whole-number b2, P(Y ≤ x) = Σ_{j<b2} Γ(a2 + j)/(Γ(a2) j!) x^a2 (1 − x)^j, and the expectation
    of each term under X is a ratio of Beta functions: a sum of positive terms, each at most 1."""
    total = np.zeros(a1.shape)
    base = -special.gammaln(a2) - special.betaln(a1, b1)
    for j in range(int(b2.max()) if b2.size else 0):
        term = np.exp(base + special.gammaln(a2 + j) - special.gammaln(j + 1.0) + special.betaln(a1 + a2, b1 + j))
        total += np.where(j < b2, term, 0.0)
    return np.clip(total, 0.0, 1.0)


def _prob_greater_logit(a1: np.ndarray, b1: np.ndarray, a2: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """∫ q(t) P(Y < expit t) dt with q the density of logit X: a smooth log-concave bump with exponential
    tails, on which the trapezoidal rule converges geometrically. Each grid spans the integrand down to
    about e^-40 of its peak (the left tail decays as e^((a1 + a2) t), the right as e^(−b1 t)) in steps of at
    most a quarter of either variable's logit-scale sd; elements needing similar grids are integrated
    together."""
    shape = a1.shape
    a1, b1, a2, b2 = (v.ravel() for v in (a1, b1, a2, b2))
    sd_x, sd_y = np.sqrt(1 / a1 + 1 / b1), np.sqrt(1 / a2 + 1 / b2)
    centre = np.log(a1 / b1)
    low, high = centre - 10 * sd_x - 40 / (a1 + a2), centre + 10 * sd_x + 40 / b1
    need = np.ceil((high - low) / np.minimum(0.25, np.minimum(sd_x, sd_y) / 4)).astype(int) + 1
    out = np.empty(a1.size)
    order = np.argsort(need)
    for chunk in np.array_split(order, max(1, order.size // 256)):
        nodes = int(need[chunk].max())
        lo, hi = low[chunk, None], high[chunk, None]
        t = lo + (hi - lo) * np.linspace(0.0, 1.0, nodes)
        x1, y1, x2, y2 = a1[chunk, None], b1[chunk, None], a2[chunk, None], b2[chunk, None]
        log_q = x1 * t - (x1 + y1) * np.logaddexp(0.0, t) - special.betaln(x1, y1)
        values = np.exp(log_q) * special.betainc(x2, y2, special.expit(t))
        h = (hi - lo)[:, 0] / (nodes - 1)
        out[chunk] = h * (values.sum(axis=1) - 0.5 * (values[:, 0] + values[:, -1]))
    return np.clip(out, 0.0, 1.0).reshape(shape)


def _withdrawal_success(n_per_arm: int, probability: float, prior: tuple[float, float]) -> np.ndarray:
    """success[y_stop, y_continue]: P(p_stop > p_continue | data) > probability."""
    a, b = prior
    y = np.arange(n_per_arm + 1, dtype=float)
    y_stop, y_continue = y[:, None], y[None, :]
    p = prob_greater(a + y_stop, b + n_per_arm - y_stop, a + y_continue, b + n_per_arm - y_continue)
    return p > probability


def withdrawal_power(n_per_arm: int, p_stop: float, p_continue: float, probability: float = 0.9,
                     prior: tuple[float, float] = (1.0, 1.0)) -> float:
    """P(success) of a randomised withdrawal with n_per_arm responders per arm, given the flare rates
    off (p_stop) and on (p_continue) the drug: the exact double binomial sum over successful outcomes."""
    k = np.arange(n_per_arm + 1)
    success = _withdrawal_success(n_per_arm, probability, prior)
    return float(stats.binom.pmf(k, n_per_arm, p_stop) @ success @ stats.binom.pmf(k, n_per_arm, p_continue))


def withdrawal_assurance(n_per_arm: int, design_stop: BetaMixture, design_continue: BetaMixture,
                         probability: float = 0.9, prior: tuple[float, float] = (1.0, 1.0)) -> float:
    """P(success) with both flare rates drawn from their design priors: the same double sum over each
    arm's beta-binomial predictive."""
    k = np.arange(n_per_arm + 1)
    success = _withdrawal_success(n_per_arm, probability, prior)
    f_stop = np.exp(_log_predictive_pmf(design_stop, n_per_arm, k))
    f_continue = np.exp(_log_predictive_pmf(design_continue, n_per_arm, k))
    return float(min(1.0, f_stop @ success @ f_continue))


def discounted_design_prior(events: int, patients: int, power: float) -> BetaMixture:
    """Beta(1 + power·events, 1 + power·(patients − events)): a power prior that counts a handful of
    dechallenge observations as `power` of a patient each."""
    if not 0 <= events <= patients:
        raise ValueError("need 0 ≤ events ≤ patients")
    if not 0.0 <= power <= 1.0:
        raise ValueError("power must lie in [0, 1]")
    return BetaMixture.single(1.0 + power * events, 1.0 + power * (patients - events))
