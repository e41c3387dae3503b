"""The primary analysis: the population estimates, exactly where the model allows, with NUTS beside them.

A model with at most three continuous parameters after θ is integrated out (either family without
covariates, or with one; any publication scenario) is integrated on a grid of its own compiled log
density (`analysis.engine.quadrature`): every number the report prints for it is then a deterministic
function of the data and the config, whatever the seed. NUTS samples the same model beside it: its draws
are the cross-check (the largest difference, in Monte Carlo standard errors, is reported), feed the MCMC
diagnostics and the predictive checks, and carry the answer for a model with more parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np
import pandas as pd
import xarray as xr
from scipy import special

from analysis.engine import quadrature
from analysis.engine.fitting import Fit, fit, prior_predictive
from analysis.engine.programs import ModelCache
from analysis.engine.quadrature import Exact
from analysis.engine.seeds import Seeds
from analysis.inputs.bundle import Inputs
from analysis.inputs.config import Config
from analysis.inputs.evidence import BinomialData
from analysis.results import CrossCheck, Estimate, Loo, Primary, ReportEstimate
from analysis.steps import checks
from analysis.steps import estimates as est
from models.base import ModelSpec, Reports
from models.families import FAMILIES, model_spec
from models.publication import in_scope


def model_reports(config: Config, data: BinomialData, design=None) -> Reports:
    """The counts as the model takes them, with the config's covariates and publication mechanism."""
    publication = config.model.publication
    covariates = None if design is None else design.matrix
    return Reports(data.y, data.n, covariates, in_scope(publication.mechanism, data.n), publication.weight)


@dataclass(frozen=True)
class Population:
    """The population estimates of one model and data set (exact or from draws); the heterogeneity and
    hyperparameters are left out (None) where a step needs only the pooled and new-report estimates."""

    pooled: Estimate
    predictive: Estimate
    heterogeneity: Estimate | None
    hyperparameters: dict[str, Estimate] | None
    expit_mu: Estimate | None
    exact: Exact | None


# --- exact ----------------------------------------------------------------------------------------------


def headline(family: ModuleType, predictive: bool = True, spread: bool = False):
    """The summaries whose change between two grid resolutions decides when the grid is fine enough: the
    pooled mean and its bounds, (`predictive`) the lower bound for a new report, and (`spread`: the
    primary's whole population) the quantiles of the family's `checked_quantities`."""

    def checked(exact: Exact) -> dict[str, float]:
        pooled = pooled_estimate(family, exact)
        out = {"pooled_mean": pooled.mean, "pooled_lo": pooled.lo, "pooled_hi": pooled.hi}
        if predictive:
            support = exact.support_values()
            out["predictive_lo"] = exact.grid.mixture_quantile(lambda x: family.new_theta_cdf(support, x), est.LOWER,
                                                               component_pdf=lambda x: family.new_theta_pdf(support, x))
        if spread:
            for name in family.checked_quantities:
                summary = est.on_grid(exact, getattr(family, name)(exact.values))
                out |= {f"{name}_lo": summary.lo, f"{name}_median": summary.median, f"{name}_hi": summary.hi}
        return {k: float(v) for k, v in out.items()}

    return checked


def pooled_estimate(family: ModuleType, exact: Exact) -> Estimate:
    """The pooled mean alone (cheaper than the whole population: for sweeps over a data value)."""
    if family.__name__.endswith("beta_binomial"):
        return est.on_grid(exact, exact.values["mu"], axis=0, transform=special.expit)
    values = exact.values
    if not np.allclose(values["mu"], exact.grid.mesh()[0]):  # the pooled mean increases along μ: is axis 0 μ?
        return est.on_grid(exact, family.pooled(values))
    tau_per_line = values["tau"][0]
    lower, upper = exact.grid.axes[0][[0, -1]]
    return est.increasing_along(exact, family.pooled(values), 0,
                                lambda t: family.pooled_location(t, tau_per_line, lower, upper))


