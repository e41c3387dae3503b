"""Simulation-based calibration (SBC; Talts et al. 2018, Modrák et al. 2023).

Draw parameters from the prior, simulate counts for reports of the real sizes, fit, and record where
the true value falls in its posterior. If the model and its computation are right, that position (the
PIT, here the normalised rank among thinned draws, randomised within ties) is uniform over many
simulations; any bias, over- or under-dispersion of the posterior shows as a departure from uniformity.

Three kinds of check:

- ``model``: the config's hierarchical model (NUTS, as `analysis.steps.primary.nuts` fits it), on its
  population parameters, the pooled mean where it is not a parameter itself, and θ of two reports (the
  largest and a single-patient one);
- ``two_step``: the target-arm route (naloxone). θ_target is exchangeable with the reports with
  probability 1 − w and Beta(vague) otherwise (the model behind the robust MAP prior); the fit is the
  whole two-step route (NUTS → Beta-mixture MAP prior → robustify → conjugate update), and its PIT is the
  posterior CDF at the true θ_target. This checks the mixture approximation as well as the sampler;
- ``graded``: the sequential model of the graded outcomes (`models.sequential`), on μ and τ of each
  stage, with counts simulated patient by patient for the real report sizes and the real pattern of
  which report graded which stage.

Simulations are drawn in one process from the config's seed; their fits are independent tasks for an
executor (`analysis.engine.executors`). The fit of simulation i has its own seed, so the results do not
depend on the executor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats.ecdf_utils import ecdf_pit

from analysis.engine.executors import process_cache
from analysis.engine.fitting import fit, prior_predictive
from analysis.engine.seeds import Seeds
from analysis.inputs.bundle import Inputs
from analysis.inputs.config import Config
from analysis.inputs.evidence import BinomialData
from analysis.results.calibration import Calibration, CalibrationCheck, UniformityTest
from analysis.steps import borrowing, graded
from analysis.steps.primary import model_reports, nuts
from models import sequential
from models.base import Reports
from models.families import FAMILIES
from models.mixtures import RESOLUTION, fit_beta_mixture, robustify

KINDS = ("model", "two_step", "graded")
QUANTITIES = {"beta_binomial": ("mu", "kappa"), "logit_normal": ("mu", "tau", "pooled")}
"""Population quantities ranked per family (for the beta-binomial the pooled mean is μ itself)."""
BAND_PROB = 0.95
"""Probability of the simultaneous band of the PIT ECDF (Säilynoja et al. 2022)."""


@dataclass(frozen=True)
class Check:
    """One check: its name, kind, and the inputs whose report sizes its simulations copy."""

    name: str
    kind: str
    inputs: Inputs


@dataclass(frozen=True)
class Simulation:
    """One SBC task: simulated counts, the true values behind them, and the seed of the fit."""

    check: str
    kind: str
    index: int
    seed: int
    config: Config
    """The check's config, with `sampling.draws` and `sampling.tune` set to the calibration's."""
    truth: dict[str, float]
    report_ids: tuple[str, ...]
    n: np.ndarray
    counts: np.ndarray
    """Simulated responders per report; for the graded check the stage counts (reports, 4), −1 where the
    real report did not grade the stage."""
    target: tuple[int, int] = (0, 0)
    """The two-step check's simulated target arm: (responders, treated)."""

    def data(self) -> BinomialData:
        """The simulated responders as the model fits them."""
        return BinomialData(self.report_ids, self.n, self.counts, self.config.data.outcome, self.config.data.drug)


