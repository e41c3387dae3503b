"""How far the answer rests on selective publication: fixed scenarios, the tipping-point curve, and one
bias-integrated answer with the selection strength given a prior and integrated out.

The mechanism is the one case reports are most exposed to: a report in which every patient responded is
always published, any other with relative probability ω (`models.publication`), exactly for each report's
size. For every ω the posterior is the same model's exact posterior (`analysis.engine.quadrature`), on one
grid that holds the posteriors from ω = 1 down to `bias.omega_min`, so that their evidences p(y | ω) can be
compared: the posterior of ω is p(ω) p(y | ω) up to a constant, and the ω-averaged posterior of the
population parameters is the mixture of the fixed-ω posteriors with those weights. The integral over
log ω is Gauss-Legendre; the tipping points are roots found on the exact evaluations.

Selection that depends on report size (ω(n)) would need reports with a non-responder at several sizes
to be told apart from selection that does not; the step says whether the data have them.
"""

from __future__ import annotations

import dataclasses
import math
from types import ModuleType

import numpy as np
from scipy import interpolate, optimize, special

from analysis.engine import quadrature
from analysis.engine.programs import ModelCache
from analysis.engine.quadrature import Exact
from analysis.inputs.bundle import Inputs
from analysis.results import Estimate, Primary
from analysis.results.publication import Averaged, Publication, Scenario, TippingPoint
from analysis.steps import estimates as est
from analysis.steps.primary import exact_population, headline, model_reports, pooled_estimate
from models.families import FAMILIES, model_spec
from models.grid import GridPosterior
from models.publication import in_scope

MECHANISM = "all_responders"
MAX_FAILURES = 500
STRONG = 0.1
"""ω below this is "strong" selection: reports with a non-responder ten times less likely to be published."""


class _Omega:
    """The exact posterior of one data set as a function of ω, on one grid for every ω."""

    def __init__(self, inputs: Inputs, cache: ModelCache, mechanism: str, omega_min: float):
        config, data = inputs.config, inputs.data
        self.family = FAMILIES[config.model.family]
        self.cache = cache
        self.mechanism = mechanism
        base = model_reports(config, data, inputs.design)
        self.reports = type(base)(base.y, base.n, base.covariates, in_scope(mechanism, data.n), 1.0)
        self.spec = model_spec(config.model.family, self.reports, config.model.prior)
        self.unadjusted = model_spec(config.model.family, base, config.model.prior)
        boxes = {w: quadrature.box(cache, self.spec, self.values(w)) for w in (1.0, STRONG, omega_min)}
        ends = [quadrature.posterior(cache, self.spec, headline(self.family, predictive=False), values=self.values(w),
                                     on=boxes[w], tolerance=self.family.quadrature_tolerance) for w in (1.0, omega_min)]
        self.box = quadrature.union(*boxes.values())
        self.nodes = max(e.nodes for e in ends)
        self.error = max(e.error for e in ends)
        self._cache: dict[float, Exact] = {}

    def values(self, omega: float) -> dict:
        return {**self.spec.values, "publication_weight": np.float64(omega)}

    def exact(self, omega: float) -> Exact:
        if omega not in self._cache:
            self._cache[omega] = quadrature.on_box(self.cache, self.spec, self.box, self.nodes, self.values(omega),
                                                   error=self.error)
        return self._cache[omega]

    def pooled(self, omega: float) -> Estimate:
        return pooled_estimate(self.family, self.exact(omega))