def exact_population(family: ModuleType, exact: Exact) -> Population:
    """Pooled mean, θ for a new report, between-report SD of θ and the hyperparameters, from a grid."""
    values = exact.values
    pooled = pooled_estimate(family, exact)
    fold = np.flatnonzero(quadrature.folded_axes(exact))
    if family.__name__.endswith("beta_binomial"):
        hyper = {"mu": pooled}
        if fold.size:  # u = c sinh t on the folded axis, κ = u⁻²: both monotone in t
            scale = quadrature.scale_of(exact)
            hyper["kappa"] = est.on_grid(exact, values["kappa"], axis=int(fold[0]), heavy=True, decreasing=True,
                                         transform=lambda t: scale(t) ** -2.0)
        else:
            hyper["kappa"] = est.on_grid(exact, values["kappa"], heavy=True)
        hyper["u"] = _scale(exact, values["u"], fold)
        expit_mu = None
    else:
        hyper = {"mu": est.on_grid(exact, values["mu"], axis=0, transform=lambda x: x),
                 "tau": _scale(exact, values["tau"], fold)}
        expit_mu = est.on_grid(exact, values["mu"], axis=0, transform=special.expit)
    predictive = est.mixture(exact, est.pointwise(family.new_theta_cdf), family.new_theta_moments,
                             est.pointwise(family.new_theta_pdf))
    return Population(pooled, predictive, est.on_grid(exact, family.heterogeneity_sd(values)), hyper, expit_mu, exact)


def _scale(exact: Exact, values: np.ndarray, fold: np.ndarray) -> Estimate:
    """A scale parameter (u, τ): c sinh t on its folded axis, so its quantiles come from that axis's marginal
    (spectrally accurate); without a folded axis, from the grid's smoothed CDF."""
    if fold.size:
        return est.on_grid(exact, values, axis=int(fold[0]), transform=quadrature.scale_of(exact))
    return est.on_grid(exact, values)


def exact(cache: ModelCache, family: ModuleType, spec: ModelSpec, prior: bool = False,
          tolerance: float | None = None, predictive: bool = True, spread: bool = False) -> Exact | None:
    """The grid posterior (or prior) of `spec`, or None when the model has too many parameters; the
    arguments after `tolerance` say which summaries settle its resolution (`headline`)."""
    if quadrature.parameters(cache, spec) > quadrature.MAX_PARAMETERS:
        return None
    return quadrature.posterior(cache, spec, headline(family, predictive, spread), prior=prior,
                                tolerance=tolerance or family.quadrature_tolerance)


def population(cache: ModelCache, config: Config, reports: Reports, tolerance: float | None = None) -> Population | None:
    """The exact pooled and new-report estimates of a config's model on these reports (None: too many
    parameters); `tolerance`: the grid's (the family's by default)."""
    family = FAMILIES[config.model.family]
    grid = exact(cache, family, model_spec(config.model.family, reports, config.model.prior), tolerance=tolerance)
    return None if grid is None else pooled_and_predictive(family, grid)


def pooled_and_predictive(family: ModuleType, exact: Exact) -> Population:
    predictive = est.mixture(exact, est.pointwise(family.new_theta_cdf), family.new_theta_moments,
                             est.pointwise(family.new_theta_pdf))
    return Population(pooled_estimate(family, exact), predictive,
                      None, None, None, exact)


def exact_reports(family: ModuleType, grid: Exact, reports: Reports, data: BinomialData) -> dict[str, Estimate]:
    """Each report's θ_i: the mixture over the grid of its exact conditional distribution (once per
    distinct row of counts and covariates)."""
    first, row_of = reports.distinct()
    estimates = []
    for i in first:
        row = reports.covariates[i:i + 1] if reports.n_covariates else None
        y, n = int(reports.y[i]), int(reports.n[i])
        estimates.append(est.mixture(grid, lambda v, y=y, n=n, row=row: family.report_theta_cdf(v, y, n, row),
                                     lambda v, y=y, n=n, row=row: family.report_theta_moments(v, y, n, row),
                                     lambda v, y=y, n=n, row=row: family.report_theta_pdf(v, y, n, row)))
    return {rid: estimates[row_of[i]] for i, rid in enumerate(data.report_ids)}