def problem(check: Check) -> str | None:
    """Why the check cannot run on its inputs (one line), or None."""
    config = check.inputs.config
    if check.kind not in KINDS:
        raise ValueError(f"unknown check kind {check.kind!r}")
    if check.kind == "graded":
        if not graded.graded_counts(check.inputs)[0]:
            return f"{config.source}: check {check.name}: no report of the analysis set grades any stage"
        return None
    if config.model.publication.mechanism != "none" or config.model.covariates:
        return (f"{config.source}: check {check.name}: SBC simulates reports without publication selection or "
                'covariates; use a config with model.publication.mechanism = "none" and no model.covariates')
    if check.kind == "two_step":
        arm = check.inputs.target(config.borrowing.target_drug)
        reason = borrowing.why_not(check.inputs, int(arm.y.sum()) if len(arm) else None)
        if reason is not None:
            return f"{config.source}: check {check.name}: {reason}"
    return None


def simulate(check: Check) -> list[Simulation]:
    """`calibration.simulations` data sets from the check's prior, shaped like its inputs."""
    if check.kind == "graded":
        return _simulate_graded(check)
    config, data = check.inputs.config, check.inputs.data
    family = FAMILIES[config.model.family]
    seeds = Seeds(config.sampling.seed)
    rng = seeds.rng(f"sbc {check.name}")
    count = config.calibration.simulations
    model = family.build_model(Reports(data.y, data.n), config.model.prior)
    population = prior_predictive(model, count, seeds.integer(f"sbc prior {check.name}"), len(data))["prior"]
    population = population.to_dataset()
    theta = family.draw_new_theta(population, rng, covariates=np.zeros((len(data), 0))).reshape(count, len(data))
    y = rng.binomial(data.n, theta)
    truths = {name: np.ravel(family.pooled(population) if name == "pooled" else population[name].values)
              for name in QUANTITIES[config.model.family]}
    for label, position in tracked_reports(data).items():
        truths[label] = theta[:, position]

    target_y, target_n = np.zeros(count, dtype=int), 0
    if check.kind == "two_step":
        settings = config.borrowing
        target_n = int(check.inputs.target(settings.target_drug).n.sum())
        exchangeable = rng.random(count) >= settings.robust_weight
        theta_new = family.draw_new_theta(population, rng).reshape(count)
        theta_target = np.where(exchangeable, theta_new, rng.beta(*settings.vague, size=count))
        target_y = rng.binomial(target_n, theta_target)
        truths = {"theta_target": theta_target}

    fitted = _fitting_config(config)
    return [
        Simulation(check.name, check.kind, i, _fit_seed(config, check.name, i), fitted,
                   {name: float(values[i]) for name, values in truths.items()}, data.report_ids, data.n, y[i],
                   target=(int(target_y[i]), target_n))
        for i in range(count)
    ]


def tracked_reports(data: BinomialData) -> dict[str, int]:
    """θ of the largest report and of the first single-patient report (if any), by position."""
    largest = int(np.argmax(data.n))
    picked = {f"theta[{data.report_ids[largest]}]": largest}
    singles = np.flatnonzero(data.n == 1)
    if singles.size:
        picked[f"theta[{data.report_ids[singles[0]]}]"] = int(singles[0])
    return picked


def _simulate_graded(check: Check) -> list[Simulation]:
    """Stage probabilities of every report from the sequential model's prior, then counts patient by
    patient for the real report sizes, kept only where the real report graded the stage."""
    config = check.inputs.config
    report_ids, pattern, n = graded.graded_counts(check.inputs)
    seeds = Seeds(config.sampling.seed)
    rng = seeds.rng(f"sbc {check.name}")
    count = config.calibration.simulations
    model = sequential.build_model(pattern, n, config.graded.prior)
    prior = prior_predictive(model, count, seeds.integer(f"sbc prior {check.name}"), len(n))["prior"].to_dataset()
    mu, tau = (prior[name].transpose("chain", "draw", "stage").values.reshape(count, -1) for name in ("mu", "tau"))
    p = prior["p"].transpose("chain", "draw", "report", "stage").values.reshape(count, len(n), -1)
    fitted = _fitting_config(config)
    simulations = []
    for i in range(count):
        truth = {**{f"mu[{s}]": float(mu[i, k]) for k, s in enumerate(sequential.STAGES)},
                 **{f"tau[{s}]": float(tau[i, k]) for k, s in enumerate(sequential.STAGES)}}
        counts = sequential.simulate_counts(n, p[i], rng, graded=pattern >= 0)
        simulations.append(Simulation(check.name, "graded", i, _fit_seed(config, check.name, i), fitted, truth,
                                      report_ids, n, counts))
    return simulations