def analyse(inputs: Inputs, primary: Primary, cache: ModelCache) -> Publication:
    """The scenarios, the tipping points and the ω-averaged answer (see the module docstring)."""
    settings = inputs.config.bias
    data = inputs.data
    omega = _Omega(inputs, cache, MECHANISM, settings.omega_min)
    family = omega.family
    nodes, weights = _log_omega_rule(settings.omega_min, settings.omega_nodes)
    exacts = [omega.exact(float(w)) for w in nodes]
    curve_omegas = np.concatenate([[1.0], nodes[::-1], [settings.omega_min]])
    curve = [omega.pooled(float(w)) for w in curve_omegas]
    scenarios = tuple(_scenario(omega, w, primary, f"publication_all_w{round(100 * w):03d}")
                      for w in settings.scenarios)
    if settings.single_patient_scenarios and (data.n == 1).any():
        single = _Omega(inputs, cache, "single_patient", min(settings.single_patient_scenarios))
        scenarios += tuple(_scenario(single, w, primary, f"publication_single_w{round(100 * w):03d}")
                           for w in settings.single_patient_scenarios)
    failures = _Failures(primary, family, omega.unadjusted, omega.cache)
    tipping = tuple(
        _tipping(omega, failures, quantity, threshold, settings.omega_min)
        for quantity, threshold in [("mean", t) for t in settings.thresholds] + [("lower", settings.lower_bound_threshold)])
    averaged = {prior: _averaged(family, exacts, nodes, weights, prior, settings.omega_min)
                for prior in ("log_uniform", "uniform")}
    other = "uniform" if settings.omega_prior == "log_uniform" else "log_uniform"
    nonresponders = data.n[data.y < data.n]
    return Publication(
        mechanism=MECHANISM, omega_min=settings.omega_min,
        curve={"omega": curve_omegas.tolist(), "mean": [e.mean for e in curve], "lo": [e.lo for e in curve],
               "hi": [e.hi for e in curve]},
        scenarios=scenarios, tipping=tipping, averaged=averaged[settings.omega_prior],
        averaged_sensitivity=averaged[other], nonresponder_reports=int(nonresponders.size),
        nonresponder_min_n=int(nonresponders.min()) if nonresponders.size else None,
        size_dependent=_size_dependence(data.y, data.n), numerical_error=omega.error, grids=omega)