def exact_loo(family: ModuleType, grid: Exact, reports: Reports, refit) -> np.ndarray:
    """log p(y_i | y_−i) for every report, exactly: −log E_post[1 / p(y_i | φ)] on the grid. Where leaving
    the report out moves the posterior to the grid's edge, that report's term comes from a grid of its
    own (`refit(i)` returns the log predictive density)."""
    first, row_of = reports.distinct()
    log_lik = family.log_marginal(grid.values, reports.y[first], reports.n[first], reports.covariates[first])
    terms = np.empty(first.size)
    for j, i in enumerate(first):
        without = grid.reweighted(-log_lik[..., j])
        if not without.contains():
            terms[j] = refit(i)
        else:
            terms[j] = -grid.grid.log_expectation(-log_lik[..., j])
    return terms[row_of]


# --- draws ------------------------------------------------------------------------------------------------


def nuts(cache: ModelCache, config: Config, reports: Reports, data: BinomialData, seeds: Seeds,
         checks_too: bool = True) -> Fit:
    """The same model by NUTS, with θ_i, θ_new, the pooled mean and the SD of θ derived per draw; with
    `checks_too`, also the prior and posterior predictive draws and the integrated log-likelihood that the
    predictive checks and PSIS-LOO need."""
    family = FAMILIES[config.model.family]
    spec = model_spec(config.model.family, reports, config.model.prior)
    coords = {"report": list(data.report_ids)}

    def derive(posterior: xr.Dataset) -> xr.Dataset:
        return family.derive(posterior, reports, seeds.rng("derive")).assign_coords(coords)

    result = fit(cache, spec, config.sampling, seeds.integer("sampler"), config.diagnostics, derive,
                 family.heavy_tailed, coords=coords, report_level=checks_too, gated=_judged(reports))
    if not checks_too:
        return result
    posterior = result.posterior
    groups = {name: result.idata[name].to_dataset() for name in ("posterior", "sample_stats")}
    label = {"report": list(data.report_ids)}
    groups["observed_data"] = xr.Dataset({"y": ("report", data.y)}, coords=label)
    groups["constant_data"] = xr.Dataset({"n": ("report", data.n)}, coords=label)
    groups["posterior_predictive"] = _posterior_predictive(family, posterior, reports, data,
                                                           seeds.rng("posterior_predictive"))
    first, row = reports.distinct()  # reports sharing a row share their log-likelihood
    log_lik = family.log_marginal(posterior, reports.y[first], reports.n[first], reports.covariates[first])[..., row]
    groups["log_likelihood"] = xr.Dataset(
        {"y": (("chain", "draw", "report"), log_lik)},
        coords={"chain": posterior["chain"], "draw": posterior["draw"], **label})
    prior = prior_predictive(family.build_model(reports, config.model.prior), config.sampling.prior_draws,
                             seeds.integer("prior"), len(data))
    zeros = Reports(np.zeros(len(data), dtype=np.int64), np.zeros(len(data), dtype=np.int64), reports.covariates)
    prior_ds = prior["prior"].to_dataset()
    prior_ds = prior_ds.merge(family.derive(prior_ds, zeros, seeds.rng("prior_derive")), compat="override")
    groups["prior"] = prior_ds.assign_coords(label)
    groups["prior_predictive"] = prior["prior_predictive"].to_dataset().assign_coords(label)
    idata = xr.DataTree.from_dict(groups)
    idata.attrs.update(config=config.name, outcome=data.outcome, drug=data.drug, model=config.model.family,
                       seed=config.sampling.seed)
    return Fit(idata, result.convergence)


JUDGED_REPORTS = 1000
"""Up to this many reports the gate judges every report's θ; beyond it, one report of each distinct row of
counts and covariates (each diagnostic costs milliseconds per quantity, and reports that share a row have
exchangeable θ draws: the same conditional distribution given the population draws)."""


