"""Simulation-based calibration (SBC; Talts et al. 2018, Modrák et al. 2023).

Draw parameters from the prior, simulate counts for reports of the real sizes, fit, and record where
the true value falls in its posterior. If the model and its computation are right, that position (the
PIT, here the normalised rank among thinned draws, randomised within ties) is uniform over many
simulations; any bias, over- or under-dispersion of the posterior shows as a departure from uniformity.

Two kinds of check:

- ``model``: the config's hierarchical model (NUTS), on its population parameters, the pooled mean where
  it is not a parameter itself, and θ of two reports (the largest and a single-patient one);
- ``graded``: the sequential model of the graded outcomes (`models.sequential`), on μ and τ of each
  stage, with counts simulated patient by patient for the real report sizes and the real pattern of
  which report graded which stage;
- ``two_step``: the naloxone route. θ_target is exchangeable with the reports with probability 1 − w and
  Beta(vague) otherwise (the model behind the robust MAP prior); the fit is the full two-step route
  (NUTS → Beta-mixture MAP prior → robustify → conjugate update), and its PIT is the exact posterior
  CDF at the true θ_target. This checks the mixture approximation as well as the sampler.

Simulations are drawn here, in one process, from one seed; the fits are independent tasks for an
executor (`analysis.executors`). The fit of simulation i uses its own seed, so results do not depend on
the executor.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from analysis.config import Config
from analysis.data import BinomialData
from analysis.errors import InputError
from analysis.sampling import Seeds
from models import Reports

QUANTITIES = {"beta_binomial": ("mu", "kappa"), "logit_normal": ("mu", "tau", "pooled")}
"""Population quantities ranked per family (for the beta-binomial the pooled mean is μ itself)."""
CHECK_KINDS = ("model", "two_step", "graded")


@dataclass(frozen=True)
class Simulation:
    """One SBC task: simulated counts, the true values behind them, and the seed of the fit."""

    check: str
    kind: str
    index: int
    config: Config
    report_ids: tuple[str, ...]
    y: np.ndarray
    n: np.ndarray
    truth: dict[str, float]
    seed: int
    target_y: int = 0
    target_n: int = 0
    counts: np.ndarray | None = None
    """The graded check's simulated counts (reports, 4), −1 where the real report did not grade."""


def tracked_reports(data: BinomialData) -> dict[str, int]:
    """θ of the largest report and of the first single-patient report (if any), by position."""
    picked = {f"theta[{data.report_ids[int(np.argmax(data.n))]}]": int(np.argmax(data.n))}
    singles = np.flatnonzero(data.n == 1)
    if singles.size:
        picked[f"theta[{data.report_ids[singles[0]]}]"] = int(singles[0])
    return picked


def simulate(check: str, kind: str, config: Config, data: BinomialData, target_n: int = 0) -> list[Simulation]:
    """`config.calibration.simulations` data sets from the prior, shaped like `data` (same report sizes)."""
    from models import FAMILIES

    if kind not in CHECK_KINDS:
        raise ValueError(f"unknown check kind {kind!r}")
    if config.model.publication.mechanism != "none" or config.model.covariates:
        raise InputError(f"{config.source}: SBC simulates reports without publication selection or covariates; "
                         'use a config with model.publication.mechanism = "none" and no model.covariates')
    family = FAMILIES[config.model.family]
    seeds = Seeds(config.sampling.seed)
    rng = seeds.rng(f"sbc {check}")
    count = config.calibration.simulations
    population = _prior_draws(family, config, data, count, seeds.integer(f"sbc prior {check}"))
    theta = family.draw_new_theta(population, rng, covariates=np.zeros((len(data), 0))).reshape(count, len(data))
    y = rng.binomial(data.n, theta)
    zeros = np.zeros(len(data), int)
    derived = family.derive(population, Reports(zeros, zeros), rng)
    truths = {name: (population[name] if name in population else derived[name]).values.ravel()
              for name in QUANTITIES[config.model.family]}
    for label, position in tracked_reports(data).items():
        truths[label] = theta[:, position]

    target_y = np.zeros(count, dtype=int)
    if kind == "two_step":
        settings = config.borrowing
        exchangeable = rng.random(count) >= settings.robust_weight
        theta_new = family.draw_new_theta(population, rng).reshape(count)
        theta_target = np.where(exchangeable, theta_new, rng.beta(*settings.vague, size=count))
        target_y = rng.binomial(target_n, theta_target)
        truths = {"theta_target": theta_target}

    fit_seeds = np.random.SeedSequence([config.sampling.seed, *f"sbc fits {check}".encode()]).generate_state(count)
    return [
        Simulation(
            check=check, kind=kind, index=i, config=config, report_ids=data.report_ids, y=y[i], n=data.n,
            truth={name: float(values[i]) for name, values in truths.items()}, seed=int(fit_seeds[i]),
            target_y=int(target_y[i]), target_n=target_n,
        )
        for i in range(count)
    ]