def _log_omega_rule(omega_min: float, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights for ∫ f(ω) d log ω over [omega_min, 1], nodes as ω (increasing)."""
    x, w = np.polynomial.legendre.leggauss(count)
    low = math.log(omega_min)
    return np.exp(low / 2 * (1 - x)), -low / 2 * w


def _scenario(omega: _Omega, weight: float, primary: Primary, variant: str) -> Scenario:
    population = exact_population(omega.family, omega.exact(weight))
    return Scenario(variant, omega.mechanism, weight,
                    population.pooled, population.predictive, population.pooled.mean - primary.pooled.mean)


def _tipping(omega: _Omega, failures: _Failures, quantity: str, threshold: float, omega_min: float) -> TippingPoint:
    """The ω at which the pooled mean (or its 95% lower bound) falls to `threshold`, by root-finding in
    log ω on the exact posteriors; and the unpublished single-patient failures that would do the same."""
    def value(log_w: float) -> float:
        pooled = omega.pooled(math.exp(log_w))
        return (pooled.mean if quantity == "mean" else pooled.lo) - threshold

    count = failures.needed(quantity, threshold)
    if value(0.0) <= 0:
        return TippingPoint(quantity, threshold, True, 1.0, 1.0, 0)
    if value(math.log(omega_min)) > 0:
        return TippingPoint(quantity, threshold, False, None, None, count)
    root = optimize.brentq(value, math.log(omega_min), 0.0, xtol=1e-6)
    return TippingPoint(quantity, threshold, True, math.exp(root), math.exp(-root), count)


class _Failures:
    """The smallest number m of added single-patient reports with no response (likelihood p(0 | 1, φ)^m)
    that brings the unadjusted estimand to a threshold; None beyond `MAX_FAILURES` or without a grid. The
    posteriors for 0..m failures lie between those for 0 and m, so one box holding both serves them all.
    The posteriors of the doubling search are shared by every threshold."""

    def __init__(self, primary: Primary, family: ModuleType, spec, cache: ModelCache):
        self.primary, self.family, self.spec, self.cache = primary, family, spec, cache
        self._with: dict[int, Exact] = {}
        self._between: dict[int, tuple[Exact, np.ndarray]] = {}

    def _log_failure(self, named):
        return self.family.log_marginal(named, [0], [1])[..., 0]

    def _estimand(self, exact: Exact, quantity: str) -> float:
        pooled = pooled_estimate(self.family, exact)
        return pooled.mean if quantity == "mean" else pooled.lo

    def _with_failures(self, m: int) -> Exact:
        if m not in self._with:
            self._with[m] = quadrature.posterior(self.cache, self.spec, headline(self.family, predictive=False),
                                                 extra=lambda named: m * self._log_failure(named), tolerance=1e-4)
        return self._with[m]

    def _grid_up_to(self, high: int) -> tuple[Exact, np.ndarray]:
        """One grid holding the posteriors for 0..`high` failures, and the log likelihood of one failure on it."""
        if high not in self._between:
            failed = quadrature.box(self.cache, self.spec, extra=lambda v: high * self._log_failure(v))
            region = quadrature.union(quadrature.box(self.cache, self.spec), failed)
            base = quadrature.on_box(self.cache, self.spec, region, self.primary.exact.nodes)
            self._between[high] = base, self._log_failure(base.values)
        return self._between[high]

    def needed(self, quantity: str, threshold: float) -> int | None:
        if self.primary.exact is None:
            return None
        if self._estimand(self.primary.exact, quantity) <= threshold:
            return 0
        high = 8
        while not self._estimand(self._with_failures(high), quantity) <= threshold:
            high *= 2
            if high > MAX_FAILURES:
                return None
        base, per_failure = self._grid_up_to(high)
        lo, hi = 0, high
        while hi - lo > 1:
            middle = (lo + hi) // 2
            below = self._estimand(base.reweighted(middle * per_failure), quantity) <= threshold
            lo, hi = (lo, middle) if below else (middle, hi)
        return hi


def _averaged(family: ModuleType, exacts: list[Exact], omegas: np.ndarray, rule: np.ndarray, prior: str,
              omega_min: float) -> Averaged:
    """The posterior with ω integrated out under `prior`: the mixture over the ω nodes of the fixed-ω
    posteriors, each weighted by its quadrature weight × prior density (in log ω) × evidence p(y | ω)."""
    log_prior = _log_prior_in_log_omega(prior, omegas, omega_min)
    log_c = np.log(rule) + log_prior
    stacked = np.stack([e.grid.log_density for e in exacts])
    combined = special.logsumexp(stacked + log_c.reshape(-1, *([1] * (stacked.ndim - 1))), axis=0)
    first = exacts[0]
    mixed = dataclasses.replace(first, grid=GridPosterior(first.grid.axes, combined, first.grid.truncated))
    population = exact_population(family, mixed)
    log_evidence = np.array([e.grid.log_evidence for e in exacts])
    posterior_omega = _omega_estimate(omegas, log_prior + log_evidence, omega_min)
    prior_omega = _omega_estimate(omegas, log_prior, omega_min)
    return Averaged(prior, population.pooled, population.predictive, prior_omega[0], posterior_omega[0],
                    prior_omega[1], posterior_omega[1],
                    {"omega": posterior_omega[2]["omega"], "prior": prior_omega[2]["density"],
                     "posterior": posterior_omega[2]["density"]}, mixed)


def _log_prior_in_log_omega(prior: str, omegas: np.ndarray, omega_min: float) -> np.ndarray:
    """log density of log ω: log-uniform on [omega_min, 1] is flat in log ω; uniform on (0, 1) is ω d log ω
    (its mass below omega_min, omega_min itself, is left out: the likelihood vanishes there)."""
    if prior == "log_uniform":
        return np.full(omegas.shape, -math.log(-math.log(omega_min)))
    return np.log(omegas)


def _omega_estimate(omegas: np.ndarray, log_density: np.ndarray, omega_min: float) -> tuple[Estimate, float, dict]:
    """A distribution of ω from its log density (in log ω) at the nodes: interpolated by a cubic spline in
    log ω, integrated on a fine grid; P(ω < `STRONG`); and the normalised density of log ω on 101 points."""
    spline = interpolate.CubicSpline(np.log(omegas), log_density)
    fine = np.linspace(math.log(omega_min), 0.0, 4001)
    density = np.exp(spline(fine) - spline(fine).max())
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(fine))])
    cdf /= cdf[-1]
    mass = np.diff(cdf)
    middle = np.exp(0.5 * (fine[1:] + fine[:-1]))
    mean = float(mass @ middle)
    sd = float(np.sqrt(max(mass @ middle**2 - mean**2, 0.0)))
    lo, median, hi = (float(np.exp(np.interp(q, cdf, fine))) for q in (est.LOWER, 0.5, est.UPPER))
    strong = float(np.interp(math.log(STRONG), fine, cdf)) if STRONG > omega_min else 0.0
    shown = fine[::40]
    area = float(np.sum(0.5 * (density[1:] + density[:-1]) * np.diff(fine)))
    curve = {"omega": np.exp(shown).tolist(), "density": (density[::40] / area).tolist()}
    return Estimate(mean, median, sd, lo, hi, "exact", 0.0), strong, curve


def _size_dependence(y: np.ndarray, n: np.ndarray) -> str:
    """Selection that depends on size can be told apart from selection that does not only when reports
    with a non-responder come in several sizes, single patients among them."""
    sizes = set(n[y < n].tolist())
    return "identifiable, not modelled" if len(sizes) >= 2 and 1 in sizes else "not identifiable"