def _fitting_config(config: Config) -> Config:
    """The config with the calibration's draws and tuning steps (the chains and target acceptance stay)."""
    settings = config.calibration
    sampling = config.sampling.model_copy(update={"draws": settings.draws, "tune": settings.tune})
    return config.model_copy(update={"sampling": sampling})


def _fit_seed(config: Config, check: str, index: int) -> int:
    return Seeds(config.sampling.seed).integer(f"sbc fit {check} {index}")


# --- one fit ------------------------------------------------------------------------------------------------


def fit_simulation(simulation: Simulation) -> dict:
    """Fit one simulated data set (an executor task): the PIT of every checked quantity, and the fit's health."""
    cache = process_cache()
    config, seeds = simulation.config, Seeds(simulation.seed)
    if simulation.kind == "graded":
        coords = {dim: list(labels) for dim, labels in sequential.LABELS.items()}
        result = fit(cache, sequential.model_spec(simulation.counts, simulation.n, config.graded.prior),
                     config.sampling, seeds.integer("sampler"), config.diagnostics,
                     gated=lambda posterior: posterior[["mu", "tau"]], coords=coords)
    else:
        data = simulation.data()
        result = nuts(cache, config, model_reports(config, data), data, seeds, checks_too=False)
    row = {"check": simulation.check, "simulation": simulation.index, "seed": simulation.seed,
           "divergences": result.convergence.divergences, "converged": result.convergence.passed}
    rng = seeds.rng("pit")
    posterior = result.posterior
    if simulation.kind == "two_step":
        row["theta_target"] = _cdf_pit(_two_step_posterior(config, posterior, *simulation.target).cdf,
                                       simulation.truth["theta_target"], rng, RESOLUTION)
        return row
    for name, truth in simulation.truth.items():
        row[name] = _rank_pit(_thinned(_draws(posterior, name), config.calibration.ranks), truth, rng)
    return row


def _two_step_posterior(config: Config, posterior: xr.Dataset, y: int, n: int):
    """The target arm's posterior by the RBesT route: a Beta mixture fitted to the θ_new draws (the MAP
    prior), robustified, updated with the arm's counts."""
    settings = config.borrowing
    mixture = fit_beta_mixture(posterior["theta_new"].values.ravel(), settings.max_components,
                               constrain_gt1=False).mixture
    return robustify(mixture, settings.robust_weight, settings.vague).posterior(y, n)


def _draws(posterior: xr.Dataset, name: str) -> np.ndarray:
    """Draws (chain × draw) of a checked quantity: a variable ("mu") or one label of it ("theta[Albers2017]")."""
    variable, _, label = name.rstrip("]").partition("[")
    values = posterior[variable]
    if label:
        dim = next(d for d in values.dims if d not in ("chain", "draw"))
        values = values.sel({dim: label})
    return values.transpose("chain", "draw").values