def simulate_graded(check: str, config: Config, report_ids: tuple[str, ...], pattern: np.ndarray,
                    n: np.ndarray) -> list[Simulation]:
    """Data sets from the sequential model's prior, for reports of sizes `n` that grade the stages where
    `pattern` (reports, 4) is not −1."""
    import pymc as pm

    from models import sequential

    seeds = Seeds(config.sampling.seed)
    rng = seeds.rng(f"sbc {check}")
    count = config.calibration.simulations
    model = sequential.build_model(pattern, n, config.graded.prior)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The effect of Potentials", category=UserWarning)
        prior = pm.sample_prior_predictive(draws=count, model=model, var_names=["mu", "tau", "cpc_unit"],
                                           random_seed=seeds.integer(f"sbc prior {check}"),
                                           compile_kwargs={"mode": "FAST_COMPILE"})["prior"].to_dataset()
    mu = prior["mu"].values.reshape(count, -1)
    tau = prior["tau"].values.reshape(count, -1)
    chol = sequential.correlation_cholesky(prior["cpc_unit"].values.reshape(count, -1))
    fit_seeds = np.random.SeedSequence([config.sampling.seed, *f"sbc fits {check}".encode()]).generate_state(count)
    simulations = []
    for i in range(count):
        z = rng.standard_normal((len(n), mu.shape[1]))
        p = 1 / (1 + np.exp(-(mu[i] + tau[i] * (z @ chol[i].T))))
        counts = sequential.simulate_counts(n, p, rng, graded=pattern >= 0)
        truth = {**{f"mu[{s}]": float(mu[i, k]) for k, s in enumerate(sequential.STAGES)},
                 **{f"tau[{s}]": float(tau[i, k]) for k, s in enumerate(sequential.STAGES)}}
        simulations.append(Simulation(check=check, kind="graded", index=i, config=config, report_ids=report_ids,
                                      y=counts[:, 0], n=n, truth=truth, seed=int(fit_seeds[i]), counts=counts))
    return simulations


def _prior_draws(family, config: Config, data: BinomialData, count: int, seed: int) -> xr.Dataset:
    """Population parameters from the prior, as a (chain = 1, draw) dataset like a posterior."""
    import pymc as pm

    model = family.build_model(Reports(data.y, data.n), config.model.prior)
    names = list(dict.fromkeys([*family.hyperparameters, *family.plotted_parameters]))
    with warnings.catch_warnings():
        # The selection Potential is left out on purpose: SBC runs only configs without selection.
        warnings.filterwarnings("ignore", message="The effect of Potentials", category=UserWarning)
        sampled = pm.sample_prior_predictive(
            draws=count, model=model, var_names=names, random_seed=seed, compile_kwargs={"mode": "FAST_COMPILE"}
        )
    return sampled["prior"].to_dataset()


def fit_simulation(simulation: Simulation) -> dict:
    """Fit one simulated data set (an executor task): PIT of every checked quantity, and the fit's health."""
    from analysis.diagnostics import check_convergence
    from analysis.executors import process_cache
    from models import FAMILIES, model_spec

    config, family_name = simulation.config, simulation.config.model.family
    if simulation.kind == "graded":
        return _fit_graded(simulation)
    family = FAMILIES[family_name]
    calibration = config.calibration
    settings = config.sampling.model_copy(update={"draws": calibration.draws, "tune": calibration.tune})
    seeds = Seeds(simulation.seed)
    reports = Reports(simulation.y, simulation.n)
    trace = process_cache().sample(model_spec(family_name, reports, config.model.prior), settings, seed=seeds.sampler)
    posterior = trace["posterior"].to_dataset()
    posterior = posterior.merge(family.derive(posterior, reports, seeds.rng("derive")))
    convergence = check_convergence(
        xr.DataTree.from_dict({"posterior": posterior[list(family.hyperparameters)],
                               "sample_stats": trace["sample_stats"].to_dataset()}),
        config.diagnostics, family.heavy_tailed,
    )
    row = {"check": simulation.check, "simulation": simulation.index, "seed": simulation.seed,
           "divergences": int(trace["sample_stats"]["diverging"].sum()), "converged": convergence.passed}

    rng = seeds.rng("pit")
    if simulation.kind == "model":
        positions = {label: i for i, label in enumerate(f"theta[{r}]" for r in simulation.report_ids)}
        for name, truth in simulation.truth.items():
            values = posterior["theta"].isel(report=positions[name]) if name in positions else posterior[name]
            row[name] = _rank_pit(_thinned(values.values, calibration.ranks), truth, rng)
    else:
        from models.borrowing import fit_beta_mixture, robustify

        borrowing = config.borrowing
        mixture = fit_beta_mixture(posterior["theta_new"].values.ravel(), borrowing.max_components,
                                   constrain_gt1=False).mixture
        updated = robustify(mixture, borrowing.robust_weight, borrowing.vague).posterior(
            simulation.target_y, simulation.target_n)
        row["theta_target"] = _cdf_pit(updated.cdf, simulation.truth["theta_target"], rng)
    return row


