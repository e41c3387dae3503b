"""The target arm (naloxone by default), informed by the pooled reports through a robust meta-analytic-
predictive (MAP) prior.

The MAP prior is the reports' predictive distribution for a new report's θ; robustified, it is
(1 − w)·MAP + w·Beta(vague), and updated with the arm's counts it gives exactly the joint EXNEX model's
θ_target (`models.joint`). On the primary model's grid the MAP prior is known exactly (a mixture of
Beta(μκ, (1 − μ)κ) over the grid), so the answer is exact: the reports' posterior reweighted by the arm's
marginal likelihood, θ_target's conditional mixed over it. RBesT's route, the MAP prior approximated by a
fitted Beta mixture (EM, AIC), is computed beside it for every weight of the sweep, and NUTS fits the
joint model as a cross-check.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from analysis.engine.fitting import fit
from analysis.engine.programs import ModelCache
from analysis.engine.quadrature import Exact
from analysis.engine.seeds import Seeds
from analysis.inputs.bundle import Inputs
from analysis.results import Estimate, Primary
from analysis.results.borrowing import Conflict, TargetArm, WeightRow
from analysis.steps import estimates as est
from analysis.steps.clinical import safety
from models import joint
from models.design import fit_normal_mixture
from models.families import FAMILIES, target_spec
from models.mixtures import BetaMixture, ess_moment, fit_beta_mixture, robustify

MAP_SAMPLE = 8000
MAP_SAMPLE_SEED = 20261204
"""The MAP prior's Beta and normal mixtures are fitted to `MAP_SAMPLE` draws of the exact predictive made with
this fixed seed, not the run's: the fits, and the designs and effective sample sizes that use them, are then
the same at any seed (their error is the fit's, reported as the KS distance)."""
"""Draws of logit θ_new from the exact predictive (fixed stream) to which the normal mixture of the
logit-scale ESS is fitted."""


def why_not(inputs: Inputs, target_y: int | None) -> str | None:
    """Why the arm cannot be computed on these inputs (a sentence), or None when it can."""
    settings, config = inputs.config.borrowing, inputs.config
    if config.model.covariates:
        return (f"the {settings.target_drug} arm is computed without covariates only (it would need the "
                "target's own covariate values)")
    if target_y is None:
        return (f"no included report of drug '{settings.target_drug}' has a count in column n_{config.data.outcome}; "
                f"the {settings.target_drug} arm was not computed")
    return None


def analyse(inputs: Inputs, primary: Primary, cache: ModelCache) -> TargetArm:
    config = inputs.config
    settings = config.borrowing
    family = FAMILIES[config.model.family]
    arm = inputs.target(settings.target_drug)
    y, n = int(arm.y.sum()), int(arm.n.sum())
    vague, w = settings.vague, settings.robust_weight
    grid = primary.exact
    seeds = Seeds(config.sampling.seed)

    def exact_target(weight: float) -> tuple[Estimate, Exact]:
        joined = grid.reweighted(joint.target_log_likelihood(family, grid.values, y, n, weight, vague))
        estimate = est.mixture(joined, lambda v: joint.target_theta_cdf(family, v, y, n, weight, vague),
                               lambda v: joint.target_theta_moments(family, v, y, n, weight, vague),
                               lambda v: joint.target_theta_pdf(family, v, y, n, weight, vague))
        return estimate, joined

    posterior, joined = exact_target(w)
    p_exchangeable = joined.grid.expectation(joint.exchangeable_probability(family, joined.values, y, n, w, vague))
    logits = _logit_sample(family, grid, np.random.default_rng(MAP_SAMPLE_SEED))
    em_fit = fit_beta_mixture(special.expit(logits), settings.max_components, constrain_gt1=False)
    sweep = tuple(WeightRow(weight, exact_target(weight)[0],
                            est.of_mixture(robustify(em_fit.mixture, weight, vague).posterior(y, n)))
                  for weight in sorted(set(settings.weight_sweep) | {w}))
    possible = _conflict_p(family, grid, n)
    normal = fit_normal_mixture(logits, settings.max_components)
    moments = primary.predictive
    map_moment = ess_moment(moments.mean, moments.sd**2)
    robust_moment = _robust_moment(moments.mean, moments.sd**2, w, vague)
    joint_fit = _joint_nuts(config, primary, family, y, n, cache, seeds)
    cdfs = _cdfs(family, grid, joined, y, n, w, vague)
    joint_estimate = est.of_draws(joint_fit.posterior["theta_target"].values)
    target_cdf = joint.target_theta_cdf(family, joined.values, y, n, w, vague)
    return TargetArm(
        target_drug=settings.target_drug, reports=tuple(arm.report_ids), y=y, n=n, robust_weight=w,
        vague_prior=tuple(vague),
        unborrowed=est.of_distribution(stats.beta(vague[0] + y, vague[1] + n - y)),
        posterior=posterior, posterior_robust_weight=1.0 - p_exchangeable,
        p_above={f"{c:g}": 1.0 - joined.grid.expectation(
            target_cdf(c)) for c in settings.thresholds},
        map_prior_ess={"moment": map_moment, "elir_logit": _finite(normal.ess_elir_logit()),
                       "normal_mixture": [[float(a), float(b), float(c)] for a, b, c in
                                          zip(normal.weights, normal.means, normal.sds)]},
        robust_prior_ess=robust_moment,
        map_fit={"components": [[float(a), float(b), float(c)] for a, b, c in em_fit.mixture.components()],
                 "ks_distance": em_fit.ks_distance, "aic": {str(k): v for k, v in em_fit.aic.items()}},
        conflict=Conflict(possible[y], settings.conflict_alpha, bool(possible[y] < settings.conflict_alpha),
                          tuple(possible), float(min(possible)), bool(min(possible) < settings.conflict_alpha),
                          tuple(k for k, p in enumerate(possible) if p < settings.conflict_alpha)),
        posterior_map_distance=_total_variation(cdfs),
        sweep=sweep,
        joint_check={"estimate": joint_estimate, "difference": joint_estimate.mean - posterior.mean,
                     "weight": w},
        joint_convergence=joint_fit.convergence,
        safety=safety(inputs.table.frame, settings.target_drug),
        densities=_densities(cdfs, y, n, w, vague),
        idata=joint_fit.idata, mixtures={"em": em_fit, "normal": normal})


ESS_BOUND = 1e4
"""An ELIR above this many patients is read as unbounded: it comes from a mixture component far out on the
logit scale (a prior piled against θ = 1), where the integral is finite only numerically."""


def _finite(value: float) -> float | None:
    """None for an ESS whose defining integral diverges (a prior piled against θ = 1, where one patient's
    information θ(1 − θ) vanishes, is worth unboundedly many patients by the ELIR)."""
    return float(value) if np.isfinite(value) and value < ESS_BOUND else None


def _conflict_p(family, grid: Exact, n: int) -> list[float]:
    """Box's p-value for every possible count of the arm, from the exact MAP prior's predictive pmf
    (the reports' marginal probability of k of n responders, averaged over their posterior)."""
    pmf = np.array([grid.grid.expectation(np.exp(family.log_marginal(grid.values, [k], [n])[..., 0]))
                    for k in range(n + 1)])
    pmf /= pmf.sum()
    return [float(np.clip(pmf[pmf <= pmf[k] * (1 + 1e-12)].sum(), 0.0, 1.0)) for k in range(n + 1)]


def _logit_sample(family, grid: Exact, rng: np.random.Generator) -> np.ndarray:
    """logit θ_new drawn from the exact predictive: grid nodes by their weight, then θ's conditional. For
    the beta-binomial logit θ = log G_a − log G_b with log-gamma variates, so θ piled against 1 stays finite."""
    support = grid.support_values()
    weights = grid.grid.weights[grid.grid.support]
    nodes = rng.choice(weights.size, size=MAP_SAMPLE, p=weights / weights.sum())
    chosen = {k: v[nodes] for k, v in support.items()}
    if "kappa" in chosen:
        a, b = chosen["mu"] * chosen["kappa"], (1 - chosen["mu"]) * chosen["kappa"]
        return stats.loggamma.rvs(a, random_state=rng) - stats.loggamma.rvs(b, random_state=rng)
    return chosen["mu"] + chosen["tau"] * rng.standard_normal(MAP_SAMPLE)


def _robust_moment(mean: float, var: float, weight: float, vague) -> float:
    """Moment ESS of (1 − w)·MAP + w·Beta(vague), the MAP's moments exact."""
    spread = BetaMixture.single(*vague)
    m = (1 - weight) * mean + weight * spread.mean()
    second = (1 - weight) * (var + mean**2) + weight * (spread.var() + spread.mean() ** 2)
    return ess_moment(m, second - m**2)


def _cdfs(family, grid: Exact, joined: Exact, y: int, n: int, weight: float, vague, points: int = 1001):
    """The MAP prior's and the posterior's exact CDFs at `points` values of θ (the mixtures over the nodes
    that carry all but 10⁻⁹ of the weight)."""
    edges = np.linspace(0.0, 1.0, points)
    prior_w, post_w = grid.grid.weights, joined.grid.weights
    keep = (prior_w > 1e-9 * prior_w.max()) | (post_w > 1e-9 * post_w.max())
    values = {k: v[keep] for k, v in grid.values.items()}
    prior_w, post_w = prior_w[keep] / prior_w[keep].sum(), post_w[keep] / post_w[keep].sum()
    map_cdf = np.array([prior_w @ family.new_theta_cdf(values, x) for x in edges])
    target_cdf = joint.target_theta_cdf(family, values, y, n, weight, vague)
    post_cdf = np.array([post_w @ target_cdf(x) for x in edges])
    return edges, map_cdf, post_cdf


def _total_variation(cdfs) -> float:
    """½∫|posterior − MAP prior| from the two CDFs on fine bins (½ Σ |ΔF − ΔG|)."""
    _, map_cdf, post_cdf = cdfs
    return float(0.5 * np.abs(np.diff(post_cdf) - np.diff(map_cdf)).sum())


def _densities(cdfs, y: int, n: int, weight: float, vague) -> dict:
    """The exact densities of the borrowing figure, as CDF differences over the bins."""
    edges, map_cdf, post_cdf = cdfs
    width = np.diff(edges)
    middle = 0.5 * (edges[1:] + edges[:-1])
    map_density = np.diff(map_cdf) / width
    return {"theta": middle.tolist(), "map_prior": map_density.tolist(),
            "robust_prior": ((1 - weight) * map_density + weight * stats.beta.pdf(middle, *vague)).tolist(),
            "likelihood": stats.beta.pdf(middle, y + 1, n - y + 1).tolist(),
            "posterior": (np.diff(post_cdf) / width).tolist()}


def _joint_nuts(config, primary: Primary, family, y: int, n: int, cache: ModelCache, seeds: Seeds):
    """The joint model by NUTS (the same compiled program as the reports' model: a target arm is data)."""
    settings = config.borrowing
    spec = target_spec(config.model.family, primary.reports_input, y, n, config.model.prior,
                       settings.robust_weight, settings.vague)

    def derive(posterior):
        theta, p_ex = joint.draw_target(family, posterior, y, n, settings.robust_weight, settings.vague,
                                        seeds.rng("joint derive"))
        dims = posterior["mu"].dims
        return posterior[[]].assign(theta_target=(dims, theta), p_exchangeable=(dims, p_ex))

    return fit(cache, spec, config.sampling, seeds.integer("joint"), config.diagnostics, derive,
               family.heavy_tailed)