def _thinned(draws: np.ndarray, keep: int) -> np.ndarray:
    """`keep` draws evenly spaced within each chain (draws: chain × draw)."""
    chains, per_chain = draws.shape
    stride = max(1, (chains * per_chain) // keep)
    return draws[:, ::stride].ravel()[:keep]


def _rank_pit(draws: np.ndarray, truth: float, rng: np.random.Generator) -> float:
    """Normalised rank of the truth among the draws, ties broken at random: uniform on (0, 1) under SBC."""
    below, ties = int(np.sum(draws < truth)), int(np.sum(draws == truth))
    rank = below + rng.integers(0, ties + 1)
    return float((rank + rng.random()) / (draws.size + 1))


def _cdf_pit(cdf, truth: float, rng: np.random.Generator, resolution: float = 0.0) -> float:
    """Posterior CDF at the truth, randomised over the interval the posterior cannot tell the truth apart in:
    its floating-point rounding interval, or, within `resolution` of 0 or 1, that whole end interval.

    Beta draws with small shape parameters round to exactly 0 or 1; the posterior can hold much mass
    within 1e-16 of those ends, so F(truth) alone would put such PIT values at exactly 0 or 1. A posterior
    fitted to draws (the two-step route's Beta mixture) resolves θ only to `mixtures.RESOLUTION` (its draws
    are clipped there), so a truth of 1e-160 is compared with the whole interval [0, 1e-10]: a PIT uniform
    under a posterior correct at that resolution.
    """
    if truth < resolution:
        lower, upper = 0.0, float(cdf(resolution))
    elif truth > 1 - resolution:
        lower, upper = float(cdf(1 - resolution)), 1.0
    else:
        lower, upper = (float(cdf(np.nextafter(truth, end))) for end in (-np.inf, np.inf))
    return lower + rng.random() * (upper - lower)


# --- the verdict ------------------------------------------------------------------------------------


FIT_COLUMNS = ("check", "simulation", "seed", "divergences", "converged")


def quantity_columns(table: pd.DataFrame) -> list[str]:
    """The checked quantities present in `table`: population quantities first, then report θ."""
    names = [c for c in table.columns if c not in FIT_COLUMNS and table[c].notna().any()]
    return sorted(names, key=lambda name: (name.startswith("theta["), names.index(name)))


def uniformity(table: pd.DataFrame, alpha: float, band_prob: float = BAND_PROB) -> tuple[UniformityTest, ...]:
    """Per check and quantity: ArviZ's PIT uniformity test (`pot_c`) p-value, whether the PIT ECDF stays
    inside ArviZ's simultaneous band, and the verdict at family-wise level `alpha` (Bonferroni)."""
    found = []
    for check, group in table.groupby("check", sort=False):
        for name in quantity_columns(group):
            pit = group[name].dropna().to_numpy()
            dataset = xr.Dataset({name: (("chain", "draw"), pit[None, :])})
            p_value = float(dataset.azstats.uniformity_test(dim=["chain", "draw"])[0][name])
            _, ecdf, lower, upper = ecdf_pit(np.sort(pit), band_prob, n_simulations=1000)
            found.append((check, name, int(pit.size), p_value,
                          bool(np.all((ecdf >= lower - 1e-12) & (ecdf <= upper + 1e-12)))))
    threshold = alpha / max(len(found), 1)
    return tuple(UniformityTest(check, name, size, p, threshold, inside, p >= threshold)
                 for check, name, size, p, inside in found)


def summarise(checks: list[Check], rows: list[dict]) -> Calibration:
    """The verdict over every check's fits (`rows`, from `fit_simulation`)."""
    table = pd.DataFrame(rows)
    alpha = min(check.inputs.config.calibration.alpha for check in checks)
    tests = uniformity(table, alpha)
    summaries = {}
    for check in checks:
        config = check.inputs.config
        fits = table[table["check"] == check.name]
        summaries[check.name] = CalibrationCheck(
            name=check.name, kind=check.kind, config=config.source,
            model="sequential" if check.kind == "graded" else config.model.family,
            simulations=len(fits), seed=config.sampling.seed, chains=config.sampling.chains,
            draws=config.calibration.draws, tune=config.calibration.tune, ranks=config.calibration.ranks,
            unconverged=int((~fits["converged"].astype(bool)).sum()), divergent=int((fits["divergences"] > 0).sum()))
    return Calibration(summaries, tests, alpha, BAND_PROB, all(t.calibrated for t in tests), table)