def _judged(reports: Reports):
    """The part of the posterior the convergence gate judges (`JUDGED_REPORTS`)."""
    if len(reports.y) <= JUDGED_REPORTS:
        return None
    first, _ = reports.distinct()
    return lambda posterior: posterior.isel(report=np.sort(first))


def _replicates(family, posterior: xr.Dataset, reports: Reports, data: BinomialData, rng: np.random.Generator,
                count: int = 1, new_too: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Replicated counts, `count` per draw (along a new axis after draw), for the same reports (same θ_i)
    and, with `new_too`, for new reports of the same sizes and covariates (fresh θ; None otherwise)."""
    theta = posterior["theta"].transpose("chain", "draw", "report").values
    same = np.stack([rng.binomial(data.n, theta) for _ in range(count)], axis=2)
    if not new_too:
        return same, None
    new = np.stack([rng.binomial(data.n, family.draw_new_theta(posterior, rng, covariates=reports.covariates))
                    for _ in range(count)], axis=2)
    return same, new


def _posterior_predictive(family, posterior: xr.Dataset, reports: Reports, data: BinomialData,
                          rng: np.random.Generator) -> xr.Dataset:
    """One replicated data set per draw (kept in the DataTree, for LOO-PIT and the figures)."""
    same, new = _replicates(family, posterior, reports, data, rng)
    dims = ("chain", "draw", "report")
    coords = {"chain": posterior["chain"].values, "draw": posterior["draw"].values, "report": list(data.report_ids)}
    return xr.Dataset({"y": (dims, same[:, :, 0]), "y_new_reports": (dims, new[:, :, 0])}, coords=coords)


def predictive_checks(family, idata: xr.DataTree, reports: Reports, data: BinomialData, rng: np.random.Generator,
                      grids: tuple[Exact, Exact] | None = None):
    """The check statistics under the prior predictive and the two posterior predictives. With the
    posterior and prior `grids`, the prior and new-report checks are exact (`checks.exact_predictive_check`);
    otherwise, and for the same reports (which need each report's θ_i), from several replications per draw."""
    posterior = idata["posterior"].to_dataset()
    count = checks.replication_count(posterior.sizes["chain"] * posterior.sizes["draw"], len(data))
    if count == 1:  # a large data set: the replicated data set already kept per draw serves
        kept = idata["posterior_predictive"]
        same, new = (kept[name].transpose("chain", "draw", "report").values[:, :, None]
                     for name in ("y", "y_new_reports"))
    else:  # the new-report replicates only where the grid does not give that check exactly
        same, new = _replicates(family, posterior, reports, data, rng, count, new_too=grids is None)
    same_reports = checks.predictive_check(same, data.y, data.n)
    if grids is None:
        return {"prior": checks.predictive_check(idata["prior_predictive"]["y"].values, data.y, data.n),
                "posterior_same_reports": same_reports,
                "posterior_new_reports": checks.predictive_check(new, data.y, data.n)}

    def exact(grid: Exact):
        return checks.exact_predictive_check(grid.grid.support_weights, _report_pmfs(family, grid, reports),
                                             data.y, data.n)

    posterior_grid, prior_grid = grids
    return {"prior": exact(prior_grid), "posterior_same_reports": same_reports,
            "posterior_new_reports": exact(posterior_grid)}


def _report_pmfs(family, exact: Exact, reports: Reports) -> list[np.ndarray]:
    """Each report's predictive pmf (support nodes, n_i + 1) of its count for a new report of its size and
    covariates (θ integrated out at each node), computed once per distinct row."""
    values = exact.support_values()
    first, row_of = reports.distinct()
    distinct = []
    for i in first:
        size = int(reports.n[i])
        covariates = np.repeat(reports.covariates[i:i + 1], size + 1, axis=0)
        log_pmf = family.log_marginal(values, np.arange(size + 1), np.full(size + 1, size), covariates)
        pmf = np.exp(log_pmf - log_pmf.max(axis=-1, keepdims=True))
        distinct.append(pmf / pmf.sum(axis=-1, keepdims=True))
    return [distinct[row] for row in row_of]


def draws_population(family: ModuleType, posterior: xr.Dataset) -> Population:
    """The population estimates from draws (a model too large for the grid)."""
    values = {k: posterior[k].values for k in posterior.data_vars}
    predictive = est.mixture_over_draws(values, family.new_theta_cdf, family.new_theta_moments,
                                        posterior["theta_new"].values)
    hyper = {name: est.of_draws(posterior[name].values, heavy=name in family.heavy_tailed)
             for name in (*family.hyperparameters, "u") if name in posterior}
    expit_mu = est.of_draws(posterior["expit_mu"].values) if "expit_mu" in posterior else None
    return Population(est.of_draws(posterior["pooled"].values), predictive,
                      est.of_draws(posterior["heterogeneity_sd"].values), hyper, expit_mu, None)


def cross_check(exact: Population, draws: Population, size: int) -> CrossCheck:
    """NUTS − exact for the headline quantities, in their Monte Carlo standard errors."""
    pairs = {
        "pooled.mean": (exact.pooled.mean, draws.pooled.mean, draws.pooled.mcse["mean"]),
        "pooled.ci95.0": (exact.pooled.lo, draws.pooled.lo, draws.pooled.mcse["lo"]),
        "pooled.ci95.1": (exact.pooled.hi, draws.pooled.hi, draws.pooled.mcse["hi"]),
        "predictive.ci95.0": (exact.predictive.lo, draws.predictive.lo, draws.predictive.mcse["lo"]),
        "heterogeneity.median": (exact.heterogeneity.median, draws.heterogeneity.median,
                                 draws.heterogeneity.mcse["median"]),
    }
    differences = {k: d - e for k, (e, d, _) in pairs.items()}
    in_mcse = {k: abs(differences[k]) / m if m else float("inf") for k, (_, _, m) in pairs.items()}
    largest = max(differences, key=lambda k: abs(differences[k]))
    return CrossCheck(differences, in_mcse, largest, differences[largest], in_mcse[largest], size)


# --- the step ---------------------------------------------------------------------------------------------


def analyse(inputs: Inputs, cache: ModelCache) -> Primary:
    """The primary analysis of `inputs` (see the module docstring)."""
    config, data = inputs.config, inputs.data
    family = FAMILIES[config.model.family]
    seeds = Seeds(config.sampling.seed)
    reports = model_reports(config, data, inputs.design)
    spec = model_spec(config.model.family, reports, config.model.prior)
    grid = exact(cache, family, spec, spread=True)
    fitted = nuts(cache, config, reports, data, seeds)
    posterior = fitted.posterior
    from_draws = draws_population(family, posterior)
    years = _years(data)
    raw = {rid: est.clopper_pearson(int(y), int(n)) for rid, y, n in zip(data.report_ids, data.y, data.n)}
    observed_psis = checks.psis_loo(fitted.idata)
    loo_pit = checks.randomised_loo_pit(fitted.idata, observed_psis, seeds.rng("loo pit"))
    complete = checks.complete_pooling_loo(data.y, data.n)
    psis = {"elpd": float(observed_psis.elpd), "p_loo": float(observed_psis.p),
            "pareto_k": {str(r): float(k) for r, k in zip(observed_psis.pareto_k["report"].values,
                                                            observed_psis.pareto_k.values)}}
    if grid is not None:
        headline_population = exact_population(family, grid)
        prior_grid = exact(cache, family, spec, prior=True)
        prior_population = exact_population(family, prior_grid)
        theta = exact_reports(family, grid, reports, data) if reports.distinct()[0].size <= EXACT_REPORTS else None

        def refit(i: int) -> float:
            keep = np.arange(len(reports)) != i
            without = exact(cache, family, model_spec(config.model.family, reports.subset(keep), config.model.prior),
                            predictive=False)
            one = reports.subset(~keep)
            return without.grid.log_expectation(family.log_marginal(without.values, one.y, one.n, one.covariates)[..., 0])

        pointwise = exact_loo(family, grid, reports, refit) if len(data) > 1 else np.full(len(data), np.nan)
        loo = Loo("exact", float(pointwise.sum()), float(np.sqrt(len(data) * np.var(pointwise))),
                  dict(zip(data.report_ids, pointwise.tolist())), checks.comparison(pointwise, complete), psis)
        check = cross_check(headline_population, from_draws, posterior.sizes["chain"] * posterior.sizes["draw"])
        method = "quadrature"
    else:
        headline_population, grid = from_draws, None
        prior_population = draws_population(family, fitted.idata["prior"].to_dataset())
        theta = None
        pointwise = observed_psis.elpd_i.values
        loo = Loo("psis", float(pointwise.sum()), float(np.sqrt(len(data) * np.var(pointwise))),
                  dict(zip(data.report_ids, pointwise.tolist())), checks.comparison(pointwise, complete), psis)
        check, method = None, "draws"
    if theta is None:  # once per distinct row: reports that share one have the same posterior θ
        first, row_of = reports.distinct()
        draws = posterior["theta"].sel(report=list(data.report_ids)).transpose("chain", "draw", "report").values
        summaries = [est.of_draws(draws[..., i]) for i in first]
        theta = {rid: summaries[row_of[i]] for i, rid in enumerate(data.report_ids)}
    report_rows = {rid: ReportEstimate(int(n), int(y), years.get(rid), raw[rid], theta[rid])
                   for rid, y, n in zip(data.report_ids, data.y, data.n)}
    return Primary(
        method=method, parameters=quadrature.parameters(cache, spec),
        pooled=headline_population.pooled, predictive=headline_population.predictive,
        heterogeneity={"posterior": headline_population.heterogeneity, "prior": prior_population.heterogeneity},
        hyperparameters=headline_population.hyperparameters, expit_mu=headline_population.expit_mu,
        prior={"pooled": prior_population.pooled, "predictive": prior_population.predictive},
        reports=report_rows, loo=loo,
        checks=predictive_checks(family, fitted.idata, reports, data, seeds.rng("predictive checks"),
                                 None if grid is None or not _exact_checks(reports) else (grid, prior_grid)),
        cross_check=check, convergence=fitted.convergence,
        numerical_error=None if grid is None else grid.error, grid_nodes=None if grid is None else grid.nodes,
        weights=_weights(headline_population, data) if "kappa" in headline_population.hyperparameters else None,
        idata=fitted.idata, exact=grid, reports_input=reports, psis=observed_psis, loo_pit=loo_pit)


def _exact_checks(reports: Reports) -> bool:
    """Whether the prior and new-report checks are exact: at most `EXACT_REPORTS` reports (a pmf per report
    and node) and `EXACT_PATIENTS` patients (the convolved total)."""
    return len(reports.y) <= EXACT_REPORTS and int(np.sum(reports.n)) <= EXACT_PATIENTS


EXACT_PATIENTS = 500
"""Up to this many patients the predictive checks' total is convolved exactly: the convolution costs about
nodes × patients² / 2 operations (0.4 billion at 3,000 support nodes and 500 patients, under a second)."""
EXACT_REPORTS = 60
"""Up to this many distinct rows of counts and covariates each report's θ_i is summarised exactly (a
mixture over the grid per row); beyond it, from the draws (the per-report table is an appendix, and the
cost grows with the rows)."""


def _weights(population: Population, data: BinomialData) -> dict[str, float]:
    """How many single patients the largest report counts as in the pooled mean, at the posterior median
    concentration κ: its effective size n / (1 + (n − 1)/(κ + 1)) (the design effect of a beta-binomial)."""
    kappa = population.hyperparameters["kappa"].median
    largest = int(data.n.max())
    return {"kappa_median": kappa, "largest_n": largest, "largest_weight": largest / (1 + (largest - 1) / (kappa + 1))}


def _years(data: BinomialData) -> dict[str, int | None]:
    if data.rows is None or "year" not in data.rows:
        return {}
    year = pd.to_numeric(data.rows["year"], errors="coerce")
    return {rid: None if pd.isna(y) else int(y) for rid, y in zip(data.report_ids, year)}