def _fit_graded(simulation: Simulation) -> dict:
    from analysis.diagnostics import check_convergence
    from analysis.executors import process_cache
    from analysis.graded import labelled
    from models import sequential

    config, calibration = simulation.config, simulation.config.calibration
    settings = config.sampling.model_copy(update={"draws": calibration.draws, "tune": calibration.tune})
    seeds = Seeds(simulation.seed)
    spec = sequential.model_spec(simulation.counts, simulation.n, config.graded.prior)
    trace = process_cache().sample(spec, settings, seed=seeds.sampler)
    posterior = labelled(trace["posterior"].to_dataset())
    convergence = check_convergence(
        xr.DataTree.from_dict({"posterior": posterior[["mu", "tau"]], "sample_stats": trace["sample_stats"].to_dataset()}),
        config.diagnostics)
    row = {"check": simulation.check, "simulation": simulation.index, "seed": simulation.seed,
           "divergences": int(trace["sample_stats"]["diverging"].sum()), "converged": convergence.passed}
    rng = seeds.rng("pit")
    for name, truth in simulation.truth.items():
        variable, stage = name.rstrip("]").split("[")
        values = posterior[variable].sel(stage=stage).transpose("chain", "draw").values
        row[name] = _rank_pit(_thinned(values, calibration.ranks), truth, rng)
    return row


def _cdf_pit(cdf, truth: float, rng: np.random.Generator) -> float:
    """Posterior CDF at the truth, randomised over the truth's floating-point rounding interval.

    Beta draws with small shape parameters round to exactly 0 or 1; the posterior can hold much mass
    within 1e-16 of those ends, so F(truth) alone would put such PIT values at exactly 0 or 1.
    """
    lower, upper = (float(cdf(np.nextafter(truth, end))) for end in (-np.inf, np.inf))
    return lower + rng.random() * (upper - lower)


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


# --- the verdict ------------------------------------------------------------------------------------


def quantity_columns(table: pd.DataFrame) -> list[str]:
    """The checked quantities present in `table`: population quantities first, then report θ."""
    fixed = {"check", "simulation", "seed", "divergences", "converged"}
    names = [c for c in table.columns if c not in fixed and table[c].notna().any()]
    return sorted(names, key=lambda name: (name.startswith("theta["), names.index(name)))


def uniformity(table: pd.DataFrame, alpha: float, band_prob: float = 0.95) -> pd.DataFrame:
    """Per check and quantity: ArviZ's PIT uniformity test (`pot_c`) p-value, whether the PIT ECDF stays
    inside ArviZ's simultaneous 95% band, and the verdict at family-wise level `alpha` (Bonferroni)."""
    from arviz_stats.ecdf_utils import ecdf_pit

    rows = []
    for check, group in table.groupby("check", sort=False):
        for name in quantity_columns(group):
            pit = group[name].dropna().to_numpy()
            p_value = float(
                xr.Dataset({name: (("chain", "draw"), pit[None, :])}).azstats.uniformity_test(dim=["chain", "draw"])[0][name]
            )
            _, ecdf, lower, upper = ecdf_pit(np.sort(pit), band_prob, n_simulations=1000, rng=np.random.default_rng(0))
            rows.append({"check": check, "quantity": name, "simulations": int(pit.size), "p_value": p_value,
                         "inside_band": bool(np.all((ecdf >= lower - 1e-12) & (ecdf <= upper + 1e-12)))})
    result = pd.DataFrame(rows)
    result["threshold"] = alpha / max(len(result), 1)
    result["calibrated"] = result["p_value"] >= result["threshold"]
    return result
