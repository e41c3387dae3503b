"""Borrowing strength for a new arm: the robust meta-analytic-predictive (MAP) prior, step by step.

The MAP prior is the posterior predictive θ_new of a new report from a fitted hierarchical model. These
pure functions approximate it by a mixture of Beta densities (EM, components chosen by AIC), robustify it
with a vague component, update it exactly with the new arm's counts (the Beta mixture is conjugate to the
binomial), and measure how much it borrows (effective sample size) and whether the new data conflict
with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize, special, stats

RESOLUTION = 1e-10
"""Draws are clipped into [RESOLUTION, 1 − RESOLUTION] before taking logs: a mixture fitted to draws cannot
tell values closer than this to 0 or 1 apart (draws of tiny Beta shapes underflow to exactly 0 or 1)."""


@dataclass(frozen=True)
class BetaMixture:
    """Σ_k w_k Beta(a_k, b_k)."""

    weights: np.ndarray
    a: np.ndarray
    b: np.ndarray

    def __post_init__(self):
        for name in ("weights", "a", "b"):
            object.__setattr__(self, name, np.atleast_1d(np.asarray(getattr(self, name), dtype=float)))

    @classmethod
    def single(cls, a: float, b: float) -> "BetaMixture":
        return cls([1.0], [a], [b])

    def components(self) -> list[tuple[float, float, float]]:
        return [(float(w), float(a), float(b)) for w, a, b in zip(self.weights, self.a, self.b)]

    def pdf(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)[..., None]
        return (self.weights * stats.beta.pdf(x, self.a, self.b)).sum(axis=-1)

    def cdf(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)[..., None]
        return (self.weights * stats.beta.cdf(x, self.a, self.b)).sum(axis=-1)

    def mean(self) -> float:
        return float(np.sum(self.weights * self.a / (self.a + self.b)))

    def var(self) -> float:
        m_k = self.a / (self.a + self.b)
        second = m_k * (self.a + 1) / (self.a + self.b + 1)
        return float(np.sum(self.weights * second) - self.mean() ** 2)

    def quantile(self, q: float) -> float:
        return float(optimize.brentq(lambda x: float(self.cdf(x)) - q, 0.0, 1.0, xtol=1e-12))

    def prob_above(self, c: float) -> float:
        return float(1.0 - self.cdf(c))

    def summary(self) -> dict:
        return {
            "mean": self.mean(),
            "median": self.quantile(0.5),
            "sd": float(np.sqrt(self.var())),
            "ci95": [self.quantile(0.025), self.quantile(0.975)],
        }

    def predictive_pmf(self, n: int) -> np.ndarray:
        """P(Y = k), k = 0..n, for Y ~ Binomial(n, θ), θ ~ this mixture (a mixture of beta-binomials)."""
        k = np.arange(n + 1)[:, None]
        return (self.weights * stats.betabinom.pmf(k, n, self.a, self.b)).sum(axis=-1)

    def posterior(self, y: int, n: int) -> "BetaMixture":
        """Exact conjugate update: each component updates as Beta(a + y, b + n − y), and its weight by
        its marginal likelihood of the data."""
        log_w = np.log(self.weights) + stats.betabinom.logpmf(y, n, self.a, self.b)
        return BetaMixture(np.exp(log_w - special.logsumexp(log_w)), self.a + y, self.b + n - y)


def robustify(mixture: BetaMixture, weight: float, vague: tuple[float, float] = (1.0, 1.0)) -> BetaMixture:
    """(1 − weight) · mixture + weight · Beta(vague); weight 0 returns the mixture unchanged."""
    if weight <= 0:
        return mixture
    if weight >= 1:
        return BetaMixture.single(*vague)
    return BetaMixture(
        np.append((1 - weight) * mixture.weights, weight), np.append(mixture.a, vague[0]), np.append(mixture.b, vague[1])
    )


# --- fitting a mixture to draws ----------------------------------------------------------------------


@dataclass(frozen=True)
class MixtureFit:
    mixture: BetaMixture
    aic: dict[int, float]
    """AIC of the best fit with each number of components tried."""
    ks_distance: float
    """sup |F_mixture − ECDF(draws)|: the largest error in any tail probability."""


def fit_beta_mixture(draws, max_components: int = 4, constrain_gt1: bool = True) -> MixtureFit:
    """EM fit of Beta mixtures with 1, 2, ... components, adding components while AIC improves (up to
    `max_components`); the lowest AIC wins.

    `constrain_gt1` keeps every a, b ≥ 1 (RBesT's `constrain_gt1`): the ELIR effective sample size
    is undefined otherwise (its defining integral diverges). The price, a poorer fit where the draws
    pile up at 0 or 1, is reported as the KS distance.
    """
    x = np.clip(np.sort(np.asarray(draws, dtype=float).ravel()), RESOLUTION, 1 - RESOLUTION)
    lower = 1.0 if constrain_gt1 else 1e-3
    fits, aic = {}, {}
    for k in range(1, max_components + 1):
        fits[k] = _em(x, k, lower)
        aic[k] = 2 * (3 * k - 1) - 2 * fits[k][1]
        if k > 1 and aic[k] >= aic[k - 1]:
            break
    best = min(aic, key=aic.get)
    mixture = fits[best][0]
    return MixtureFit(mixture=mixture, aic=aic, ks_distance=ks_distance(mixture, x))


def ks_distance(mixture: BetaMixture, draws) -> float:
    x = np.sort(np.asarray(draws, dtype=float).ravel())
    cdf = mixture.cdf(x)
    n = x.size
    return float(max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n)))


def _em(x: np.ndarray, k: int, lower: float, max_iter: int = 1000, tol: float = 1e-3) -> tuple[BetaMixture, float]:
    """EM until the log-likelihood gains less than `tol` (AIC differences that matter are of order 1)."""
    log_x, log_1mx = np.log(x), np.log1p(-x)
    # Deterministic start: equal-count groups of the sorted draws, moment-matched.
    groups = np.array_split(x, k)
    a = np.array([_moment_beta(g)[0] for g in groups]).clip(lower)
    b = np.array([_moment_beta(g)[1] for g in groups]).clip(lower)
    w = np.full(k, 1.0 / k)
    previous = -np.inf
    # Components along the first axis (k × N): reductions over a few contiguous rows are far faster than
    # over a short trailing axis of an N × k array.
    logs = np.stack([log_x, log_1mx])  # 2 × N: the Beta's sufficient statistics
    for _ in range(max_iter):
        log_dens = np.stack([a - 1, b - 1], axis=1) @ logs + (np.log(w) - special.betaln(a, b))[:, None]
        peak = log_dens.max(axis=0)
        resp = np.exp(log_dens - peak)
        total = resp.sum(axis=0)
        loglik = float(np.sum(np.log(total) + peak))
        if loglik - previous < tol:
            break
        previous = loglik
        resp /= total
        mass = np.maximum(resp.sum(axis=1), 1e-300)
        w = mass / mass.sum()
        s1, s2 = (resp @ logs.T).T / mass
        a, b = _weighted_beta_mle(s1, s2, a, b, lower, max_iter=20)
    return BetaMixture(w, a.copy(), b.copy()), loglik


def _moment_beta(x: np.ndarray) -> tuple[float, float]:
    m, v = x.mean(), max(x.var(), 1e-12)
    common = max(m * (1 - m) / v - 1, 1e-3)
    return m * common, (1 - m) * common


def _weighted_beta_mle(s1, s2, a, b, lower: float, max_iter: int = 50):
    """Maximise (a − 1)·s1 + (b − 1)·s2 − log B(a, b) for every component at once (concave in (a, b)):
    Newton steps, damped to at most a factor 4 per step, projected onto a, b ≥ `lower`."""
    a, b = np.array(a, dtype=float), np.array(b, dtype=float)
    for _ in range(max_iter):
        t_ab, d_ab = special.polygamma(1, a + b), special.digamma(a + b)
        ga, gb = s1 - special.digamma(a) + d_ab, s2 - special.digamma(b) + d_ab
        haa, hbb, hab = t_ab - special.polygamma(1, a), t_ab - special.polygamma(1, b), t_ab
        det = haa * hbb - hab**2
        da, db = (hab * gb - hbb * ga) / det, (hab * ga - haa * gb) / det
        # A component pinned at the bound moves only along the other parameter.
        pin_a = (a <= lower) & (a + da < lower)
        pin_b = (b <= lower) & (b + db < lower)
        da, db = np.where(pin_a, 0.0, da), np.where(pin_b, 0.0, db)
        db = np.where(pin_a & ~pin_b, -gb / hbb, db)
        da = np.where(pin_b & ~pin_a, -ga / haa, da)
        new_a = np.clip(a + da, np.maximum(a / 4, lower), a * 4)
        new_b = np.clip(b + db, np.maximum(b / 4, lower), b * 4)
        done = np.all(np.abs(new_a - a) <= 1e-10 * a) and np.all(np.abs(new_b - b) <= 1e-10 * b)
        a, b = new_a, new_b
        if done:
            break
    return a, b


# --- how much the prior borrows ------------------------------------------------------------------------


def ess_moment(mean: float, var: float) -> float:
    """a + b of the single Beta with this mean and variance (conservative); works on draws directly."""
    return float(mean * (1 - mean) / var - 1)


def ess_elir(mixture: BetaMixture) -> float:
    """Expected local information ratio (Neuenschwander et al. 2020): E_prior[ i(θ) / i_F(θ) ], with
    i(θ) = −(log p)''(θ) the prior's curvature and i_F(θ) = 1/(θ(1 − θ)) the Fisher information of one
    patient. Predictively consistent: a single Beta(a, b) with a, b > 1 has ESS a + b."""
    if np.any(mixture.a < 1) or np.any(mixture.b < 1):
        raise ValueError("ELIR ESS is undefined when a Beta component has a or b below 1 (the integral diverges)")
    w, a, b = mixture.weights, mixture.a, mixture.b

    def integrand(t: float) -> float:
        # θ = expit(t): peaked components near 0 or 1 become smooth bumps on the logit scale.
        theta = special.expit(t)
        one_minus = special.expit(-t)
        log_f = np.log(w) + (a - 1) * np.log(theta) + (b - 1) * np.log(one_minus) - special.betaln(a, b)
        f = np.exp(log_f - log_f.max())  # scaled; the scale cancels below except in p
        g = (a - 1) / theta - (b - 1) / one_minus
        h = -(a - 1) / theta**2 - (b - 1) / one_minus**2
        p, dp, d2p = f.sum(), (f * g).sum(), (f * (g**2 + h)).sum()
        # (p'^2/p − p'')·θ(1 − θ), times dθ/dt = θ(1 − θ); undo the scaling of f.
        return float((dp**2 / p - d2p) * np.exp(log_f.max()) * (theta * one_minus) ** 2)

    centres = special.logit(np.clip(a / (a + b), 1e-12, 1 - 1e-12))
    value, _ = integrate.quad(integrand, -60.0, 60.0, points=sorted(set(np.round(centres, 6))), limit=1000,
                              epsabs=1e-10, epsrel=1e-9)
    return float(value)


def total_variation(p: BetaMixture, q: BetaMixture, points: int = 20001) -> float:
    """Total-variation distance ½∫|p − q| between two Beta mixtures on [0, 1].

    Numerical integration on a grid: the densities' crossing points are located on `points` grid points
    and refined by root finding, and ∫(p − q)⁺ is summed from the exact mixture CDFs between crossings
    (the densities can be unbounded at 0 and 1, where a Riemann sum of |p − q| would be inaccurate)."""
    x = np.linspace(0.0, 1.0, points)[1:-1]
    difference = p.pdf(x) - q.pdf(x)
    sign = np.sign(difference)
    crossings = []
    for i in np.nonzero(sign[:-1] * sign[1:] < 0)[0]:
        crossings.append(optimize.brentq(lambda t: float(p.pdf(t) - q.pdf(t)), x[i], x[i + 1], xtol=1e-13))
    edges = np.array([0.0, *crossings, 1.0])
    mass = np.diff(p.cdf(edges)) - np.diff(q.cdf(edges))
    return float(np.clip(np.sum(np.clip(mass, 0, None)), 0.0, 1.0))



def box_conflict_p(prior: BetaMixture, y: int, n: int) -> float:
    """Box's prior predictive p-value: the probability, before the data, of a result at most as likely
    as the one observed. Small values flag prior-data conflict."""
    pmf = prior.predictive_pmf(n)
    return float(np.clip(pmf[pmf <= pmf[y] * (1 + 1e-12)].sum(), 0.0, 1.0))
